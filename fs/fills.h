/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fills.h - listings the kernel is still copying into its cache.
 *
 * Without OPENDIR the kernel caches every listing: it copies each answer
 * into the directory's pages as it reads it, and calls the listing
 * complete at the read that answers nothing. A reader can still be copying
 * an answer given before a change when the invalidation of that change
 * comes: the pages it drops are not there yet, the stale entries land
 * after it, and the next listing (the writer's own) shows them. A change
 * the kernel asked for (create, unlink, rename) is no safer: the version
 * of the directory it checks the pages against is the one seen by the
 * reader that started copying last, not by the one whose entries the
 * pages hold. So a listing is remembered from the answer at its start to
 * the empty answer at its end; a change of the directory meanwhile, of
 * either kind, marks it; and the read that ends a marked listing, or one
 * not remembered, drops the pages first (its entries are all in them by
 * then), so the kernel reads the directory again next time.
 */
#ifndef IMAGEFS_FILLS_H
#define IMAGEFS_FILLS_H

#include <pthread.h>
#include <stdint.h>

#define FILLS_MAX	32	/* listings under way remembered at once */

struct fills {
	pthread_mutex_t lock;	/* changes come from the notify thread */
	struct fill {
		uint64_t ino;	/* 0: a free slot */
		int stale;	/* the directory changed since the answer */
	} open[FILLS_MAX];
	unsigned int next;	/* the slot taken when none is free */
};

void fills_init(struct fills *f);
void fills_destroy(struct fills *f);

/* Directory ino was answered from its start. */
void fills_begin(struct fills *f, uint64_t ino);

/* Directory ino changed (any inode may be given: others are no fill). */
void fills_changed(struct fills *f, uint64_t ino);

/* Directory ino's listing ends (an empty answer): 1 when its pages must
 * be dropped before the answer, else 0. */
int fills_end(struct fills *f, uint64_t ino);

#endif /* IMAGEFS_FILLS_H */
