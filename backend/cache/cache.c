// SPDX-License-Identifier: GPL-2.0
/*
 * cache.c - a backend that wraps another (sshfs's cache_wrap): the tree
 * side of backend.h over the service side of the backend it wraps, with
 * the listings kept in a SQLite file (store.c) and every call to the
 * service made by worker threads (work.c).
 *
 * A read is answered from the file. A folder never listed makes the call
 * return -BACKEND_WAIT while a worker lists it; a folder listed longer than
 * the time-to-live ago is served as it is and listed again in the
 * background. What a worker finds changed goes to the change feed, which
 * the kernel's invalidation reads (changes()).
 *
 * One daemon uses a cache file at a time (a lock file says which); another
 * one on the same path gets a file of its own, removed when it unmounts.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../imagerow.h"
#include "cache.h"
#include "../../mountopts/log.h"

#define FEED_MAX 100000		/* changes kept for a feed nobody reads */

double cache_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int cache_region(struct cache *c, const char *name)
{
	for (int i = 0; i < c->nregions; i++)
		if (!strcmp(c->regions[i].name, name))
			return i;
	return -1;
}

const char *cache_folder(const struct folder *f, char *buf, size_t size)
{
	if (f->kind == KIND_SHARED)
		snprintf(buf, size, "shared:%s", f->peer ? f->peer : "");
	else
		snprintf(buf, size, "%s", kind_names[f->kind]);
	return buf;
}

void cache_wake(struct cache *c)
{
	if (c->b.wake)
		c->b.wake(c->b.wake_ctx);
}

/* --- the change feed ------------------------------------------------------ */

struct change_entry {
	struct change_entry *next;
	struct change change;
	char *strings;		/* region, owner, old, new, peer: one block */
};

struct feed {
	pthread_mutex_t lock;
	struct change_entry *head, **tail;
	int64_t seq;
	int n;
};

static char *put(char **p, const char *s)
{
	char *at = *p;
	size_t n;

	if (!s)
		return NULL;
	n = strlen(s) + 1;
	memcpy(at, s, n);
	*p += n;
	return at;
}

void cache_feed(struct cache *c, int64_t row, enum image_kind kind,
		const char *region, const char *owner, const char *old_name,
		const char *new_name, const char *peer)
{
	struct feed *f = c->feed;
	struct change_entry *e = calloc(1, sizeof(*e)), *old = NULL;
	const char *s[] = { region, owner, old_name, new_name, peer };
	size_t len = 0;
	char *p;

	for (size_t i = 0; i < sizeof(s) / sizeof(*s); i++)
		len += s[i] ? strlen(s[i]) + 1 : 0;
	p = e ? malloc(len + 1) : NULL;
	if (!p) {
		free(e);
		return;
	}
	e->strings = p;
	e->change.image = row;
	e->change.kind = kind == KIND_PUBLIC || kind == KIND_MARKET ? kind :
			 KIND_COUNT;
	e->change.region = put(&p, region);
	e->change.owner = put(&p, owner);
	e->change.old_name = put(&p, old_name);
	e->change.new_name = put(&p, new_name);
	e->change.peer = put(&p, peer);
	pthread_mutex_lock(&f->lock);
	e->change.seq = ++f->seq;
	*f->tail = e;
	f->tail = &e->next;
	if (++f->n > FEED_MAX) {
		old = f->head;
		f->head = old->next;
		f->n--;
	}
	pthread_mutex_unlock(&f->lock);
	if (old) {
		free(old->strings);
		free(old);
	}
}

static int cache_changes(struct backend *b, int64_t *seq, change_cb cb,
			 void *ctx)
{
	struct feed *f = to_cache(b)->feed;
	struct change_entry *e;

	pthread_mutex_lock(&f->lock);
	e = f->head;
	f->head = NULL;
	f->tail = &f->head;
	f->n = 0;
	if (*seq < 0)
		*seq = f->seq;
	pthread_mutex_unlock(&f->lock);
	while (e) {
		struct change_entry *next = e->next;

		if (e->change.seq > *seq) {
			*seq = e->change.seq;
			cb(ctx, &e->change);
		}
		free(e->strings);
		free(e);
		e = next;
	}
	return 0;
}

static struct feed *feed_new(void)
{
	struct feed *f = calloc(1, sizeof(*f));

	if (f) {
		pthread_mutex_init(&f->lock, NULL);
		f->tail = &f->head;
	}
	return f;
}

