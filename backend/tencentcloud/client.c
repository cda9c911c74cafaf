// SPDX-License-Identifier: GPL-2.0
/*
 * client.c - signed calls to the Tencent Cloud API 3.0 (the CVM service)
 * over one reused libcurl handle per thread.
 *
 * Each action goes no faster than the cloud documents for it (40 calls a
 * second for DescribeImages, 10 for the changes), shared by every thread.
 * A call is retried with exponential backoff when the cloud throttles
 * (RequestLimitExceeded*) and, for calls that change nothing (Describe*),
 * when the network fails or the server answers 5xx; a change is retried
 * after a network failure only when the request cannot have been sent.
 * Anything but an API answer (an empty or non-JSON body, a status without
 * an API error) is EIO. The Host header is set, so that the host signed is
 * the host sent. Secrets never reach a log: the Authorization header is
 * never printed and bodies are printed only for Describe* calls.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "../backend.h"
#include "tc3.h"
#include "client.h"
#include "../../mountopts/log.h"

#define ANSWER_MAX (16 << 20)	/* bytes of one answer */
#define NAP_MS 20		/* a wait looks at the stop flag this often */

/* The documented limits (TENCENT-API.md section 3), calls a second. */
static const struct tc_rate rates[] = {
	{ "DescribeImages", 40, NULL, 0 },
	{ "DescribeImportImageOs", 288, NULL, 0 },
	{ NULL, 10, NULL, 0 },	/* the quota, the changes, the rest */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int stopped(const struct tc_conf *conf)
{
	return __atomic_load_n(&conf->stop, __ATOMIC_ACQUIRE);
}

/* Sleep until monotonic time t unless stopped: 0, or -EINTR. */
static int nap_until(const struct tc_conf *conf, double t)
{
	for (double now = now_s(); now < t; now = now_s()) {
		double left = t - now < NAP_MS / 1e3 ? t - now : NAP_MS / 1e3;
		struct timespec ts = {
			.tv_sec = (time_t)left,
			.tv_nsec = (long)((left - (time_t)left) * 1e9),
		};

		if (stopped(conf))
			return -EINTR;
		nanosleep(&ts, NULL);
	}
	return stopped(conf) ? -EINTR : 0;
}

/*
 * Wait for action's turn: a call goes a second after the per_second-th
 * call before it, at the soonest, so that no second holds more.
 */
static int rate_wait(struct tc_conf *conf, const char *action)
{
	struct tc_rate *r = &conf->rates[conf->nrates - 1];
	double now = now_s(), at;

	for (int i = 0; i < conf->nrates - 1; i++)
		if (!strcmp(conf->rates[i].action, action))
			r = &conf->rates[i];
	pthread_mutex_lock(&conf->rate_lock);
	at = r->sent[r->next] + 1.0 > now ? r->sent[r->next] + 1.0 : now;
	r->sent[r->next] = at;
	r->next = (r->next + 1) % r->per_second;
	pthread_mutex_unlock(&conf->rate_lock);
	return nap_until(conf, at);
}

/* Loopback: the one place plain http may go (the test servers). */
static int loopback(const char *host)
{
	struct in6_addr a6;
	struct in_addr a4;
	char h[64];
	size_t n = strlen(host);

	if (!strcmp(host, "localhost"))
		return 1;
	if (n > 2 && host[0] == '[' && host[n - 1] == ']' &&
	    n - 2 < sizeof(h)) {
		memcpy(h, host + 1, n - 2);
		h[n - 2] = 0;
		return inet_pton(AF_INET6, h, &a6) == 1 &&
		       IN6_IS_ADDR_LOOPBACK(&a6);
	}
	return inet_pton(AF_INET, host, &a4) == 1 &&
	       (ntohl(a4.s_addr) >> 24) == 127;
}

int tc_conf_init(struct tc_conf *conf, const char *endpoint,
		 const char *language)
{
	char *scheme = NULL, *host = NULL, *port = NULL;
	CURLU *u = curl_url();
	int rc = -EINVAL, https, oom = !u;

	if (!endpoint)
		endpoint = TC_ENDPOINT;
	snprintf(conf->endpoint, sizeof(conf->endpoint), "%s", endpoint);
	snprintf(conf->language, sizeof(conf->language), "%s",
		 language ? language : TC_LANGUAGE);
	conf->timeout_ms = conf->timeout_ms ? conf->timeout_ms : 30000;
	conf->attempts = conf->attempts ? conf->attempts : 4;
	conf->backoff_ms = conf->backoff_ms ? conf->backoff_ms : 200;
	pthread_mutex_init(&conf->rate_lock, NULL);
	conf->nrates = sizeof(rates) / sizeof(rates[0]);
	conf->rates = calloc(conf->nrates, sizeof(*conf->rates));
	for (int i = 0; conf->rates && i < conf->nrates; i++) {
		conf->rates[i] = rates[i];
		conf->rates[i].sent = calloc(rates[i].per_second,
					     sizeof(double));
		oom |= !conf->rates[i].sent;
		/* long ago: a first second's worth may go at once */
		for (int n = 0; !oom && n < rates[i].per_second; n++)
			conf->rates[i].sent[n] = -1e9;
	}
	if (oom || !conf->rates) {
		rc = -ENOMEM;
		goto out;
	}
	if (curl_url_set(u, CURLUPART_URL, endpoint, 0) ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0))
		goto out_bad;
	for (char *p = host; *p; p++)
		*p = tolower((unsigned char)*p);
	https = !strcmp(scheme, "https");
	if (!https && (strcmp(scheme, "http") || !loopback(host))) {
		log_error("endpoint %s: https is required (plain http only to "
			  "a loopback address)", endpoint);
		goto out;
	}
	/* the Host header: the port only when it is not the scheme's own */
	curl_url_get(u, CURLUPART_PORT, &port, 0);
	if (port && !strcmp(port, https ? "443" : "80")) {
		curl_free(port);
		port = NULL;
	}
	if (snprintf(conf->host, sizeof(conf->host), "%s%s%s", host,
		     port ? ":" : "", port ? port : "") <
	    (int)sizeof(conf->host))
		rc = 0;
	else
out_bad:
		log_error("bad endpoint: %s", endpoint);
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

void tc_conf_free(struct tc_conf *conf)
{
	for (int i = 0; conf->rates && i < conf->nrates; i++)
		free(conf->rates[i].sent);
	free(conf->rates);
	conf->rates = NULL;
	pthread_mutex_destroy(&conf->rate_lock);
	credentials_clear(&conf->creds);
}

void tc_conf_stop(struct tc_conf *conf)
{
	__atomic_store_n(&conf->stop, 1, __ATOMIC_RELEASE);
}

static size_t on_data(char *data, size_t size, size_t n, void *ctx)
{
	struct tc_client *c = ctx;
	size_t len = size * n;

	if (c->len + len + 1 > c->cap) {
		size_t cap = c->cap ? c->cap : 16384;
		char *buf;

		while (cap < c->len + len + 1)
			cap *= 2;
		if (cap > ANSWER_MAX)
			return 0;	/* curl fails the transfer */
		buf = realloc(c->buf, cap);
		if (!buf)
			return 0;
		c->buf = buf;
		c->cap = cap;
	}
	memcpy(c->buf + c->len, data, len);
	c->len += len;
	c->buf[c->len] = 0;
	return len;
}

/* curl's progress callback: a transfer under way ends when stopped. */
static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow,
		       curl_off_t ultotal, curl_off_t ulnow)
{
	struct tc_client *c = ctx;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return stopped(c->conf);
}

