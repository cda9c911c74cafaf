// SPDX-License-Identifier: GPL-2.0
/*
 * credentials.c - libFuzzer target: the parser of tccli credential files
 * (mountopts/credentials.c, credentials_parse()).
 *
 * Any text: no memory error, no leak, and one of three answers. Accepted:
 * SecretId and SecretKey are non-empty strings that fit their fields, and
 * each field holds what jansson reads from the same text (the token too,
 * or "" without one). Refused: the fields hold no byte of a key, not even
 * of one read before the refusal, and a text that is not JSON says its
 * line.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../../mountopts/credentials.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

/* Whether the n bytes at p are all zero. */
static int zero(const char *p, size_t n)
{
	while (n--)
		if (*p++)
			return 0;
	return 1;
}

/* The string value key of root as a field holds it ("" when absent). */
static const char *field(json_t *root, const char *key)
{
	const char *s = json_string_value(json_object_get(root, key));

	return s ? s : "";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct credentials c;
	json_t *root;
	int rc, line;

	/* what a refusal must wipe: bytes left there by an earlier text */
	memset(&c, 'S', sizeof(c));
	rc = credentials_parse((const char *)data, size, &c, &line);
	CHECK(rc == 0 || rc == -EINVAL || rc == -EACCES);
	root = json_loadb((const char *)data, size, 0, NULL);
	if (rc == -EINVAL) {
		CHECK(!root && line >= 1);
	} else {
		CHECK(root);
	}
	if (rc) {
		CHECK(zero(c.id, sizeof(c.id)) && zero(c.key, sizeof(c.key)) &&
		      zero(c.token, sizeof(c.token)));
		json_decref(root);
		return 0;
	}
	CHECK(c.id[0] && memchr(c.id, 0, sizeof(c.id)));
	CHECK(c.key[0] && memchr(c.key, 0, sizeof(c.key)));
	CHECK(memchr(c.token, 0, sizeof(c.token)));
	CHECK(!strcmp(c.id, field(root, "secretId")));
	CHECK(!strcmp(c.key, field(root, "secretKey")));
	CHECK(!strcmp(c.token, field(root, "token")));
	json_decref(root);
	return 0;
}