static void feed_free(struct feed *f)
{
	if (!f)
		return;
	while (f->head) {
		struct change_entry *e = f->head;

		f->head = e->next;
		free(e->strings);
		free(e);
	}
	pthread_mutex_destroy(&f->lock);
	free(f);
}

/* --- reads ---------------------------------------------------------------- */

static int region_of(struct cache *c, const char *name)
{
	int r = cache_region(c, name);

	return r < 0 ? -ENOENT : r;
}

static int cache_regions(struct backend *b, struct region *out, int max,
			 int *n)
{
	struct cache *c = to_cache(b);

	*n = c->nregions < max ? c->nregions : max;
	memcpy(out, c->regions, *n * sizeof(*out));
	return 0;
}

/* Folder f may be read now; for shared/<uin>/, its links too. */
static int folder_ready(struct cache *c, const struct folder *f, int links)
{
	int r = region_of(c, f->region);
	int rc = r < 0 ? r : work_ready(c, r, f->kind);

	if (!rc && links && f->kind == KIND_SHARED)
		rc = work_shares_ready(c, r, 0);
	return rc;
}

/* Hand each image row of st to cb; the statement is reset. */
static int each_image(sqlite3_stmt *st, image_cb cb, void *ctx)
{
	struct image img;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		/* a row that cannot be shown whole is logged and left out */
		if (image_from_row(st, 0, &img))
			continue;
		if (cb(ctx, &img))
			break;
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -EIO;
}

static int cache_list(struct backend *b, const struct folder *f,
		      int64_t after, image_cb cb, void *ctx)
{
	struct cache *c = to_cache(b);
	sqlite3_stmt *st;
	char folder[64];
	int rc = folder_ready(c, f, 1);

	if (rc)
		return rc;
	st = cache_stmt(c, C_LIST);
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, f->region, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, cache_folder(f, folder, sizeof(folder)), -1,
			  SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, after);
	return each_image(st, cb, ctx);
}

static int cache_find(struct backend *b, const struct folder *f,
		      const char *name, image_cb cb, void *ctx)
{
	struct cache *c = to_cache(b);
	sqlite3_stmt *st;
	char folder[64];
	int rc = folder_ready(c, f, 0);

	if (rc)
		return rc;
	st = cache_stmt(c, C_FIND);
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, f->region, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, cache_folder(f, folder, sizeof(folder)), -1,
			  SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
	return each_image(st, cb, ctx);
}

static int cache_get(struct backend *b, int64_t row, struct image *out)
{
	struct cache *c = to_cache(b);
	sqlite3_stmt *st;
	int known, r;
	int rc = cache_by_row(c, C_GET, row, &st);

	if (rc)
		return rc;
	rc = image_from_row(st, 0, out);
	known = sqlite3_column_type(st, IMAGE_ROW_COLUMNS) != SQLITE_NULL;
	sqlite3_reset(st);
	if (rc)
		return rc;
	/* SHARED_WITH of my NORMAL image: asked of the service once */
	r = cache_region(c, out->region);
	if (out->kind != KIND_CUSTOM || out->pending || r < 0 ||
	    strcmp(out->state, "NORMAL"))
		return 0;
	return work_shares_ready(c, r, known ? -1 : row);
}

static int cache_count(struct backend *b, const struct folder *f, int *n)
{
	struct cache *c = to_cache(b);
	sqlite3_stmt *st;
	char folder[64];
	int rc = folder_ready(c, f, 0);

	*n = 0;
	if (rc == -BACKEND_WAIT)
		return rc;
	if (rc)
		return 0;	/* a region is listed whatever a folder says */
	st = cache_stmt(c, C_COUNT);
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, f->region, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, cache_folder(f, folder, sizeof(folder)), -1,
			  SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	*n = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : -EIO;
}

/* The peer folders and shares of region r may be read now. */
static int peers_ready(struct cache *c, int r)
{
	int rc = work_ready(c, r, KIND_SHARED);

	if (!rc)
		rc = work_ready(c, r, KIND_CUSTOM);
	if (!rc)
		rc = work_shares_ready(c, r, 0);
	return rc;
}