int tc_client_init(struct tc_client *c, struct tc_conf *conf)
{
	memset(c, 0, sizeof(*c));
	c->conf = conf;
	c->curl = curl_easy_init();
	if (!c->curl)
		return -ENOMEM;
	return 0;
}

void tc_client_free(struct tc_client *c)
{
	curl_easy_cleanup(c->curl);
	free(c->buf);
	memset(c, 0, sizeof(*c));
}

/* What went wrong with one attempt. */
enum attempt {
	DONE,		/* an answer: success or the cloud's error */
	THROTTLED,	/* RequestLimitExceeded*: nothing was done */
	UNSENT,		/* the request never left: safe to retry */
	LOST,		/* sent, no usable answer: retry only a read */
};

/* Free a header list, wiped first: it holds the session token. */
static void free_headers(struct curl_slist *list)
{
	for (struct curl_slist *l = list; l; l = l->next)
		explicit_bzero(l->data, strlen(l->data));
	curl_slist_free_all(list);
}

static struct curl_slist *add_header(struct curl_slist *list,
				     const char *name, const char *value)
{
	char line[4200];
	struct curl_slist *l;

	snprintf(line, sizeof(line), "%s: %s", name, value);
	l = curl_slist_append(list, line);
	explicit_bzero(line, sizeof(line));	/* the token, the signature */
	if (!l)
		free_headers(list);
	return l;
}

