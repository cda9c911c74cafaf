// SPDX-License-Identifier: GPL-2.0
/*
 * marks.c - images marked for deletion by an unlink of their info, in one
 * list per daemon.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "marks.h"

struct mark {
	struct mark *next;
	int64_t row;
	time_t lapses;		/* when the image shows its info again */
};

/* The kernel drops what it keeps of the directory and its info. */
static void shown_again(struct fs *fs, int64_t row)
{
	if (!fs->inval_inode)
		return;
	fs->inval_inode(fs->inval_ctx, mutable_ino(N_IMAGE, row));
	fs->inval_inode(fs->inval_ctx, mutable_ino(N_INFO, row));
}

static void drop(struct mark **p)
{
	struct mark *m = *p;

	*p = m->next;
	free(m);
}

int mark_set(struct fs *fs, int64_t row)
{
	struct mark *m;

	mark_clear(fs, row);
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->row = row;
	m->lapses = time(NULL) + MARK_SECONDS;
	m->next = fs->marks;
	fs->marks = m;
	return 0;
}

void mark_clear(struct fs *fs, int64_t row)
{
	for (struct mark **p = &fs->marks; *p; p = &(*p)->next) {
		if ((*p)->row == row) {
			drop(p);
			return;
		}
	}
}

int fs_tick(struct fs *fs)
{
	time_t now = time(NULL), next = 0;
	struct mark **p = &fs->marks;

	while (*p) {
		if ((*p)->lapses <= now) {
			shown_again(fs, (*p)->row);
			drop(p);
			continue;
		}
		if (!next || (*p)->lapses < next)
			next = (*p)->lapses;
		p = &(*p)->next;
	}
	return next ? (int)(next - now) * 1000 : -1;
}

int marked(struct fs *fs, int64_t row)
{
	fs_tick(fs);
	for (struct mark *m = fs->marks; m; m = m->next)
		if (m->row == row)
			return 1;
	return 0;
}

void marks_free_all(struct fs *fs)
{
	while (fs->marks)
		drop(&fs->marks);
}
