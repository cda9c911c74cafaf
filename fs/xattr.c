// SPDX-License-Identifier: GPL-2.0
/*
 * xattr.c - user.imagefs.* extended attributes (with -o xattr): an image
 * directory carries its info keys, a region and its custom/ carry the
 * region's slots, today's operations (where the service counts them) and
 * whether copies work, and every image directory the last error of an
 * operation on it.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fs.h"
#include "errors.h"
#include "info.h"

#define PREFIX "user.imagefs."

static const char *const usage_names[] = { "images", "ops_today", "copy" };

/* Hand one name=value pair to the visitor; stop when it returns non-zero. */
typedef int (*attr_cb)(void *ctx, const char *name, const char *value);

static int image_attrs(struct fs *fs, int64_t row, attr_cb cb, void *ctx)
{
	struct image img;
	char name[64], buf[INFO_VALUE_MAX];
	int rc = fs->b->ops->get(fs->b, row, &img);

	if (rc)
		return rc;
	for (int k = 0; k < INFO_INSTANCE; k++) {
		const char *v = info_value(&img, k, buf, sizeof(buf));
		size_t i;

		if (k == INFO_ERROR && fs_last_error(fs, row))
			v = info_show(fs_last_error(fs, row), SHOW_TEXT, buf,
				      sizeof(buf));	/* newer */
		if (!v)
			continue;
		snprintf(name, sizeof(name), PREFIX "%s", info_key_names[k]);
		for (i = sizeof(PREFIX) - 1; name[i]; i++)
			name[i] = tolower((unsigned char)name[i]);
		if (cb(ctx, name, v))
			return 0;
	}
	return 0;
}

static int region_attrs(struct fs *fs, const struct region *r, attr_cb cb,
			void *ctx)
{
	char vals[3][32];
	struct usage u;
	int rc = fs->b->ops->usage(fs->b, r->name, &u);

	if (rc)
		return rc;
	snprintf(vals[0], sizeof(vals[0]), "%d/%d", u.images, u.images_max);
	snprintf(vals[1], sizeof(vals[1]), "%d/%d", u.ops, u.ops_max);
	snprintf(vals[2], sizeof(vals[2]), "%s",
		 u.copy ? "supported" : "unsupported");
	for (int i = 0; i < 3; i++) {
		char name[64];

		if (i == 1 && u.ops_max < 0)
			continue;	/* the service has no daily limit */
		snprintf(name, sizeof(name), PREFIX "%s", usage_names[i]);
		if (cb(ctx, name, vals[i]))
			break;
	}
	return 0;
}

static int each_attr(struct fs *fs, uint64_t ino, attr_cb cb, void *ctx)
{
	struct node n;
	int rc = fs_node(fs, ino, &n);

	if (rc)
		return rc;
	if (n.type == N_IMAGE)
		return image_attrs(fs, n.id, cb, ctx);
	if (n.type == N_REGION ||
	    (n.type == N_FOLDER && n.kind == KIND_CUSTOM))
		return region_attrs(fs, n.region, cb, ctx);
	return 0;
}

struct get_ctx {
	const char *name;
	char *buf;
	size_t size;
	int rc;
};

static int get_cb(void *ctx, const char *name, const char *value)
{
	struct get_ctx *c = ctx;
	size_t len = strlen(value);

	if (strcmp(name, c->name))
		return 0;
	if (!c->size)
		c->rc = len;
	else if (len > c->size)
		c->rc = -ERANGE;
	else {
		memcpy(c->buf, value, len);
		c->rc = len;
	}
	return 1;
}

int fs_getxattr(struct fs *fs, uint64_t ino, const char *name, char *buf,
		size_t size)
{
	struct get_ctx c = { name, buf, size, -ENODATA };
	int rc;

	if (strncmp(name, PREFIX, sizeof(PREFIX) - 1))
		return -ENODATA;	/* security.*, system.*: no SQL */
	rc = each_attr(fs, ino, get_cb, &c);
	return rc ? rc : c.rc;
}

struct list_ctx {
	char *buf;
	size_t size;
	size_t len;
};

static int list_cb(void *ctx, const char *name, const char *value)
{
	struct list_ctx *c = ctx;
	size_t n = strlen(name) + 1;

	(void)value;
	if (c->size && c->len + n <= c->size)
		memcpy(c->buf + c->len, name, n);
	c->len += n;
	return 0;
}

int fs_listxattr(struct fs *fs, uint64_t ino, char *buf, size_t size)
{
	struct list_ctx c = { buf, size, 0 };
	int rc = each_attr(fs, ino, list_cb, &c);

	if (rc)
		return rc;
	if (size && c.len > size)
		return -ERANGE;
	return c.len;
}

/*
 * cp -a, mv and editors copy extended attributes: on my own images every
 * name is accepted and dropped (the info file is where attributes are
 * changed); everything else is a read-only tree.
 */
int fs_setxattr(struct fs *fs, uint64_t ino, const char *name)
{
	struct entry e;
	int rc = fs_getattr(fs, ino, &e);

	if (rc)
		return rc;
	if (!(e.st.st_mode & 0200))
		return -EROFS;
	(void)name;	/* imagefs's own too: cp -a between mounts is quiet */
	return 0;
}
