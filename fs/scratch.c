// SPDX-License-Identifier: GPL-2.0
/*
 * scratch.c - the in-memory files of editors and the temporary links of
 * ln, in one list per daemon, newest first.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inode.h"
#include "scratch.h"

#define SCRATCH_MAX_FILES	256
#define ALIASES_KEPT		32

struct scratch *scratch_get(struct fs *fs, int64_t id)
{
	for (struct scratch *s = fs->scratch; s; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

struct scratch *scratch_named(struct fs *fs, int64_t row, const char *name)
{
	for (struct scratch *s = fs->scratch; s; s = s->next)
		if (s->row == row && !s->alias && !strcmp(s->name, name))
			return s;
	return NULL;
}

struct scratch *scratch_next(struct fs *fs, int64_t row, int64_t after)
{
	struct scratch *next = NULL;

	for (struct scratch *s = fs->scratch; s; s = s->next)
		if (s->row == row && !s->alias && s->id > after &&
		    (!next || s->id < next->id))
			next = s;
	return next;
}

int scratch_new(struct fs *fs, int64_t row, const char *name,
		struct scratch **out)
{
	struct scratch *s;
	int n = 0;

	for (s = fs->scratch; s; s = s->next)
		n++;
	if (n >= SCRATCH_MAX_FILES)
		return -ENOSPC;
	if (strlen(name) >= sizeof(s->name))
		return -ENAMETOOLONG;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->id = fs->next_scratch++;
	s->row = row;
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->mtime = time(NULL);
	s->next = fs->scratch;
	fs->scratch = s;
	*out = s;
	return 0;
}

void scratch_remove(struct fs *fs, struct scratch *s)
{
	for (struct scratch **p = &fs->scratch; *p; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			free(s->data);
			free(s);
			return;
		}
	}
}

void scratch_free_all(struct fs *fs)
{
	while (fs->scratch)
		scratch_remove(fs, fs->scratch);
}

void scratch_entry(struct fs *fs, const struct scratch *s, struct entry *e)
{
	file_entry(fs, e, ino_make(N_SCRATCH, s->id),
		   s->row < 0 ? S_IFLNK | 0777 : S_IFREG | 0644, s->len,
		   s->mtime);
	e->mutable = 1;
}

int scratch_readlink(struct fs *fs, int64_t id, char *buf, size_t size)
{
	struct scratch *s = scratch_get(fs, id);

	if (!s || s->row >= 0)
		return -EINVAL;
	if (s->len >= size)
		return -ENAMETOOLONG;
	memcpy(buf, s->data, s->len);
	buf[s->len] = 0;
	return 0;
}

int scratch_resize(struct scratch *s, size_t size)
{
	char *p;

	if (size <= s->len) {
		s->len = size;
		return 0;
	}
	if (size > SCRATCH_MAX_BYTES)
		return -EPERM;
	p = realloc(s->data, size);
	if (!p)
		return -ENOMEM;
	memset(p + s->len, 0, size - s->len);
	s->data = p;
	s->len = size;
	return 0;
}

int scratch_write(struct scratch *s, const char *buf, size_t size, off_t off)
{
	size_t end = off + size;
	int rc;

	if (end > SCRATCH_MAX_BYTES)
		return -EFBIG;
	rc = scratch_resize(s, end > s->len ? end : s->len);
	if (rc)
		return rc;
	memcpy(s->data + off, buf, size);
	s->mtime = time(NULL);
	return 0;
}

void scratch_alias(struct fs *fs, struct scratch *s)
{
	struct scratch *old, *p;
	int n = 0;

	free(s->data);
	s->data = NULL;
	s->len = 0;
	s->alias = 1;
	for (p = fs->scratch, old = NULL; p; p = p->next)
		if (p->alias && ++n > ALIASES_KEPT)
			old = p;
	if (old)
		scratch_remove(fs, old);
}
