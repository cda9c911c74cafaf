/* SPDX-License-Identifier: GPL-2.0 */
/*
 * client.h - one signed Tencent Cloud API 3.0 call over libcurl, with
 * retries and the cloud's documented rate limits, and the one table from
 * the cloud's error codes to errno (errors.c).
 */
#ifndef IMAGEFS_TC_CLIENT_H
#define IMAGEFS_TC_CLIENT_H

#include <pthread.h>

#include <curl/curl.h>
#include <jansson.h>

#include "../../mountopts/credentials.h"

#define TC_VERSION "2017-03-12"
#define TC_ENDPOINT "https://cvm.tencentcloudapi.com"
#define TC_LANGUAGE "en-US"

/* The pace of one action: at most per_second calls in any second. */
struct tc_rate {
	const char *action;	/* NULL: every action not listed */
	int per_second;
	double *sent;		/* when the last per_second calls went (a
				 * ring, monotonic s) */
	int next;		/* its oldest */
};

/*
 * What every thread's client shares: read-only once set up, but for the
 * stop flag (atomic) and the rate limits (under lock).
 */
struct tc_conf {
	char endpoint[1024];
	char host[300];		/* the Host header: lower case, host[:port]
				 * with the port only when not the default */
	char language[16];	/* X-TC-Language */
	struct credentials creds;
	long timeout_ms;	/* one attempt */
	int attempts;		/* tries of a call that may be retried */
	long backoff_ms;	/* first wait; doubled at each retry */
	int debug;		/* log each request, redacted */
	int stop;		/* tc_conf_stop(): calls end with -EINTR */
	pthread_mutex_t rate_lock;
	struct tc_rate *rates;
	int nrates;
};

/* One thread's client: its own reused curl handle. */
struct tc_client {
	struct tc_conf *conf;
	CURL *curl;
	char *buf;		/* the answer being received */
	size_t len, cap;
	int quiet;		/* the caller logs what fails, if it must */
};

/* Why a call failed, as the cloud said it (code "" for the network). */
struct tc_error {
	char code[128];
	char request_id[64];
	char message[256];
};

/*
 * Fill conf from the endpoint URL (NULL: the public one) and the language
 * (NULL: en-US). Plain http is refused (-EINVAL) but for a loopback host.
 * tc_conf_free() releases what it holds.
 */
int tc_conf_init(struct tc_conf *conf, const char *endpoint,
		 const char *language);
void tc_conf_free(struct tc_conf *conf);

/* Make calls under way end soon, and later ones at once, with -EINTR. */
void tc_conf_stop(struct tc_conf *conf);

int tc_client_init(struct tc_client *c, struct tc_conf *conf);
void tc_client_free(struct tc_client *c);

/*
 * POST action with body req (not consumed) to region (NULL: none). On 0
 * *resp is the "Response" object, to json_decref(). On failure: -errno from
 * tc_errno() of the cloud's code, -EAGAIN when the cloud kept throttling,
 * -EIO for the network or an answer that is not the API's, -EINTR once
 * stopped; err says more and the failure is logged.
 */
int tc_call(struct tc_client *c, const char *action, const char *region,
	    json_t *req, json_t **resp, struct tc_error *err);

/* The errno of the cloud's error code in an answer to action (errors.c);
 * 0 for DryRunOperation, -EIO for codes it does not know. */
int tc_errno(const char *action, const char *code);

#endif /* IMAGEFS_TC_CLIENT_H */
