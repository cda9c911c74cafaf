// SPDX-License-Identifier: GPL-2.0
/*
 * fills.c - listings the kernel is still copying into its cache: see
 * fills.h.
 */
#include <string.h>

#include "fills.h"

void fills_init(struct fills *f)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
}

void fills_destroy(struct fills *f)
{
	pthread_mutex_destroy(&f->lock);
}

static struct fill *fill_of(struct fills *f, uint64_t ino)
{
	for (int i = 0; i < FILLS_MAX; i++)
		if (f->open[i].ino == ino)
			return &f->open[i];
	return NULL;
}

/*
 * A listing begun again while one is under way keeps its mark: the older
 * reader may still be copying. When all slots are taken the oldest taken
 * is given up; its end then counts as not remembered.
 */
void fills_begin(struct fills *f, uint64_t ino)
{
	struct fill *p;

	pthread_mutex_lock(&f->lock);
	if (!fill_of(f, ino)) {
		p = fill_of(f, 0);
		if (!p) {
			p = &f->open[f->next];
			f->next = (f->next + 1) % FILLS_MAX;
		}
		p->ino = ino;
		p->stale = 0;
	}
	pthread_mutex_unlock(&f->lock);
}

void fills_changed(struct fills *f, uint64_t ino)
{
	struct fill *p;

	if (!ino)
		return;
	pthread_mutex_lock(&f->lock);
	p = fill_of(f, ino);
	if (p)
		p->stale = 1;
	pthread_mutex_unlock(&f->lock);
}

int fills_end(struct fills *f, uint64_t ino)
{
	struct fill *p;
	int drop = 1;

	pthread_mutex_lock(&f->lock);
	p = fill_of(f, ino);
	if (p) {
		drop = p->stale;
		p->ino = 0;
	}
	pthread_mutex_unlock(&f->lock);
	return drop;
}