static int cache_peers(struct backend *b, const char *region, int64_t after,
		       peer_cb cb, void *ctx)
{
	struct cache *c = to_cache(b);
	int r = region_of(c, region);
	sqlite3_stmt *st;
	struct peer p;
	int rc = r < 0 ? r : peers_ready(c, r);

	if (rc)
		return rc;
	st = cache_stmt(c, C_PEERS);
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, region, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, after);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		cache_copy_text(p.uin, sizeof(p.uin), st, 0);
		p.key = sqlite3_column_int64(st, 1);
		p.images = sqlite3_column_int(st, 2);
		p.mtime = sqlite3_column_int64(st, 3);
		if (p.key > 0 && cb(ctx, &p))
			break;
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -EIO;
}

static int cache_shares(struct backend *b, const char *region,
			const char *peer, int64_t after, share_cb cb,
			void *ctx)
{
	struct cache *c = to_cache(b);
	int r = region_of(c, region);
	sqlite3_stmt *st;
	struct share s;
	int rc = r < 0 ? r : work_ready(c, r, KIND_CUSTOM);

	if (!rc)
		rc = work_shares_ready(c, r, 0);
	if (rc)
		return rc;
	st = cache_stmt(c, C_SHARES);
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, region, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, peer, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, after);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		s.row = sqlite3_column_int64(st, 0);
		s.image = sqlite3_column_int64(st, 1);
		cache_copy_text(s.name, sizeof(s.name), st, 2);
		s.mtime = sqlite3_column_int64(st, 3);
		if (cb(ctx, &s))
			break;
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -EIO;
}

static int cache_get_share(struct backend *b, int64_t row, char *region,
			   size_t region_size, char *peer, size_t peer_size,
			   struct share *out)
{
	sqlite3_stmt *st;
	int rc = cache_by_row(to_cache(b), C_GET_SHARE, row, &st);

	if (rc)
		return rc;
	out->row = sqlite3_column_int64(st, 0);
	out->image = sqlite3_column_int64(st, 1);
	cache_copy_text(out->name, sizeof(out->name), st, 2);
	cache_copy_text(region, region_size, st, 3);
	cache_copy_text(peer, peer_size, st, 4);
	out->mtime = sqlite3_column_int64(st, 5);
	sqlite3_reset(st);
	return 0;
}

static int cache_usage(struct backend *b, const char *region,
		       struct usage *u)
{
	struct cache *c = to_cache(b);
	int r = region_of(c, region);
	sqlite3_stmt *st;
	int rc = r < 0 ? r : work_ready(c, r, KIND_CUSTOM);

	if (!rc)
		rc = work_quota_ready(c, r);
	if (rc)
		return rc;
	pthread_mutex_lock(&c->lock);
	*u = c->quota[r];
	pthread_mutex_unlock(&c->lock);
	st = cache_stmt(c, C_SLOTS);
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, region, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	u->images = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : -EIO;
}

/* What this file has of region: never waits, never asks the service. */
static int cache_summary(struct backend *b, const char *region,
			 struct summary *s)
{
	sqlite3_stmt *st = cache_stmt(to_cache(b), C_SUMMARY);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, region, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		summary_from_row(st, s);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : -EIO;
}

/* The daily limit, if the service has one, is its own to check. */
static int cache_check_ops(struct backend *b, const char *region)
{
	(void)b;
	(void)region;
	return 0;
}

static const char *cache_detail(struct backend *b)
{
	struct cache *c = to_cache(b);

	return c->detail[0] ? c->detail : NULL;
}

/* --- open and close ------------------------------------------------------- */

/* A file of this daemon's own goes at unmount, with SQLite's. */
static void remove_files(const char *path)
{
	static const char *const ext[] = { "", "-wal", "-shm", ".lock" };
	char name[PATH_MAX];

	for (size_t i = 0; i < sizeof(ext) / sizeof(*ext); i++)
		if (snprintf(name, sizeof(name), "%s%s", path, ext[i]) <
		    (int)sizeof(name))
			unlink(name);
}

static void cache_close(struct backend *b)
{
	struct cache *c = to_cache(b);

	work_stop(c);
	for (int q = 0; q < C_NREQ; q++)
		sqlite3_finalize(c->stmts[q]);
	sqlite3_close(c->db);
	if (c->inner)
		c->inner->ops->close(c->inner);
	if (c->own_file)
		remove_files(c->path);
	if (c->lock_fd >= 0)
		close(c->lock_fd);
	feed_free(c->feed);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	free(c->path);
	free(c->account);
	free(c);
}

