// SPDX-License-Identifier: GPL-2.0
/*
 * scratch.c - the in-memory files of editors and the temporary links of
 * ln, in one list per daemon, newest first.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inode.h"
#include "scratch.h"

#define ALIASES_KEPT		32

/*
 * The names editors and tools make beside info, as patterns: '?' is a
 * letter or digit (what mkstemp puts for an X), '@' a lower case letter,
 * '*' one or more digits; anything else stands for itself. Each was seen
 * with strace: see scratch.h.
 */
static const struct {
	const char *pattern;
	int link;
} scratch_names[] = {
	{ "info~", 0 },			/* editors, cp/mv/install -b */
	{ "info.~*~", 0 },		/* --backup=numbered */
	{ ".info.s@@", 0 },		/* vim's swap, nano's lock */
	{ ".info.s@@x", 0 },		/* vim: can it make the swap file */
	{ "sed??????", 0 },		/* sed -i */
	{ ".goutputstream-??????", 0 },	/* GIO: gio save, file managers */
	{ ".info.??????", 0 },		/* rsync */
	{ "info.???????", 0 },		/* patch */
	{ "XX??????", 0 },		/* perl -i */
	{ "#info#", 0 },		/* emacs's auto-save */
	{ ".#info", 1 },		/* emacs's lock, a symlink */
	{ "info.save", 0 },		/* nano, when it is killed */
	{ "info.save.*", 0 },
};

static int pattern_match(const char *p, const char *s)
{
	for (; *p; p++, s++) {
		switch (*p) {
		case '?':
			if (!isalnum((unsigned char)*s))
				return 0;
			break;
		case '@':
			if (!islower((unsigned char)*s))
				return 0;
			break;
		case '*':
			if (!isdigit((unsigned char)*s))
				return 0;
			while (isdigit((unsigned char)s[1]))
				s++;
			break;
		default:
			if (*p != *s)
				return 0;
		}
	}
	return !*s;
}

/* vim's probe of whether it may write a new file: 4913, 5036, ... */
static int vim_probe(const char *name)
{
	char *end;
	long n;

	if (!isdigit((unsigned char)name[0]) || strlen(name) > 6)
		return 0;
	n = strtol(name, &end, 10);
	return !*end && n >= 4913 && (n - 4913) % 123 == 0;
}

int scratch_name_ok(const char *name)
{
	for (size_t i = 0; i < sizeof(scratch_names) / sizeof(*scratch_names);
	     i++)
		if (pattern_match(scratch_names[i].pattern, name))
			return scratch_names[i].link ? 2 : 1;
	return vim_probe(name);
}

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
		n += s->row == row && !s->alias;
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

int scratch_symlink(struct fs *fs, int64_t row, const char *name,
		    const char *target, struct entry *e)
{
	struct scratch *s;
	int rc;

	if (scratch_named(fs, row, name))
		return -EEXIST;
	rc = scratch_new(fs, row, name, &s);
	if (rc)
		return rc;
	s->data = strdup(target);
	if (!s->data) {
		scratch_remove(fs, s);
		return -ENOMEM;
	}
	s->len = strlen(target);
	s->link = 1;
	scratch_entry(fs, s, e);
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
		   s->link ? S_IFLNK | 0777 : S_IFREG | 0644, s->len,
		   s->mtime);
	e->mutable = 1;
}

int scratch_readlink(struct fs *fs, int64_t id, char *buf, size_t size)
{
	struct scratch *s = scratch_get(fs, id);

	if (!s || !s->link)
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
		return -EFBIG;
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
