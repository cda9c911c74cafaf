/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tc_client.h - one signed Tencent Cloud API 3.0 call over libcurl, with
 * retries, and the one table from the cloud's error codes to errno.
 */
#ifndef IMAGEFS_TC_CLIENT_H
#define IMAGEFS_TC_CLIENT_H

#include <curl/curl.h>
#include <jansson.h>

#include "../../mountopts/credentials.h"

#define TC_VERSION "2017-03-12"
#define TC_ENDPOINT "https://cvm.tencentcloudapi.com"

/* What every worker's client shares: read-only once set up. */
struct tc_conf {
	char endpoint[1024];
	char host[300];		/* the Host header: host[:port] */
	struct credentials creds;
	long timeout_ms;	/* one attempt */
	int attempts;		/* tries of a call that may be retried */
	long backoff_ms;	/* first wait; doubled at each retry */
	int debug;		/* log each request, redacted */
};

/* One worker thread's client: its own reused curl handle. */
struct tc_client {
	const struct tc_conf *conf;
	CURL *curl;
	char *buf;		/* the answer being received */
	size_t len, cap;
};

/* Why a call failed, as the cloud said it (code "" for the network). */
struct tc_error {
	char code[128];
	char request_id[64];
	char message[256];
};

/* Fill conf from the endpoint URL (NULL: the public one). */
int tc_conf_init(struct tc_conf *conf, const char *endpoint);

int tc_client_init(struct tc_client *c, const struct tc_conf *conf);
void tc_client_free(struct tc_client *c);

/*
 * POST action with body req (not consumed) to region (NULL: none). On 0
 * *resp is the "Response" object, to json_decref(). On failure: -errno from
 * tc_errno() of the cloud's code, -EAGAIN when the cloud kept throttling,
 * -EIO for the network; err says more and the failure is logged.
 */
int tc_call(struct tc_client *c, const char *action, const char *region,
	    json_t *req, json_t **resp, struct tc_error *err);

/* The errno of a Tencent Cloud error code (DESIGN.md section 4). */
int tc_errno(const char *code);

#endif /* IMAGEFS_TC_CLIENT_H */