static const struct backend_ops cache_ops = {
	.name = "cache",
	.close = cache_close,
	.regions = cache_regions,
	.list = cache_list,
	.find = cache_find,
	.get = cache_get,
	.count = cache_count,
	.peers = cache_peers,
	.shares = cache_shares,
	.get_share = cache_get_share,
	.usage = cache_usage,
	.summary = cache_summary,
	.create_pending = cache_create_pending,
	.commit = cache_commit,
	.copy = cache_copy,
	.check_ops = cache_check_ops,
	.edit = cache_edit,
	.remove = cache_remove,
	.check_remove = cache_check_remove,
	.share = cache_share,
	.unshare = cache_unshare,
	.add_peer = cache_add_peer,
	.remove_peer = cache_remove_peer,
	.changes = cache_changes,
	.detail = cache_detail,
};

/* mkdir -p of the directory that holds path. */
static int make_parent(const char *path)
{
	char dir[PATH_MAX];

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(dir, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

/*
 * Take path for this daemon (its lock file), or, when another daemon has
 * it, a file of this daemon's own beside it (c->path).
 */
static int take_file(struct cache *c, const char *path)
{
	char lock[PATH_MAX];
	int rc = make_parent(path);

	if (rc) {
		log_error("cannot create the folder of %s: %s", path,
			  strerror(-rc));
		return rc;
	}
	c->path = strdup(path);
	for (int own = 0; c->path && own < 2; own++) {
		if (snprintf(lock, sizeof(lock), "%s.lock", c->path) >=
		    (int)sizeof(lock))
			return -ENAMETOOLONG;
		c->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (c->lock_fd < 0)
			return -errno;
		if (!flock(c->lock_fd, LOCK_EX | LOCK_NB))
			return 0;
		close(c->lock_fd);
		c->lock_fd = -1;
		free(c->path);
		if (asprintf(&c->path, "%s.%d", path, (int)getpid()) < 0)
			c->path = NULL;
		c->own_file = 1;
		if (c->path)
			remove_files(c->path);	/* an earlier daemon's */
	}
	return c->path ? -EBUSY : -ENOMEM;
}

/* When each folder was listed, and the limits, as the file says. */
static void load_state(struct cache *c)
{
	sqlite3_stmt *st;
	int r;

	if (sqlite3_prepare_v2(c->db, "SELECT region, kind, fetched FROM "
			       "folders", -1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW) {
			int k = sqlite3_column_int(st, 1);

			r = cache_region(c, (const char *)
					 sqlite3_column_text(st, 0));
			if (r >= 0 && k >= 0 && k < KIND_COUNT)
				c->fetched[r][k] = sqlite3_column_double(st,
									  2);
		}
		sqlite3_finalize(st);
	}
	if (sqlite3_prepare_v2(c->db, "SELECT region, images_max, ops, "
			       "ops_max, shares_max, copy FROM quota", -1, &st,
			       NULL) != SQLITE_OK)
		return;
	while (sqlite3_step(st) == SQLITE_ROW) {
		r = cache_region(c, (const char *)sqlite3_column_text(st, 0));
		if (r < 0)
			continue;
		c->quota_at[r] = 1;	/* known: asked again with custom/ */
		c->quota[r].images_max = sqlite3_column_int(st, 1);
		c->quota[r].ops = sqlite3_column_int(st, 2);
		c->quota[r].ops_max = sqlite3_column_int(st, 3);
		c->quota[r].shares_max = sqlite3_column_int(st, 4);
		c->quota[r].copy = sqlite3_column_int(st, 5);
	}
	sqlite3_finalize(st);
}

int cache_open(struct backend *inner, const char *path, double ttl,
	       struct backend **out)
{
	struct cache *c = calloc(1, sizeof(*c));
	int rc;

	if (!c) {
		inner->ops->close(inner);
		return -ENOMEM;
	}
	c->b.ops = &cache_ops;
	c->inner = inner;
	c->ttl = ttl;
	c->lock_fd = -1;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	c->feed = feed_new();
	c->account = strdup(inner->account);
	rc = c->feed && c->account ? 0 : -ENOMEM;
	if (!rc) {
		c->b.account = c->account;
		rc = take_file(c, path);
	}
	if (!rc)
		rc = cache_connect(c->path, &c->db);
	if (!rc)
		rc = cache_schema(c->db, &c->b.generation);
	if (!rc)
		rc = inner->ops->regions(inner, c->regions, CACHE_REGIONS,
					 &c->nregions);
	if (!rc) {
		load_state(c);
		rc = work_start(c);
	}
	if (rc) {
		cache_close(&c->b);
		return rc;
	}
	*out = &c->b;
	return 0;
}