static struct curl_slist *headers(const struct tc_conf *conf,
				  const char *action, const char *region,
				  const char *body, int64_t now)
{
	static const char ctype[] = "application/json; charset=utf-8";
	struct tc3_request r = {
		.secret_id = conf->creds.id,
		.secret_key = conf->creds.key,
		.service = "cvm",
		.host = conf->host,
		.content_type = ctype,
		.payload = body,
		.payload_len = strlen(body),
		.timestamp = now,
	};
	struct curl_slist *h = NULL;
	char auth[512], stamp[24];

	if (tc3_sign(&r, auth, sizeof(auth), NULL))
		return NULL;
	snprintf(stamp, sizeof(stamp), "%lld", (long long)now);
	h = add_header(h, "Host", conf->host);
	if (h)
		h = add_header(h, "Content-Type", ctype);
	if (h)
		h = add_header(h, "X-TC-Action", action);
	if (h)
		h = add_header(h, "X-TC-Version", TC_VERSION);
	if (h)
		h = add_header(h, "X-TC-Timestamp", stamp);
	if (h)
		h = add_header(h, "X-TC-Language", conf->language);
	if (h && region && region[0])
		h = add_header(h, "X-TC-Region", region);
	if (h && conf->creds.token[0])
		h = add_header(h, "X-TC-Token", conf->creds.token);
	if (h)
		h = add_header(h, "Authorization", auth);
	if (h)
		h = add_header(h, "Expect", "");
	explicit_bzero(auth, sizeof(auth));
	return h;
}

/*
 * Copy the cloud's words as data (jansson hands over valid UTF-8): C0
 * controls and DEL become \xNN, C1 controls and U+2028/U+2029 \uXXXX,
 * so what the cloud says can neither move a log's lines nor drive a
 * terminal. Cut at a character when dst is full.
 */
static void copy_escaped(char *dst, size_t size, const char *src)
{
	const unsigned char *p = (const unsigned char *)(src ? src : "");
	size_t n = 0;

	while (*p && n + 7 <= size) {
		if (*p < 0x20 || *p == 0x7f) {
			n += snprintf(dst + n, size - n, "\\x%02X", *p++);
		} else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			n += snprintf(dst + n, size - n, "\\u00%02X", p[1]);
			p += 2;
		} else if (p[0] == 0xe2 && p[1] == 0x80 &&
			   (p[2] == 0xa8 || p[2] == 0xa9)) {
			n += snprintf(dst + n, size - n, "\\u20%02X",
				      p[2] - 0x80);
			p += 3;
		} else {
			do
				dst[n++] = *p++;
			while ((*p & 0xc0) == 0x80 && n + 1 < size);
		}
	}
	if (size)
		dst[n < size ? n : size - 1] = 0;
}

static void set_error(struct tc_error *err, const char *code,
		      const char *message, const char *request_id)
{
	copy_escaped(err->code, sizeof(err->code), code);
	copy_escaped(err->message, sizeof(err->message), message);
	copy_escaped(err->request_id, sizeof(err->request_id), request_id);
}

/*
 * Read the answer of this attempt (c->len bytes, HTTP status): 0 with
 * *resp, or the cloud's error; anything else is not an API answer.
 */
static enum attempt parse_answer(struct tc_client *c, const char *action,
				 long status, json_t **resp,
				 struct tc_error *err, int *rc)
{
	json_t *root, *r, *e;
	char msg[64];

	root = c->len ? json_loadb(c->buf, c->len, 0, NULL) : NULL;
	r = json_object_get(root, "Response");
	e = json_object_get(r, "Error");
	if (!json_is_object(r) || (!e && (status < 200 || status > 299))) {
		json_decref(root);
		if (status < 200 || status > 299)
			snprintf(msg, sizeof(msg), "HTTP %ld", status);
		else
			snprintf(msg, sizeof(msg), "%s", c->len ?
				 "the answer is not an API response" :
				 "an empty answer");
		set_error(err, "", msg, NULL);
		*rc = -EIO;
		return status >= 500 ? LOST : DONE;
	}
	if (e) {
		const char *code = json_string_value(json_object_get(e,
								     "Code"));

		set_error(err, code ? code : "?",
			  json_string_value(json_object_get(e, "Message")),
			  json_string_value(json_object_get(r, "RequestId")));
		json_decref(root);
		*rc = tc_errno(action, err->code);
		return strncmp(err->code, "RequestLimitExceeded", 20) ?
		       DONE : THROTTLED;
	}
	*resp = json_incref(r);
	json_decref(root);
	*rc = 0;
	return DONE;
}

