/* SPDX-License-Identifier: GPL-2.0 */
/*
 * credentials.h - the Tencent Cloud API keys of a tencentcloud mount, found
 * the way tccli and the SDKs find them.
 */
#ifndef IMAGEFS_CREDENTIALS_H
#define IMAGEFS_CREDENTIALS_H

#include <limits.h>

struct config;

struct credentials {
	char id[128];		/* SecretId */
	char key[128];		/* SecretKey */
	char token[4096];	/* session token, "" when none */
	char from[PATH_MAX];	/* where they came from, for messages */
};

/*
 * In this order: -o credentials=PATH; -o profile=NAME (~/.tccli/NAME.
 * credential); $TENCENTCLOUD_SECRET_ID and $TENCENTCLOUD_SECRET_KEY (with
 * $TENCENTCLOUD_TOKEN or $TENCENTCLOUD_SECURITY_TOKEN); the profile named by
 * $TCCLI_PROFILE, else "default". A file that others may write, or that
 * belongs to another user, is refused; one that others may only read (tccli
 * writes 0644) is taken, with a warning on stderr. Returns 0, or -EACCES
 * with a message on stderr that never holds a secret.
 */
int credentials_load(const struct config *cfg, struct credentials *out);

/* Wipe the secrets from memory. */
void credentials_clear(struct credentials *c);

#endif /* IMAGEFS_CREDENTIALS_H */
