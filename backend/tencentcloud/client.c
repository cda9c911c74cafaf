// SPDX-License-Identifier: GPL-2.0
/*
 * tc_client.c - signed calls to the Tencent Cloud API 3.0 (the CVM
 * service) over one reused libcurl handle per thread.
 *
 * A call is retried with exponential backoff when the cloud throttles
 * (RequestLimitExceeded*) and, for calls that change nothing (Describe*),
 * when the network fails or the server answers 5xx; a change is retried
 * after a network failure only when the request cannot have been sent.
 * Secrets never reach a log: the Authorization header is never printed and
 * bodies are printed only for Describe* calls.
 */
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

/* The one table from the cloud's error codes to errno, in the order of
 * DESIGN.md section 4; a code ending in '*' is a prefix. */
static const struct {
	const char *code;
	int err;
} tc_codes[] = {
	{ "ImageQuotaLimitExceeded", EDQUOT },
	{ "LimitExceeded.ImageQuota", EDQUOT },
	{ "LimitExceeded.ImageOperation", EAGAIN },
	{ "RequestLimitExceeded*", EAGAIN },
	{ "InvalidRegion.Unavailable", EOPNOTSUPP },
	{ "UnsupportedRegion", EOPNOTSUPP },
	{ "UnauthorizedOperation.ImageNotBelongToAccount", EPERM },
	{ "OverQuota", EMLINK },
	{ "InvalidImageId.InShared", EBUSY },
	{ "InvalidImageId.IncorrectState", EBUSY },
	{ "InvalidImageState*", EBUSY },
	{ "ResourceInUse*", EBUSY },
	{ "InvalidParameterValue.TooLong", ENAMETOOLONG },
	{ "InvalidImageName.Duplicate", EEXIST },
	{ "InvalidImageId.IsShared", EEXIST },
	{ "InvalidAccountIs.YourSelf", EINVAL },
	{ "InvalidAccountId.NotFound", ENOENT },
	{ "InvalidImageId.NotFound", ENOENT },
	{ "InvalidImageId*", EINVAL },
	{ "InvalidInstanceId*", EINVAL },
	{ "InvalidParameter*", EINVAL },
	{ "MissingParameter*", EINVAL },
	{ "AuthFailure*", EACCES },
	{ "UnauthorizedOperation*", EACCES },
};

int tc_errno(const char *code)
{
	if (!strcmp(code, "DryRunOperation"))
		return 0;	/* a DryRun call that would succeed */
	for (size_t i = 0; i < sizeof(tc_codes) / sizeof(tc_codes[0]); i++) {
		const char *c = tc_codes[i].code;
		size_t n = strlen(c);

		if (c[n - 1] == '*' ? !strncmp(code, c, n - 1) :
		    !strcmp(code, c))
			return -tc_codes[i].err;
	}
	return -EIO;
}

int tc_conf_init(struct tc_conf *conf, const char *endpoint)
{
	char *host = NULL, *port = NULL;
	CURLU *u = curl_url();
	int rc = -EINVAL;

	if (!endpoint)
		endpoint = TC_ENDPOINT;
	snprintf(conf->endpoint, sizeof(conf->endpoint), "%s", endpoint);
	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, endpoint, 0) ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0))
		goto out;
	/* the Host header curl sends: the port only when one is written */
	curl_url_get(u, CURLUPART_PORT, &port, 0);
	if (snprintf(conf->host, sizeof(conf->host), "%s%s%s", host,
		     port ? ":" : "", port ? port : "") <
	    (int)sizeof(conf->host))
		rc = 0;
out:
	if (rc)
		log_error("bad endpoint: %s", endpoint);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	conf->timeout_ms = conf->timeout_ms ? conf->timeout_ms : 30000;
	conf->attempts = conf->attempts ? conf->attempts : 4;
	conf->backoff_ms = conf->backoff_ms ? conf->backoff_ms : 200;
	return rc;
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

int tc_client_init(struct tc_client *c, const struct tc_conf *conf)
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
	h = add_header(h, "Content-Type", ctype);
	if (h)
		h = add_header(h, "X-TC-Action", action);
	if (h)
		h = add_header(h, "X-TC-Version", TC_VERSION);
	if (h)
		h = add_header(h, "X-TC-Timestamp", stamp);
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

/* Read the answer in c->buf: 0 with *resp, or the cloud's error. */
static enum attempt parse_answer(struct tc_client *c, json_t **resp,
				 struct tc_error *err, int *rc)
{
	json_t *root, *r, *e;

	root = json_loads(c->buf ? c->buf : "", 0, NULL);
	r = json_object_get(root, "Response");
	if (!json_is_object(r)) {
		json_decref(root);
		set_error(err, "", "the answer is not an API response", NULL);
		*rc = -EIO;
		return LOST;
	}
	e = json_object_get(r, "Error");
	if (e) {
		const char *code = json_string_value(json_object_get(e,
								     "Code"));

		set_error(err, code ? code : "?",
			  json_string_value(json_object_get(e, "Message")),
			  json_string_value(json_object_get(r, "RequestId")));
		json_decref(root);
		*rc = tc_errno(err->code);
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
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
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
	curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, msg);
	curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "imagefs/"
			 IMAGEFS_VERSION);
	cc = curl_easy_perform(c->curl);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
	free_headers(h);
	if (cc != CURLE_OK) {
		set_error(err, "", msg[0] ? msg : curl_easy_strerror(cc),
			  NULL);
		*rc = -EIO;
		return cc == CURLE_COULDNT_CONNECT ||
		       cc == CURLE_COULDNT_RESOLVE_HOST ? UNSENT : LOST;
	}
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 500) {
		snprintf(msg, sizeof(msg), "HTTP %ld", status);
		set_error(err, "", msg, NULL);
		*rc = -EIO;
		return LOST;
	}
	return parse_answer(c, resp, err, rc);
}

/* Sleep the backoff of retry n (0 first): base * 2^n plus up to base. */
static void backoff(const struct tc_conf *conf, int n)
{
	unsigned int r = 0;
	long ms;
	struct timespec ts;

	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = 0;
	ms = (conf->backoff_ms << n) + r % (conf->backoff_ms + 1);
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	nanosleep(&ts, NULL);
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
		if (n)
			backoff(c->conf, n - 1);
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
	if (rc)
		log_error("tc: %s in %s failed: %s: %s%s%s", action,
			  region ? region : "-",
			  err->code[0] ? err->code : "network", err->message,
			  err->request_id[0] ? " RequestId " : "",
			  err->request_id);
	return rc;
}
