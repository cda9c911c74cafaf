// SPDX-License-Identifier: GPL-2.0
/*
 * errors.c - the last error of each image, newest first.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../mountopts/log.h"
#include "errors.h"

#define ERRORS_KEPT 256

struct last_error {
	struct last_error *next;
	int64_t row;
	char msg[320];
};

int failed(struct fs *fs, int64_t row, const char *what, int rc)
{
	const char *detail = NULL;
	char msg[320];

	if (rc >= 0 || !row || rc == -BACKEND_WAIT)
		return rc;
	if (fs->b->ops->why)
		detail = fs->b->ops->why(fs->b);
	snprintf(msg, sizeof(msg), "%s: %s%s%s%s", what, strerror(-rc),
		 detail ? " (" : "", detail ? detail : "", detail ? ")" : "");
	log_error("image %lld: %s", (long long)row, msg);
	fs_set_error(fs, row, msg);
	return rc;
}

void fs_set_error(struct fs *fs, int64_t row, const char *msg)
{
	struct last_error **p, *e = NULL;
	int n = 0;

	for (p = &fs->errors; *p; p = &(*p)->next) {
		if ((*p)->row == row || ++n >= ERRORS_KEPT) {
			e = *p;
			*p = e->next;	/* taken out, put back first */
			break;
		}
	}
	if (!e)
		e = calloc(1, sizeof(*e));
	if (!e)
		return;
	e->row = row;
	snprintf(e->msg, sizeof(e->msg), "%s", msg);
	e->next = fs->errors;
	fs->errors = e;
}

const char *fs_last_error(struct fs *fs, int64_t row)
{
	for (struct last_error *e = fs->errors; e; e = e->next)
		if (e->row == row)
			return e->msg;
	return NULL;
}

void errors_free_all(struct fs *fs)
{
	while (fs->errors) {
		struct last_error *e = fs->errors;

		fs->errors = e->next;
		free(e);
	}
}
