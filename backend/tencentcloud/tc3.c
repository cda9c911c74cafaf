// SPDX-License-Identifier: GPL-2.0
/*
 * tc3.c - TC3-HMAC-SHA256, the signature of Tencent Cloud API 3.0: a
 * canonical request is hashed into a string to sign, which is signed with
 * a key derived from the secret key, the UTC date and the service.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "tc3.h"

#define ALGORITHM "TC3-HMAC-SHA256"
#define SIGNED_HEADERS "content-type;host"

static void to_hex(const unsigned char *md, unsigned int len, char *hex)
{
	static const char digits[] = "0123456789abcdef";

	for (unsigned int i = 0; i < len; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[2 * len] = 0;
}

int tc3_sha256_hex(const void *data, size_t len, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32)
		return -EIO;
	to_hex(md, n, hex);
	return 0;
}

/* out = HMAC-SHA256(key, msg); 32 bytes. */
static int hmac(const void *key, size_t key_len, const char *msg,
		unsigned char out[32])
{
	unsigned int n = 0;

	if (!HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg,
		  strlen(msg), out, &n) || n != 32)
		return -EIO;
	return 0;
}

int tc3_sign(const struct tc3_request *r, char *auth, size_t size,
	     char canonical_hash[65])
{
	char payload_hash[65], request_hash[65], date[16], signature[65];
	unsigned char k_date[32], k_service[32], k_signing[32], sig[32];
	char *canonical = NULL, *to_sign = NULL, *secret = NULL;
	time_t t = (time_t)r->timestamp;
	struct tm tm;
	int rc = -EIO;

	if (!gmtime_r(&t, &tm) || !strftime(date, sizeof(date), "%Y-%m-%d",
					    &tm))
		return -EINVAL;
	if (tc3_sha256_hex(r->payload, r->payload_len, payload_hash))
		return -EIO;
	if (asprintf(&canonical, "POST\n/\n\ncontent-type:%s\nhost:%s\n\n"
		     SIGNED_HEADERS "\n%s", r->content_type, r->host,
		     payload_hash) < 0) {
		canonical = NULL;
		return -ENOMEM;
	}
	if (tc3_sha256_hex(canonical, strlen(canonical), request_hash))
		goto out_free;
	if (canonical_hash)
		memcpy(canonical_hash, request_hash, 65);
	if (asprintf(&to_sign, ALGORITHM "\n%lld\n%s/%s/tc3_request\n%s",
		     (long long)r->timestamp, date, r->service,
		     request_hash) < 0) {
		to_sign = NULL;
		rc = -ENOMEM;
		goto out_free;
	}
	/* built by hand: asprintf may leave copies in memory it frees */
	secret = malloc(strlen(r->secret_key) + 4);
	if (!secret) {
		rc = -ENOMEM;
		goto out_free;
	}
	memcpy(secret, "TC3", 3);
	memcpy(secret + 3, r->secret_key, strlen(r->secret_key) + 1);
	if (hmac(secret, strlen(secret), date, k_date) ||
	    hmac(k_date, 32, r->service, k_service) ||
	    hmac(k_service, 32, "tc3_request", k_signing) ||
	    hmac(k_signing, 32, to_sign, sig))
		goto out_free;
	to_hex(sig, 32, signature);
	rc = snprintf(auth, size, ALGORITHM " Credential=%s/%s/%s/tc3_request,"
		      " SignedHeaders=" SIGNED_HEADERS ", Signature=%s",
		      r->secret_id, date, r->service, signature);
	rc = rc < 0 || (size_t)rc >= size ? -ENAMETOOLONG : 0;
out_free:
	/* the secret key and the keys derived from it (the signing key is
	 * good for a whole day) go no further than this function */
	if (secret) {
		explicit_bzero(secret, strlen(secret));
		free(secret);
	}
	explicit_bzero(k_date, sizeof(k_date));
	explicit_bzero(k_service, sizeof(k_service));
	explicit_bzero(k_signing, sizeof(k_signing));
	free(to_sign);
	free(canonical);
	return rc;
}
