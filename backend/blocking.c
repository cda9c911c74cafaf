// SPDX-License-Identifier: GPL-2.0
/*
 * blocking.c - a stopgap until fs/ops.c keeps waiting requests itself: a
 * backend that wraps another and makes each call that returned
 * -BACKEND_WAIT again until it does not, waiting for the wrapped backend's
 * wake-up (or 20 ms) in between. The FUSE thread then waits, as it did
 * before backend.h's waiting contract.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "backend.h"

#define RETRY_MS 20

struct blocking {
	struct backend b;
	struct backend *inner;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned int woken;
};

static struct blocking *to_bk(struct backend *b)
{
	return (struct blocking *)b;
}

static void on_wake(void *ctx)
{
	struct blocking *bk = ctx;

	pthread_mutex_lock(&bk->lock);
	bk->woken++;
	pthread_cond_broadcast(&bk->cond);
	pthread_mutex_unlock(&bk->lock);
}

/* Wait for a wake-up after woken, or RETRY_MS. */
static void nap(struct blocking *bk, unsigned int woken)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += RETRY_MS * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&bk->lock);
	if (bk->woken == woken)
		pthread_cond_timedwait(&bk->cond, &bk->lock, &ts);
	pthread_mutex_unlock(&bk->lock);
}

static unsigned int woken(struct blocking *bk)
{
	unsigned int n;

	pthread_mutex_lock(&bk->lock);
	n = bk->woken;
	pthread_mutex_unlock(&bk->lock);
	return n;
}

/* Call expr (which uses in, the wrapped backend) until it does not wait. */
#define AGAIN(b, expr)							\
	do {								\
		struct blocking *bk_ = to_bk(b);			\
		struct backend *in = bk_->inner;			\
		for (;;) {						\
			unsigned int w_ = woken(bk_);			\
			int rc_ = (expr);				\
									\
			if (rc_ != -BACKEND_WAIT)			\
				return rc_;				\
			nap(bk_, w_);					\
		}							\
	} while (0)

static int bk_regions(struct backend *b, struct region *out, int max, int *n)
{
	AGAIN(b, in->ops->regions(in, out, max, n));
}

static int bk_list(struct backend *b, const struct folder *f, int64_t after,
		   image_cb cb, void *ctx)
{
	AGAIN(b, in->ops->list(in, f, after, cb, ctx));
}

static int bk_find(struct backend *b, const struct folder *f,
		   const char *name, image_cb cb, void *ctx)
{
	AGAIN(b, in->ops->find(in, f, name, cb, ctx));
}

static int bk_get(struct backend *b, int64_t row, struct image *out)
{
	AGAIN(b, in->ops->get(in, row, out));
}

static int bk_count(struct backend *b, const struct folder *f, int *n)
{
	AGAIN(b, in->ops->count(in, f, n));
}

static int bk_peers(struct backend *b, const char *region, int64_t after,
		    peer_cb cb, void *ctx)
{
	AGAIN(b, in->ops->peers(in, region, after, cb, ctx));
}

static int bk_shares(struct backend *b, const char *region, const char *peer,
		     int64_t after, share_cb cb, void *ctx)
{
	AGAIN(b, in->ops->shares(in, region, peer, after, cb, ctx));
}

static int bk_get_share(struct backend *b, int64_t row, char *region,
			size_t region_size, char *peer, size_t peer_size,
			struct share *out)
{
	AGAIN(b, in->ops->get_share(in, row, region, region_size, peer,
				    peer_size, out));
}

static int bk_usage(struct backend *b, const char *region, struct usage *u)
{
	AGAIN(b, in->ops->usage(in, region, u));
}

static int bk_create_pending(struct backend *b, const char *region,
			     const char *name, int64_t *row)
{
	AGAIN(b, in->ops->create_pending(in, region, name, row));
}

static int bk_commit(struct backend *b, int64_t row, const struct spec *spec)
{
	AGAIN(b, in->ops->commit(in, row, spec));
}

static int bk_copy(struct backend *b, int64_t row, const char *source_id,
		   const struct spec *spec)
{
	AGAIN(b, in->ops->copy(in, row, source_id, spec));
}

static int bk_check_ops(struct backend *b, const char *region)
{
	AGAIN(b, in->ops->check_ops(in, region));
}

static int bk_rename(struct backend *b, int64_t row, const char *name)
{
	AGAIN(b, in->ops->rename(in, row, name));
}

static int bk_set_description(struct backend *b, int64_t row,
			      const char *description)
{
	AGAIN(b, in->ops->set_description(in, row, description));
}

static int bk_remove(struct backend *b, int64_t row)
{
	AGAIN(b, in->ops->remove(in, row));
}

static int bk_share(struct backend *b, int64_t row, const char *peer)
{
	AGAIN(b, in->ops->share(in, row, peer));
}

static int bk_unshare(struct backend *b, int64_t row, const char *peer)
{
	AGAIN(b, in->ops->unshare(in, row, peer));
}

static int bk_add_peer(struct backend *b, const char *region,
		       const char *peer)
{
	AGAIN(b, in->ops->add_peer(in, region, peer));
}

static int bk_remove_peer(struct backend *b, const char *region,
			  const char *peer)
{
	AGAIN(b, in->ops->remove_peer(in, region, peer));
}

static int bk_changes(struct backend *b, int64_t *seq, change_cb cb,
		      void *ctx)
{
	struct backend *in = to_bk(b)->inner;

	return in->ops->changes(in, seq, cb, ctx);
}

static const char *bk_detail(struct backend *b)
{
	struct backend *in = to_bk(b)->inner;

	return in->ops->detail ? in->ops->detail(in) : NULL;
}

static void bk_close(struct backend *b)
{
	struct blocking *bk = to_bk(b);

	bk->inner->ops->close(bk->inner);
	pthread_cond_destroy(&bk->cond);
	pthread_mutex_destroy(&bk->lock);
	free(bk);
}

static const struct backend_ops blocking_ops = {
	.name = "blocking",
	.close = bk_close,
	.regions = bk_regions,
	.list = bk_list,
	.find = bk_find,
	.get = bk_get,
	.count = bk_count,
	.peers = bk_peers,
	.shares = bk_shares,
	.get_share = bk_get_share,
	.usage = bk_usage,
	.create_pending = bk_create_pending,
	.commit = bk_commit,
	.copy = bk_copy,
	.check_ops = bk_check_ops,
	.rename = bk_rename,
	.set_description = bk_set_description,
	.remove = bk_remove,
	.share = bk_share,
	.unshare = bk_unshare,
	.add_peer = bk_add_peer,
	.remove_peer = bk_remove_peer,
	.changes = bk_changes,
	.detail = bk_detail,
};

int blocking_open(struct backend *inner, struct backend **out)
{
	struct blocking *bk = calloc(1, sizeof(*bk));

	if (!bk) {
		inner->ops->close(inner);
		return -ENOMEM;
	}
	bk->b.ops = &blocking_ops;
	bk->b.account = inner->account;
	bk->inner = inner;
	pthread_mutex_init(&bk->lock, NULL);
	pthread_cond_init(&bk->cond, NULL);
	inner->wake = on_wake;
	inner->wake_ctx = bk;
	*out = &bk->b;
	return 0;
}