static enum attempt attempt(struct tc_client *c, const char *action,
			    const char *region, const char *body, int read_only,
			    json_t **resp, struct tc_error *err, int *rc)
{
	const struct tc_conf *conf = c->conf;
	int https = !strncmp(conf->endpoint, "https:", 6);
	struct curl_slist *h;
	CURLcode cc;
	long status = 0;
	char msg[CURL_ERROR_SIZE] = "";

	h = headers(conf, action, region, body, time(NULL));
	if (!h) {
		set_error(err, "", "cannot sign the request", NULL);
		*rc = -ENOMEM;
		return DONE;
	}
	c->len = 0;
	curl_easy_reset(c->curl);
	curl_easy_setopt(c->curl, CURLOPT_URL, conf->endpoint);
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, https ? "https" :
			 "http");
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	/* libcurl sends a request again by itself when a reused connection
	 * turns out closed: a change goes on a connection of its own */
	curl_easy_setopt(c->curl, CURLOPT_FRESH_CONNECT, (long)!read_only);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, conf->timeout_ms);
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS,
			 conf->timeout_ms < 10000 ? conf->timeout_ms : 10000);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(c->curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c->curl, CURLOPT_XFERINFODATA, c);
	curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, msg);
	curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "imagefs/"
			 IMAGEFS_VERSION);
	cc = curl_easy_perform(c->curl);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
	free_headers(h);
	if (cc == CURLE_ABORTED_BY_CALLBACK) {
		set_error(err, "", "stopped", NULL);
		*rc = -EINTR;
		return DONE;
	}
	if (cc != CURLE_OK) {
		set_error(err, "", msg[0] ? msg : curl_easy_strerror(cc),
			  NULL);
		*rc = -EIO;
		return cc == CURLE_COULDNT_CONNECT ||
		       cc == CURLE_COULDNT_RESOLVE_HOST ? UNSENT : LOST;
	}
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	return parse_answer(c, action, status, resp, err, rc);
}

/* Wait the backoff of retry n (0 first): base * 2^n plus up to base. */
static int backoff(const struct tc_conf *conf, int n)
{
	unsigned int r = 0;
	long ms;

	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = 0;
	ms = (conf->backoff_ms << n) + r % (conf->backoff_ms + 1);
	return nap_until(conf, now_s() + ms / 1e3);
}

int tc_call(struct tc_client *c, const char *action, const char *region,
	    json_t *req, json_t **resp, struct tc_error *err)
{
	int read_only = !strncmp(action, "Describe", 8);
	enum attempt how = DONE;
	char *body;
	int rc = -EIO;

	*resp = NULL;
	set_error(err, "", "", NULL);
	body = json_dumps(req, JSON_COMPACT);
	if (!body)
		return -ENOMEM;
	for (int n = 0; n < c->conf->attempts; n++) {
		rc = n ? backoff(c->conf, n - 1) : 0;
		if (!rc)
			rc = rate_wait(c->conf, action);
		if (rc) {
			set_error(err, "", "stopped", NULL);
			break;
		}
		how = attempt(c, action, region, body, read_only, resp, err,
			      &rc);
		if (c->conf->debug)
			log_debug("tc: %s %s %s -> %s%s%s", action,
				  region ? region : "-",
				  read_only ? body : "{...}",
				  rc ? (err->code[0] ? err->code :
					err->message) : "ok",
				  err->request_id[0] ? " RequestId " : "",
				  err->request_id);
		if (how == DONE || (how == LOST && !read_only))
			break;
	}
	free(body);
	if (rc && rc != -EINTR && !c->quiet)
		log_error("tc: %s in %s failed: %s: %s%s%s", action,
			  region ? region : "-",
			  err->code[0] ? err->code : "network", err->message,
			  err->request_id[0] ? " RequestId " : "",
			  err->request_id);
	return rc;
}
