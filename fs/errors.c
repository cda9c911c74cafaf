// SPDX-License-Identifier: GPL-2.0
/*
 * errors.c - why an operation on an image failed, in one line: logged
 * once, and kept as the image's last error, newest first.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../mountopts/log.h"
#include "errors.h"
#include "names.h"

#define ERRORS_KEPT 256
#define ERROR_MAX 640

struct last_error {
	struct last_error *next;
	int64_t row;
	char msg[ERROR_MAX];
};

int fs_why(struct fs *fs, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(fs->why, sizeof(fs->why), fmt, ap);
	va_end(ap);
	return rc;
}

/* Where image row is in the tree: ap-guangzhou/custom/web-server-2026. */
static void image_path(struct fs *fs, int64_t row, char *buf, size_t size)
{
	char entry[512];
	struct image img;
	int rc;

	memset(&img, 0, sizeof(img));
	rc = fs->b->ops->get(fs->b, row, &img);
	/* a get that would wait for more than names (the cache: the
	 * accounts an image is shared with) has read the names already */
	if (rc == -BACKEND_WAIT && img.name[0] && img.region[0])
		rc = 0;
	if (rc ||
	    name_display(img.name, img.id, img.dup, entry, sizeof(entry))) {
		snprintf(buf, size, "image %lld", (long long)row);
		return;
	}
	if (img.kind == KIND_SHARED)
		snprintf(buf, size, "%s/shared/%.32s/%.400s", img.region,
			 img.owner, entry);
	else
		snprintf(buf, size, "%s/%s/%.400s", img.region,
			 kind_names[img.kind], entry);
}

/* Keep (and log) msg as the last error of row. */
static void set_error(struct fs *fs, int64_t row, const char *msg)
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

int failed(struct fs *fs, int64_t row, const char *what, int rc)
{
	const char *why = fs->why[0] ? fs->why : NULL;
	char reason[ERROR_MAX], path[600], line[ERROR_MAX];

	if (rc >= 0 || !row || rc == -BACKEND_WAIT)
		return rc;
	if (!why && fs->b->ops->detail)
		why = fs->b->ops->detail(fs->b);
	/* before get(), which may reuse the backend's buffer */
	snprintf(reason, sizeof(reason), "%s%s%s", strerror(-rc),
		 why ? ": " : "", why ? why : "");
	fs->why[0] = 0;
	image_path(fs, row, path, sizeof(path));
	snprintf(line, sizeof(line), "%.300s: %s: %.300s", path, what, reason);
	/* one line, whatever a cloud's message holds */
	for (char *p = line; *p; p++)
		if ((unsigned char)*p < ' ' || *p == 0x7f)
			*p = ' ';
	log_error("%s", line);
	set_error(fs, row, line);
	return rc;
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
