/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cache.h - internals of the cache backend, shared by its files: cache.c
 * (open, close, the reads of the tree side, the change feed), store.c (the
 * SQLite file: what a fetch brings in, what a change does), work.c (the
 * worker threads, the changes under way, the writes of the tree side).
 *
 * The cache wraps any backend that has the service side of backend.h. What
 * it shows comes from its SQLite file: folders as the service last listed
 * them, the accounts each of my images is shared with, and what the service
 * does not know (pending images, peer folders). A request never waits for
 * the service: what is not there yet, and every change, is handed to the
 * worker threads and the call returns -BACKEND_WAIT (backend.h).
 */
#ifndef IMAGEFS_CACHE_H
#define IMAGEFS_CACHE_H

#include <pthread.h>
#include <stdint.h>

#include <sqlite3.h>

#include "../backend.h"

#define CACHE_REGIONS	64
#define CACHE_WORKERS	8	/* calls to the service at once */
#define CACHE_SHARES_ASKED 64	/* images whose shares are asked at once */
/* the image slots of a region whose quota was not asked yet, for df: the
 * cloud's documented default (TENCENT-API.md, section 5) */
#define CACHE_QUOTA_DEFAULT "500"

enum creq {
	C_LIST,
	C_FIND,
	C_GET,
	C_COUNT,
	C_PEERS,
	C_SHARES,
	C_GET_SHARE,
	C_ROW,
	C_SLOTS,
	C_UNSHARED,
	C_BY_ID,
	C_SUMMARY,
	C_NREQ
};

/* A change asked of the service: sent by a worker, applied when the
 * request that asked collects it (work.c). */
struct chg;
struct job;
struct feed;

struct cache {
	struct backend b;	/* first: a backend * is a cache * */
	struct backend *inner;
	char *path;
	char *account;
	double ttl;
	int lock_fd;		/* flock: one daemon per cache file */
	int own_file;		/* path is this daemon's alone: removed */
	sqlite3 *db;		/* the FUSE thread's connection */
	sqlite3_stmt *stmts[C_NREQ];
	struct region regions[CACHE_REGIONS];
	int nregions;
	char detail[256];	/* the service's words on the last failure */

	pthread_mutex_t lock;	/* all that follows */
	pthread_cond_t cond;	/* a job is queued, or stop */
	struct job *urgent, *background;	/* queues: a request waits for
						 * the first */
	double fetched[CACHE_REGIONS][KIND_COUNT];	/* 0: never */
	unsigned char used[CACHE_REGIONS][KIND_COUNT];	/* served: keep it
							 * fresh */
	unsigned char queued[CACHE_REGIONS][KIND_COUNT];
	int failed[CACHE_REGIONS][KIND_COUNT];	/* a first fetch's error */
	double failed_at[CACHE_REGIONS][KIND_COUNT];
	struct usage quota[CACHE_REGIONS];
	double quota_at[CACHE_REGIONS];		/* 0: never asked */
	unsigned char quota_queued[CACHE_REGIONS];
	int quota_failed[CACHE_REGIONS];
	double quota_failed_at[CACHE_REGIONS];
	unsigned char shares_queued[CACHE_REGIONS];
	int64_t shares_rows[CACHE_SHARES_ASKED];	/* asked one by one */
	int nshares_rows;
	unsigned char shares_used[CACHE_REGIONS];
	int shares_failed[CACHE_REGIONS];
	double shares_failed_at[CACHE_REGIONS];
	double polled[CACHE_REGIONS];
	unsigned char poll_queued[CACHE_REGIONS];
	unsigned int gen[CACHE_REGIONS];	/* moved by each change */
	int inflight[CACHE_REGIONS];	/* changes sent, not yet applied */
	struct chg *chgs;
	int stop;
	pthread_t workers[CACHE_WORKERS];
	int nworkers;
	pthread_t ticker;
	pthread_cond_t tick_cond;	/* stop, for the ticker */
	int ticking;
	struct feed *feed;	/* the change feed (cache.c) */
};

