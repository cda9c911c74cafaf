// SPDX-License-Identifier: GPL-2.0
/*
 * credentials.c - Tencent Cloud API keys from the environment or a tccli
 * credential file ({"secretId": ..., "secretKey": ..., "token": ...}).
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "credentials.h"
#include "log.h"

#define FILE_MAX	65536	/* bytes of a credential file */

void credentials_clear(struct credentials *c)
{
	explicit_bzero(c, sizeof(*c));
}

/* Copy a secret; -EACCES when it is missing or does not fit. */
static int take(char *dst, size_t size, const char *src, int needed)
{
	if (!src || !src[0])
		return needed ? -EACCES : 0;
	if (strlen(src) >= size)
		return -EACCES;
	memcpy(dst, src, strlen(src) + 1);
	return 0;
}

/*
 * jansson's free: every buffer wiped first, for the copies of the secrets
 * it makes while parsing (the lexer's buffers, the string values). Any
 * malloc'd block may be given to it, so it can be set at any time.
 */
static void wiping_free(void *p)
{
	if (p)
		explicit_bzero(p, malloc_usable_size(p));
	free(p);
}

/* The whole file at fd, in a buffer the caller wipes; NULL on failure. */
static char *read_all(int fd, size_t *len)
{
	char *buf = malloc(FILE_MAX);
	ssize_t n = 0;

	*len = 0;
	while (buf && *len < FILE_MAX) {
		n = read(fd, buf + *len, FILE_MAX - *len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		*len += n;
	}
	if (buf && (n < 0 || *len == FILE_MAX)) {
		explicit_bzero(buf, FILE_MAX);
		free(buf);
		buf = NULL;
	}
	return buf;
}

static int from_json(struct credentials *c, json_t *root)
{
	int rc = take(c->id, sizeof(c->id),
		      json_string_value(json_object_get(root, "secretId")), 1);

	if (!rc)
		rc = take(c->key, sizeof(c->key), json_string_value(
			  json_object_get(root, "secretKey")), 1);
	if (!rc)
		rc = take(c->token, sizeof(c->token), json_string_value(
			  json_object_get(root, "token")), 0);
	return rc;
}

int credentials_parse(const char *text, size_t len, struct credentials *out,
		      int *line)
{
	json_error_t jerr;
	json_t *root;
	int rc;

	*line = 0;
	explicit_bzero(out->id, sizeof(out->id));
	explicit_bzero(out->key, sizeof(out->key));
	explicit_bzero(out->token, sizeof(out->token));
	json_set_alloc_funcs(malloc, wiping_free);
	root = json_loadb(text, len, 0, &jerr);
	if (root) {
		rc = from_json(out, root);
		json_decref(root);
	} else {
		*line = jerr.line;
		rc = -EINVAL;
	}
	/* jerr.text may quote the text */
	explicit_bzero(&jerr, sizeof(jerr));
	if (rc) {
		explicit_bzero(out->id, sizeof(out->id));
		explicit_bzero(out->key, sizeof(out->key));
	}
	return rc;
}

static int from_file(struct credentials *c, const char *path)
{
	struct stat st;
	char *text;
	size_t len;
	int fd, rc, line;

	snprintf(c->from, sizeof(c->from), "%s", path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_error("credentials %s: %s", path, strerror(errno));
		return -EACCES;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		log_error("credentials %s: not a file", path);
		close(fd);
		return -EACCES;
	}
	if (st.st_uid != geteuid()) {
		log_error("credentials %s belong to another user (uid %u): "
			  "refused", path, (unsigned int)st.st_uid);
		close(fd);
		return -EACCES;
	}
	if (st.st_mode & 022) {
		log_error("credentials %s may be written by group or others "
			  "(mode %04o): refused; run: chmod 600 %s", path,
			  (unsigned int)(st.st_mode & 07777), path);
		close(fd);
		return -EACCES;
	}
	if (st.st_mode & 044)	/* tccli writes them 0644 */
		log_warn("credentials %s may be read by others (mode %04o); "
			 "run: chmod 600 %s", path,
			 (unsigned int)(st.st_mode & 07777), path);
	text = read_all(fd, &len);
	close(fd);
	if (!text) {
		log_error("credentials %s: cannot read it, or larger than %d "
			  "bytes", path, FILE_MAX);
		return -EACCES;
	}
	rc = credentials_parse(text, len, c, &line);
	explicit_bzero(text, FILE_MAX);
	free(text);
	/* only the line is said: the text holds secrets */
	if (rc == -EINVAL)
		log_error("credentials %s: not JSON (line %d)", path, line);
	else if (rc)
		log_error("credentials %s: no secretId and secretKey", path);
	return rc ? -EACCES : 0;
}

static int from_profile(struct credentials *c, const char *profile)
{
	const char *home = getenv("HOME");
	char path[PATH_MAX];

	if (!profile[0] || strchr(profile, '/')) {
		log_error("bad profile name: %s", profile);
		return -EACCES;
	}
	if (snprintf(path, sizeof(path), "%s/.tccli/%s.credential",
		     home ? home : "", profile) >= (int)sizeof(path))
		return -EACCES;
	return from_file(c, path);
}

static int from_env(struct credentials *c)
{
	const char *token = getenv("TENCENTCLOUD_TOKEN");

	if (!token)
		token = getenv("TENCENTCLOUD_SECURITY_TOKEN");
	snprintf(c->from, sizeof(c->from), "$TENCENTCLOUD_SECRET_ID");
	if (take(c->id, sizeof(c->id), getenv("TENCENTCLOUD_SECRET_ID"), 1) ||
	    take(c->key, sizeof(c->key), getenv("TENCENTCLOUD_SECRET_KEY"),
		 1) ||
	    take(c->token, sizeof(c->token), token, 0)) {
		log_error("$TENCENTCLOUD_SECRET_ID needs "
			  "$TENCENTCLOUD_SECRET_KEY");
		return -EACCES;
	}
	return 0;
}

int credentials_load(const struct config *cfg, struct credentials *out)
{
	const char *profile = getenv("TCCLI_PROFILE");
	int rc;

	memset(out, 0, sizeof(*out));
	if (cfg->credentials)
		rc = from_file(out, cfg->credentials);
	else if (cfg->profile)
		rc = from_profile(out, cfg->profile);
	else if (getenv("TENCENTCLOUD_SECRET_ID"))
		rc = from_env(out);
	else
		rc = from_profile(out, profile && profile[0] ? profile :
				  "default");
	if (rc) {
		credentials_clear(out);
		log_error("no usable Tencent Cloud credentials: set "
			  "TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY, "
			  "run tccli configure, or give -o credentials=PATH");
	}
	return rc;
}
