/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tc3.h - Tencent Cloud API 3.0 request signing (TC3-HMAC-SHA256), for the
 * tencentcloud backend: the Authorization header of a POST request whose
 * signed headers are content-type and host.
 */
#ifndef IMAGEFS_TC3_H
#define IMAGEFS_TC3_H

#include <stddef.h>
#include <stdint.h>

struct tc3_request {
	const char *secret_id;
	const char *secret_key;
	const char *service;		/* cvm */
	const char *host;		/* cvm.tencentcloudapi.com */
	const char *content_type;	/* application/json; charset=utf-8 */
	const char *payload;
	size_t payload_len;
	int64_t timestamp;		/* unix seconds: X-TC-Timestamp */
};

/* SHA-256 of len bytes as 64 lowercase hex digits and a NUL. */
int tc3_sha256_hex(const void *data, size_t len, char hex[65]);

/*
 * The Authorization header value of r in auth. When canonical_hash is not
 * NULL it gets the hex SHA-256 of the canonical request (for tests).
 * Returns 0, -ENAMETOOLONG when auth is too small, -EIO on a crypto error.
 */
int tc3_sign(const struct tc3_request *r, char *auth, size_t size,
	     char canonical_hash[65]);

#endif /* IMAGEFS_TC3_H */