static inline struct cache *to_cache(struct backend *b)
{
	return (struct cache *)b;
}

double cache_now(void);
int cache_region(struct cache *c, const char *name);
const char *cache_folder(const struct folder *f, char *buf, size_t size);
/* Wake the requests that wait (b->wake), if the caller set it. */
void cache_wake(struct cache *c);

/* cache.c: the change feed, from the workers to the kernel */
void cache_feed(struct cache *c, int64_t row, enum image_kind kind,
		const char *region, const char *owner, const char *old_name,
		const char *new_name, const char *peer);

/* store.c */
int cache_connect(const char *path, sqlite3 **out);
/* Make or check the file's tables; *generation: its cache_id. */
int cache_schema(sqlite3 *db, uint32_t *generation);
int cache_exec(sqlite3 *db, const char *sql);
sqlite3_stmt *cache_stmt(struct cache *c, enum creq q);
/* query q's row for ?1 = row in *out (the caller resets it), -ENOENT, -EIO */
int cache_by_row(struct cache *c, enum creq q, int64_t row,
		 sqlite3_stmt **out);
/* column col of st's row into dst ("" for NULL), cut to size */
void cache_copy_text(char *dst, size_t size, sqlite3_stmt *st, int col);
/* Keep what a worker fetched in its connection's temp.incoming first. */
int store_begin_incoming(sqlite3 *db);
int store_incoming(sqlite3 *db, const struct image *img);
/* Pending row is now the service's new image img (no shares yet); in the
 * caller's transaction. */
int store_made(sqlite3 *db, int64_t row, const struct image *img,
	       double now);
/* My image row was renamed: each of its shares gets a new row, so that a
 * link's row (its inode) never stands for two targets; in the caller's
 * transaction. */
int store_relink(sqlite3 *db, int64_t row);
/* Make the folder (region, f) what temp.incoming holds (all: every
 * image of it; else only the images listed); the changes go to the feed.
 * In the caller's transaction. */
int store_merge(struct cache *c, sqlite3 *db, const struct folder *f,
		int all);
/* The accounts image row is shared with (comma separated), fetched at
 * now; feed changes. In the caller's transaction. */
int store_shares(struct cache *c, sqlite3 *db, int64_t row,
		 const char *accounts, double now);
int store_tx(sqlite3 *db, const char *sql);

/* work.c */
int work_start(struct cache *c);
void work_stop(struct cache *c);
/* 0 when folder kind of region r may be read; -BACKEND_WAIT (asked for
 * it); or the error of the fetch that failed. */
int work_ready(struct cache *c, int r, enum image_kind kind);
/* 0 when region r's limits are known (c->quota[r]); -BACKEND_WAIT
 * (asked for them), or the error of the call that failed. */
int work_quota_ready(struct cache *c, int r);
/* 0 when the shares of my image row (0: of all of region r's; -1: none)
 * are known, or were just asked in vain (what is known is shown then);
 * else -BACKEND_WAIT (asked for them). Either way the shares of region r
 * are kept fresh from then on. */
int work_shares_ready(struct cache *c, int r, int64_t row);
void work_queue_fetch(struct cache *c, int r, enum image_kind kind,
		      int urgent);

/* work.c: the writes of the tree side */
int cache_create_pending(struct backend *b, const char *region,
			 const char *name, int64_t *row);
int cache_commit(struct backend *b, int64_t row, const struct spec *spec);
int cache_copy(struct backend *b, int64_t row, const char *source_id,
	       const struct spec *spec);
int cache_edit(struct backend *b, int64_t row, const char *from,
	       const char *name, const char *description, int64_t replace);
int cache_remove(struct backend *b, int64_t row);
int cache_check_remove(struct backend *b, int64_t row);
int cache_share(struct backend *b, int64_t row, const char *peer);
int cache_unshare(struct backend *b, int64_t row, const char *peer);
int cache_add_peer(struct backend *b, const char *region, const char *peer);
int cache_remove_peer(struct backend *b, const char *region,
		      const char *peer);

#endif /* IMAGEFS_CACHE_H */
