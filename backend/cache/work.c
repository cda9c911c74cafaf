// SPDX-License-Identifier: GPL-2.0
/*
 * work.c - everything the cache asks of the service, done by worker threads
 * so that no request waits for it; and the writes of the tree side.
 *
 * Jobs: the listing of a folder, the shares of my images, the images that
 * are still settling (CREATING, SYNCING, IMPORTING), and changes. A request
 * waits (-BACKEND_WAIT) only for a job it needs: those go first; the rest
 * (the first listing of everything right after mounting, listings older
 * than the time-to-live that the kernel was given) go after. The service
 * paces its own calls (the client keeps to the cloud's rate limits).
 *
 * A change is sent once: the record of it (struct chg) is found again by
 * the retry of the request that asked for it, which waits while it runs
 * and then collects its result, applying it to the file in its own thread,
 * so that what the request reads before its change reads the same on every
 * retry. A result that nobody collects (the request was interrupted) is
 * applied after GRACE_S all the same: whole, or not at all. While a change
 * of a region is under way, listings of its custom images and shares that
 * a worker brings in are dropped: they could undo it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"

#define TICK_MS		250	/* the ticker's pace */
#define MIN_REFRESH_S	0.5	/* a folder is listed at most this often */
#define POLL_S		1.0	/* settling images are asked about */
#define GRACE_S		5.0	/* a result nobody collects is applied */
#define FAILED_S	2.0	/* a failed first listing is reported */
#define SHARES_ALL	0	/* J_SHARES: every unknown one of a region */
#define SHARES_STALE	(-1)	/* J_SHARES: every stale one of a region */
#define PEERS_MAX	SHARES_MAX	/* peer folders of a region */

enum job_type { J_FETCH, J_QUOTA, J_SHARES, J_POLL, J_CHANGE };

struct job {
	struct job *next;
	enum job_type type;
	int r;
	enum image_kind kind;	/* J_FETCH */
	int64_t row;		/* J_SHARES: an image, SHARES_ALL, _STALE */
	struct chg *chg;	/* J_CHANGE */
};

enum chg_op { OP_MAKE, OP_EDIT, OP_DELETE, OP_SHARE, OP_UNSHARE };

struct chg {
	struct chg *next;
	enum chg_op op;
	int64_t row;
	int r;
	char *key;		/* what was asked: a retry asks the same */
	int dry_run;
	char region[32], id[16], name[NAME_MAX_BYTES + 1];
	char *arg;		/* a new name or a peer */
	char *arg2;		/* OP_EDIT: a new description */
	int64_t replace;	/* OP_EDIT: my pending row the new name takes
				 * the place of (mv onto it), or 0 */
	struct spec spec;	/* OP_MAKE */
	char *strs[9];		/* the spec's strings, owned */
	char copy_region[32];	/* where spec.copy_of is, if known */
	int want_shares;	/* the image's shares are not known yet */
	/* the worker's answer */
	int done, rc;
	double done_at;
	struct image img;	/* OP_MAKE: the new image */
	char *shares;		/* the image's accounts, when fetched */
	char detail[256];
};

/* One worker's (or the ticker's) connection to the file. */
struct worker {
	struct cache *c;
	sqlite3 *db;
};

/* --- jobs ----------------------------------------------------------------- */

/* Queue a job (under c->lock); urgent ones first. */
static void queue(struct cache *c, enum job_type type, int r,
		  enum image_kind kind, int64_t row, struct chg *g,
		  int urgent)
{
	struct job *j = calloc(1, sizeof(*j)), **p;

	if (!j)
		return;
	j->type = type;
	j->r = r;
	j->kind = kind;
	j->row = row;
	j->chg = g;
	for (p = urgent ? &c->urgent : &c->background; *p; p = &(*p)->next)
		;
	*p = j;
	pthread_cond_signal(&c->cond);
}

/* A fetch of folder kind of r still in the background queue: made urgent,
 * a request waits for it now. */
static void promote(struct cache *c, int r, enum image_kind kind)
{
	struct job **p, *j, **q;

	for (p = &c->background; (j = *p); p = &j->next) {
		if (j->type != J_FETCH || j->r != r || j->kind != kind)
			continue;
		*p = j->next;
		j->next = NULL;
		for (q = &c->urgent; *q; q = &(*q)->next)
			;
		*q = j;
		return;
	}
}

void work_queue_fetch(struct cache *c, int r, enum image_kind kind,
		      int urgent)
{
	if (c->queued[r][kind]) {
		if (urgent)
			promote(c, r, kind);
		return;
	}
	c->queued[r][kind] = 1;
	queue(c, J_FETCH, r, kind, 0, NULL, urgent);
}

static struct job *pop(struct cache *c)
{
	struct job **q = c->urgent ? &c->urgent : &c->background;
	struct job *j = *q;

	if (j)
		*q = j->next;
	return j;
}

static int image_cb_store(void *ctx, const struct image *img)
{
	struct worker *w = ctx;

	return store_incoming(w->db, img) ? 1 : 0;
}

/* Whether a listing of region r begun at gen0 may go in: no change of the
 * region came between, none is under way. */
static int still(struct cache *c, int r, unsigned int gen0)
{
	int ok;

	pthread_mutex_lock(&c->lock);
	ok = c->gen[r] == gen0 && !c->inflight[r];
	pthread_mutex_unlock(&c->lock);
	return ok;
}

static unsigned int gen_of(struct cache *c, int r)
{
	unsigned int gen;

	pthread_mutex_lock(&c->lock);
	gen = c->gen[r];
	pthread_mutex_unlock(&c->lock);
	return gen;
}

static int save_quota(sqlite3 *db, const char *region, const struct usage *u)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO quota (region, "
			       "images_max, ops, ops_max, shares_max, copy) "
			       "VALUES (?1, ?2, ?3, ?4, ?5, ?6)", -1, &st,
			       NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, region, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, u->images_max);
	sqlite3_bind_int(st, 3, u->ops);
	sqlite3_bind_int(st, 4, u->ops_max);
	sqlite3_bind_int(st, 5, u->shares_max);
	sqlite3_bind_int(st, 6, u->copy);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

static int save_fetched(sqlite3 *db, const char *region, int kind, double at)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO folders (region, "
			       "kind, fetched) VALUES (?1, ?2, ?3)", -1, &st,
			       NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, region, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, kind);
	sqlite3_bind_double(st, 3, at);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/* The limits of region; the service may have none to say. */
static int fetch_quota(struct cache *c, const char *region, struct usage *u)
{
	memset(u, 0, sizeof(*u));
	u->ops_max = -1;
	if (!c->inner->ops->quota)
		return 0;
	return c->inner->ops->quota(c->inner, region, u);
}

static void run_fetch(struct worker *w, int r, enum image_kind kind)
{
	struct cache *c = w->c;
	const char *region = c->regions[r].name;
	struct folder f = { region, kind, NULL };
	unsigned int gen0 = gen_of(c, r);
	int watched = kind == KIND_CUSTOM;
	double now = cache_now();
	struct usage u;
	int quota, rc = store_begin_incoming(w->db);

	/* the limits are asked once needed, then kept fresh with custom/ */
	pthread_mutex_lock(&c->lock);
	quota = kind == KIND_CUSTOM && c->quota_at[r];
	pthread_mutex_unlock(&c->lock);
	if (!rc)
		rc = c->inner->ops->fetch(c->inner, &f, image_cb_store, w);
	if (!rc && quota)
		rc = fetch_quota(c, region, &u);
	if (!rc)
		rc = store_tx(w->db, "BEGIN IMMEDIATE");
	if (!rc && watched && !still(c, r, gen0)) {
		/* a change came between: the ticker asks again later */
		store_tx(w->db, "ROLLBACK");
		pthread_mutex_lock(&c->lock);
		c->queued[r][kind] = 0;
		pthread_mutex_unlock(&c->lock);
		return;
	}
	if (!rc) {
		rc = store_merge(c, w->db, &f, 1);
		if (!rc && quota)
			rc = save_quota(w->db, region, &u);
		if (!rc)
			rc = save_fetched(w->db, region, kind, now);
		rc = store_tx(w->db, rc ? "ROLLBACK" : "COMMIT") ? -EIO : rc;
	}
	pthread_mutex_lock(&c->lock);
	c->queued[r][kind] = 0;
	if (!rc) {
		c->fetched[r][kind] = now;
		c->failed[r][kind] = 0;
		if (quota) {
			c->quota[r] = u;
			c->quota_at[r] = now;
		}
	} else if (!c->fetched[r][kind]) {
		c->failed[r][kind] = rc;
		c->failed_at[r][kind] = cache_now();
	}
	pthread_mutex_unlock(&c->lock);
}

static void run_quota(struct worker *w, int r)
{
	struct cache *c = w->c;
	const char *region = c->regions[r].name;
	struct usage u;
	int rc = fetch_quota(c, region, &u);

	if (!rc)
		rc = store_tx(w->db, "BEGIN IMMEDIATE");
	if (!rc) {
		rc = save_quota(w->db, region, &u);
		rc = store_tx(w->db, rc ? "ROLLBACK" : "COMMIT") ? -EIO : rc;
	}
	pthread_mutex_lock(&c->lock);
	c->quota_queued[r] = 0;
	if (!rc) {
		c->quota[r] = u;
		c->quota_at[r] = cache_now();
	} else {
		c->quota_failed[r] = rc;
		c->quota_failed_at[r] = cache_now();
	}
	pthread_mutex_unlock(&c->lock);
}

/* The accounts of a share listing, comma separated, in a growing buffer. */
struct accounts {
	char *list;
	size_t len;
};

static int account_cb(void *ctx, const struct peer *p)
{
	struct accounts *a = ctx;
	size_t n = strlen(p->uin);
	char *list = realloc(a->list, a->len + n + 2);

	if (!list)
		return 1;
	a->list = list;
	if (a->len)
		a->list[a->len++] = ',';
	memcpy(a->list + a->len, p->uin, n + 1);
	a->len += n;
	return 0;
}

/* The accounts my image id of region is shared with: 0 and *out. */
static int fetch_shares(struct cache *c, const char *region, const char *id,
			char **out)
{
	struct accounts a = { NULL, 0 };
	int rc = c->inner->ops->fetch_shares(c->inner, region, id,
					     account_cb, &a);

	if (rc == -ENOENT)
		rc = 0;		/* gone: the next listing says so */
	if (!rc && !a.list)
		a.list = strdup("");
	if (!rc && !a.list)
		rc = -ENOMEM;
	if (rc)
		free(a.list);
	else
		*out = a.list;
	return rc;
}

/* Forget that the shares of row (or of region r) are asked for. */
static void shares_asked(struct cache *c, int r, int64_t row)
{
	pthread_mutex_lock(&c->lock);
	if (row > 0) {
		for (int i = 0; i < c->nshares_rows; i++) {
			if (c->shares_rows[i] == row) {
				c->shares_rows[i] =
					c->shares_rows[--c->nshares_rows];
				break;
			}
		}
	} else {
		c->shares_queued[r] = 0;
	}
	pthread_mutex_unlock(&c->lock);
}

static void run_shares(struct worker *w, int r, int64_t which)
{
	struct cache *c = w->c;
	const char *region = c->regions[r].name;
	sqlite3_stmt *st;
	int rc = 0;

	if (sqlite3_prepare_v2(w->db, "SELECT row, id FROM images WHERE "
			       "region = ?1 AND folder = 'custom' AND id IS "
			       "NOT NULL AND state = 'NORMAL' AND CASE ?2 "
			       "WHEN 0 THEN shares_at IS NULL WHEN -1 THEN "
			       "shares_at < ?3 ELSE row = ?2 END", -1, &st,
			       NULL) != SQLITE_OK) {
		shares_asked(c, r, which);
		return;
	}
	sqlite3_bind_text(st, 1, region, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, which);
	sqlite3_bind_double(st, 3, cache_now() - c->ttl);
	/* the images first: the statement ends before any write */
	struct { int64_t row; char id[16]; } *todo = NULL;
	int n = 0;

	while (sqlite3_step(st) == SQLITE_ROW) {
		void *p = realloc(todo, (n + 1) * sizeof(*todo));

		if (!p)
			break;
		todo = p;
		todo[n].row = sqlite3_column_int64(st, 0);
		cache_copy_text(todo[n].id, sizeof(todo[n].id), st, 1);
		n++;
	}
	sqlite3_finalize(st);
	for (int i = 0; i < n && !rc; i++) {
		unsigned int gen0 = gen_of(c, r);
		char *accounts = NULL;

		rc = fetch_shares(c, region, todo[i].id, &accounts);
		if (!rc)
			rc = store_tx(w->db, "BEGIN IMMEDIATE");
		if (!rc && !still(c, r, gen0)) {
			store_tx(w->db, "ROLLBACK");
		} else if (!rc) {
			rc = store_shares(c, w->db, todo[i].row, accounts,
					  cache_now());
			rc = store_tx(w->db, rc ? "ROLLBACK" : "COMMIT") ?
			     -EIO : rc;
		}
		free(accounts);
	}
	free(todo);
	if (rc) {
		pthread_mutex_lock(&c->lock);
		c->shares_failed[r] = rc;
		c->shares_failed_at[r] = cache_now();
		pthread_mutex_unlock(&c->lock);
	}
	shares_asked(c, r, which);
}

static void run_poll(struct worker *w, int r)
{
	struct cache *c = w->c;
	const char *region = c->regions[r].name;
	struct folder f = { region, KIND_CUSTOM, NULL };
	unsigned int gen0 = gen_of(c, r);
	sqlite3_stmt *st;
	char **ids = NULL;
	int n = 0, rc;

	if (sqlite3_prepare_v2(w->db, "SELECT id FROM images WHERE region = "
			       "?1 AND folder = 'custom' AND id IS NOT NULL "
			       "AND state IN ('CREATING', 'SYNCING', "
			       "'IMPORTING')", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, region, -1, SQLITE_STATIC);
		while (sqlite3_step(st) == SQLITE_ROW) {
			char **p = realloc(ids, (n + 1) * sizeof(*ids));

			if (!p)
				break;
			ids = p;
			ids[n] = strdup((const char *)sqlite3_column_text(st,
									  0));
			if (ids[n])
				n++;
		}
		sqlite3_finalize(st);
	}
	rc = n ? store_begin_incoming(w->db) : -ENOENT;
	if (!rc)
		rc = c->inner->ops->fetch_ids(c->inner, region,
					      (const char *const *)ids, n,
					      image_cb_store, w);
	if (!rc)
		rc = store_tx(w->db, "BEGIN IMMEDIATE");
	if (!rc) {
		rc = still(c, r, gen0) ? store_merge(c, w->db, &f, 0) : 0;
		store_tx(w->db, rc ? "ROLLBACK" : "COMMIT");
	}
	while (n)
		free(ids[--n]);
	free(ids);
	pthread_mutex_lock(&c->lock);
	c->poll_queued[r] = 0;
	c->polled[r] = cache_now();
	pthread_mutex_unlock(&c->lock);
}

static void run_change(struct worker *w, struct chg *g)
{
	struct cache *c = w->c;
	struct backend *in = c->inner;
	const char *detail;
	int rc;

	switch (g->op) {
	case OP_MAKE:
		rc = in->ops->make(in, g->region, g->name, &g->spec, &g->img);
		break;
	case OP_EDIT:
		rc = in->ops->modify(in, g->region, g->id, g->arg, g->arg2);
		break;
	case OP_DELETE:
		rc = in->ops->delete(in, g->region, g->id, g->dry_run);
		break;
	default:
		rc = in->ops->permit(in, g->region, g->id, g->arg,
				     g->op == OP_SHARE);
	}
	detail = rc && in->ops->detail ? in->ops->detail(in) : NULL;
	if (detail)
		snprintf(g->detail, sizeof(g->detail), "%s", detail);
	/* reads after the change must not wait: its shares come with it */
	if (!rc && g->want_shares && g->op != OP_DELETE && g->op != OP_MAKE &&
	    fetch_shares(c, g->region, g->id, &g->shares))
		g->shares = NULL;
	pthread_mutex_lock(&c->lock);
	g->rc = rc;
	g->done = 1;
	g->done_at = cache_now();
	pthread_mutex_unlock(&c->lock);
}

static void run(struct worker *w, struct job *j)
{
	switch (j->type) {
	case J_FETCH:
		run_fetch(w, j->r, j->kind);
		break;
	case J_QUOTA:
		run_quota(w, j->r);
		break;
	case J_SHARES:
		run_shares(w, j->r, j->row);
		break;
	case J_POLL:
		run_poll(w, j->r);
		break;
	case J_CHANGE:
		run_change(w, j->chg);
		break;
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct cache *c = w->c;

	pthread_mutex_lock(&c->lock);
	while (!c->stop) {
		struct job *j = pop(c);

		if (!j) {
			pthread_cond_wait(&c->cond, &c->lock);
			continue;
		}
		pthread_mutex_unlock(&c->lock);
		run(w, j);
		free(j);
		cache_wake(c);
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	sqlite3_close(w->db);
	free(w);
	return NULL;
}

/* --- changes: sent by a worker, applied by whoever collects them ---------- */

static void chg_free(struct chg *g)
{
	for (size_t i = 0; i < sizeof(g->strs) / sizeof(*g->strs); i++)
		free(g->strs[i]);
	free(g->key);
	free(g->arg);
	free(g->arg2);
	free(g->shares);
	free(g);
}

static int run_sql(sqlite3 *db, const char *sql, int64_t row,
		   const char *text)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, row);
	if (text)
		sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/* Pending row g->row is now the service's new image g->img. */
static int apply_make(sqlite3 *db, struct chg *g, double now)
{
	struct image m = g->img;

	if (!m.description[0] && g->spec.description)
		snprintf(m.description, sizeof(m.description), "%s",
			 g->spec.description);
	if (!m.created)
		m.created = (int64_t)now;
	m.mtime = m.created;
	return store_made(db, g->row, &m, now);
}

/* Do to the file (db) what the service did for change g. */
static int apply(struct cache *c, sqlite3 *db, struct chg *g)
{
	double now = cache_now();
	const char *new_name = g->name, *peer = NULL;
	int rc = store_tx(db, "BEGIN IMMEDIATE");

	if (rc)
		return rc;
	switch (g->op) {
	case OP_MAKE:
		rc = apply_make(db, g, now);
		break;
	case OP_EDIT:
		/* the pending image mv took the place of, if still pending */
		if (g->replace)
			rc = run_sql(db, "DELETE FROM images WHERE row = ?1 "
				     "AND id IS NULL", g->replace, NULL);
		if (!rc && g->arg) {
			new_name = g->arg;
			rc = run_sql(db, "UPDATE images SET name = ?2 WHERE "
				     "row = ?1", g->row, g->arg);
			if (!rc)
				rc = store_relink(db, g->row);
		}
		if (!rc && g->arg2)
			rc = run_sql(db, "UPDATE images SET description = "
				     "nullif(?2, '') WHERE row = ?1", g->row,
				     g->arg2);
		if (!rc)
			rc = run_sql(db, "UPDATE images SET mtime = "
				     "strftime('%s') WHERE row = ?1", g->row,
				     NULL);
		break;
	case OP_DELETE:
		/* the image goes, and its directory with it */
		new_name = NULL;
		rc = run_sql(db, "DELETE FROM shares WHERE image = ?1", g->row,
			     NULL);
		if (!rc)
			rc = run_sql(db, "DELETE FROM images WHERE row = ?1",
				     g->row, NULL);
		break;
	case OP_SHARE:
		peer = g->arg;
		rc = run_sql(db, "INSERT OR IGNORE INTO shares (image, "
			     "account) VALUES (?1, ?2)", g->row, g->arg);
		break;
	case OP_UNSHARE:
		peer = g->arg;
		rc = run_sql(db, "DELETE FROM shares WHERE image = ?1 AND "
			     "account = ?2", g->row, g->arg);
		break;
	}
	if (!rc && g->shares)
		rc = store_shares(c, db, g->row, g->shares, now);
	rc = store_tx(db, rc ? "ROLLBACK" : "COMMIT") ? -EIO : rc;
	if (!rc)
		cache_feed(c, g->row, KIND_CUSTOM, g->region, c->account,
			   g->name, new_name, peer);
	if (!rc && g->op == OP_EDIT && g->replace)
		cache_feed(c, g->replace, KIND_CUSTOM, g->region, c->account,
			   g->arg, NULL, NULL);
	return rc;
}

/* Change g is over: apply what it did (if it did something), once. */
static void finish(struct cache *c, sqlite3 *db, struct chg *g)
{
	if (!g->rc && !g->dry_run && g->done)
		apply(c, db, g);
	pthread_mutex_lock(&c->lock);
	if (!g->dry_run) {
		c->gen[g->r]++;
		c->inflight[g->r]--;
	}
	pthread_mutex_unlock(&c->lock);
}

/* The record of a change of row, taken off the list; NULL: none. */
static struct chg *take(struct cache *c, struct chg *g)
{
	for (struct chg **p = &c->chgs; *p; p = &(*p)->next) {
		if (*p == g) {
			*p = g->next;
			return g;
		}
	}
	return NULL;
}

static struct chg *chg_of(struct cache *c, int64_t row)
{
	for (struct chg *g = c->chgs; g; g = g->next)
		if (g->row == row)
			return g;
	return NULL;
}

/*
 * Ask for change want (its key says what it is) of want->row: sent now, or
 * found again when a retry asks the same. 0 or the service's error when it
 * is done (applied to the file now), -BACKEND_WAIT while it runs. Another
 * change of the row waits until the one before is collected by its own
 * request (or, nobody asking for it, applied after GRACE_S).
 */
static int submit(struct cache *c, struct chg *want)
{
	struct chg *g;
	int rc;

	pthread_mutex_lock(&c->lock);
	g = chg_of(c, want->row);
	if (g && (!g->done || strcmp(g->key, want->key))) {
		pthread_mutex_unlock(&c->lock);
		chg_free(want);
		return -BACKEND_WAIT;
	}
	if (g) {
		take(c, g);
		pthread_mutex_unlock(&c->lock);
		chg_free(want);
		finish(c, c->db, g);
		rc = g->rc;
		snprintf(c->detail, sizeof(c->detail), "%s", g->detail);
		chg_free(g);
		return rc;
	}
	want->next = c->chgs;
	c->chgs = want;
	if (!want->dry_run) {
		c->gen[want->r]++;
		c->inflight[want->r]++;
	}
	queue(c, J_CHANGE, want->r, 0, 0, want, 1);
	pthread_mutex_unlock(&c->lock);
	return -BACKEND_WAIT;
}

/* -BACKEND_WAIT while a change of row is under way or not yet collected:
 * what the caller read may be changing. */
static int row_busy(struct cache *c, int64_t row)
{
	int busy;

	pthread_mutex_lock(&c->lock);
	busy = chg_of(c, row) != NULL;
	pthread_mutex_unlock(&c->lock);
	return busy ? -BACKEND_WAIT : 0;
}

/* --- the ticker: listings to refresh, images to poll, results to apply ---- */

static int query_regions(struct cache *c, sqlite3 *db, const char *sql,
			 double since, unsigned char *out)
{
	sqlite3_stmt *st;
	int n = 0;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_double(st, 1, since);
	while (sqlite3_step(st) == SQLITE_ROW) {
		int r = cache_region(c, (const char *)sqlite3_column_text(st,
									  0));

		if (r >= 0) {
			out[r] = 1;
			n++;
		}
	}
	sqlite3_finalize(st);
	return n;
}

static void tick(struct worker *w)
{
	struct cache *c = w->c;
	double now = cache_now();
	double age = c->ttl > MIN_REFRESH_S ? c->ttl : MIN_REFRESH_S;
	unsigned char settling[CACHE_REGIONS] = { 0 };
	unsigned char stale[CACHE_REGIONS] = { 0 };
	struct chg *over = NULL;

	query_regions(c, w->db, "SELECT DISTINCT region FROM images WHERE "
		      "folder = 'custom' AND id IS NOT NULL AND state IN "
		      "('CREATING', 'SYNCING', 'IMPORTING') AND ?1 = ?1",
		      0, settling);
	query_regions(c, w->db, "SELECT DISTINCT region FROM images WHERE "
		      "folder = 'custom' AND shares_at < ?1", now - age,
		      stale);
	pthread_mutex_lock(&c->lock);
	for (int r = 0; r < c->nregions; r++) {
		for (int k = 0; k < KIND_COUNT; k++)
			if (c->used[r][k] && c->fetched[r][k] &&
			    now - c->fetched[r][k] >= age)
				work_queue_fetch(c, r, k, 0);
		if (settling[r] && !c->poll_queued[r] &&
		    now - c->polled[r] >= POLL_S) {
			c->poll_queued[r] = 1;
			queue(c, J_POLL, r, 0, 0, NULL, 0);
		}
		if (stale[r] && c->shares_used[r] && !c->shares_queued[r]) {
			c->shares_queued[r] = 1;
			queue(c, J_SHARES, r, 0, SHARES_STALE, NULL, 0);
		}
	}
	for (struct chg *g = c->chgs, *next; g; g = next) {
		next = g->next;
		if (g->done && now - g->done_at >= GRACE_S) {
			take(c, g);
			g->next = over;
			over = g;
		}
	}
	pthread_mutex_unlock(&c->lock);
	while (over) {
		struct chg *g = over;

		over = g->next;
		finish(c, w->db, g);
		chg_free(g);
	}
}

static void *ticker_main(void *arg)
{
	struct worker *w = arg;
	struct cache *c = w->c;
	struct timespec ts;

	pthread_mutex_lock(&c->lock);
	while (!c->stop) {
		pthread_mutex_unlock(&c->lock);
		tick(w);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += TICK_MS * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_mutex_lock(&c->lock);
		if (!c->stop)
			pthread_cond_timedwait(&c->tick_cond, &c->lock, &ts);
	}
	pthread_mutex_unlock(&c->lock);
	sqlite3_close(w->db);
	free(w);
	return NULL;
}

/* --- what a request may read now ------------------------------------------ */

int work_ready(struct cache *c, int r, enum image_kind kind)
{
	int rc = 0;

	pthread_mutex_lock(&c->lock);
	if (c->fetched[r][kind]) {
		c->used[r][kind] = 1;	/* the kernel has it: keep it fresh */
	} else if (c->failed[r][kind] &&
		   cache_now() - c->failed_at[r][kind] < FAILED_S) {
		rc = c->failed[r][kind];
	} else {
		work_queue_fetch(c, r, kind, 1);
		rc = -BACKEND_WAIT;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int work_quota_ready(struct cache *c, int r)
{
	int rc = 0;

	pthread_mutex_lock(&c->lock);
	if (c->quota_at[r]) {
		rc = 0;
	} else if (c->quota_failed[r] &&
		   cache_now() - c->quota_failed_at[r] < FAILED_S) {
		rc = c->quota_failed[r];
	} else {
		if (!c->quota_queued[r]) {
			c->quota_queued[r] = 1;
			queue(c, J_QUOTA, r, 0, 0, NULL, 1);
		}
		rc = -BACKEND_WAIT;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* Images of region r whose shares are not known. */
static int unshared(struct cache *c, int r)
{
	sqlite3_stmt *st = cache_stmt(c, C_UNSHARED);
	int n = 0;

	if (!st)
		return 0;
	sqlite3_bind_text(st, 1, c->regions[r].name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	return n;
}

int work_shares_ready(struct cache *c, int r, int64_t row)
{
	int rc = -BACKEND_WAIT, asked = 0;

	if (row == 0 && !unshared(c, r))
		row = -1;
	pthread_mutex_lock(&c->lock);
	c->shares_used[r] = 1;
	if (row < 0) {
		rc = 0;
	} else if (c->shares_failed[r] &&
		   cache_now() - c->shares_failed_at[r] < FAILED_S) {
		rc = 0;	/* the service cannot say now: what is known */
	} else if (row > 0) {
		for (int i = 0; i < c->nshares_rows; i++)
			asked |= c->shares_rows[i] == row;
		if (!asked && c->nshares_rows < CACHE_SHARES_ASKED) {
			c->shares_rows[c->nshares_rows++] = row;
			queue(c, J_SHARES, r, 0, row, NULL, 1);
		}
	} else if (!c->shares_queued[r]) {
		c->shares_queued[r] = 1;
		queue(c, J_SHARES, r, 0, SHARES_ALL, NULL, 1);
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* --- the writes of the tree side ------------------------------------------ */

/* What the file says of image row, for a change of it. */
struct target {
	int r;
	char region[32], id[16], folder[64], name[NAME_MAX_BYTES + 1];
	char state[16], description[DESC_MAX_BYTES + 1];
	int pending;
	int shares_known;
};

static int target_of(struct cache *c, int64_t row, struct target *t)
{
	sqlite3_stmt *st;
	int rc = cache_by_row(c, C_ROW, row, &st);

	if (rc)
		return rc;
	cache_copy_text(t->region, sizeof(t->region), st, 0);
	cache_copy_text(t->id, sizeof(t->id), st, 1);
	cache_copy_text(t->folder, sizeof(t->folder), st, 2);
	cache_copy_text(t->name, sizeof(t->name), st, 3);
	cache_copy_text(t->state, sizeof(t->state), st, 4);
	t->shares_known = sqlite3_column_type(st, 5) != SQLITE_NULL;
	cache_copy_text(t->description, sizeof(t->description), st, 6);
	sqlite3_reset(st);
	t->r = cache_region(c, t->region);
	t->pending = !t->id[0];
	if (t->r < 0)
		return -ENOENT;
	return strcmp(t->folder, "custom") ? -EPERM : 0;
}

/* What a change is: its op, then each of its n strings, one string. */
static char *key_of(enum chg_op op, int dry_run, const char *const *s, int n)
{
	size_t len = 16, at;
	char *key;

	for (int i = 0; i < n; i++)
		len += (s[i] ? strlen(s[i]) : 1) + 1;
	key = malloc(len);
	if (!key)
		return NULL;
	at = snprintf(key, len, "%d %d", op, dry_run);
	for (int i = 0; i < n; i++)
		at += snprintf(key + at, len - at, "\x1f%s",
			       s[i] ? s[i] : "\x1e");
	return key;
}

/*
 * A new change record of my image t (row): op with arg (and arg2, and the
 * pending row it replaces), or only its check (dry_run).
 */
static struct chg *chg_new(const struct target *t, int64_t row,
			   enum chg_op op, const char *arg, const char *arg2,
			   int dry_run, int64_t replace)
{
	char other[24];
	const char *args[] = { arg, arg2, other };
	struct chg *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->op = op;
	g->row = row;
	g->r = t->r;
	snprintf(g->region, sizeof(g->region), "%s", t->region);
	snprintf(g->id, sizeof(g->id), "%s", t->id);
	snprintf(g->name, sizeof(g->name), "%s", t->name);
	g->want_shares = !t->shares_known && !strcmp(t->state, "NORMAL");
	g->arg = arg ? strdup(arg) : NULL;
	g->arg2 = arg2 ? strdup(arg2) : NULL;
	g->dry_run = dry_run;
	g->replace = replace;
	snprintf(other, sizeof(other), "%lld", (long long)replace);
	g->key = key_of(op, dry_run, args, 3);
	if ((arg && !g->arg) || (arg2 && !g->arg2) || !g->key) {
		chg_free(g);
		return NULL;
	}
	return g;
}

static int change(struct cache *c, int64_t row, enum chg_op op,
		  const char *arg, const char *arg2, int dry_run,
		  int64_t replace)
{
	struct target t;
	struct chg *g;
	int rc = target_of(c, row, &t);

	if (rc)
		return rc;
	g = chg_new(&t, row, op, arg, arg2, dry_run, replace);
	return g ? submit(c, g) : -ENOMEM;
}

/* -EEXIST when one of my images of region r (not row) is called name. */
static int name_taken(struct cache *c, int r, const char *name, int64_t row)
{
	struct folder f = { c->regions[r].name, KIND_CUSTOM, NULL };
	sqlite3_stmt *st = cache_stmt(c, C_FIND);
	int rc, taken = 0;

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, f.region, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, "custom", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		taken |= sqlite3_column_int64(st, 0) != row;
	sqlite3_reset(st);
	return taken ? -EEXIST : 0;
}

int cache_create_pending(struct backend *b, const char *region,
			 const char *name, int64_t *row)
{
	struct cache *c = to_cache(b);
	int r = cache_region(c, region);
	struct usage u;
	sqlite3_stmt *st;
	int rc;

	if (r < 0)
		return -ENOENT;
	/* pending images count against the service's quota here */
	rc = b->ops->usage(b, region, &u);
	if (!rc && u.images_max > 0 && u.images >= u.images_max)
		rc = -EDQUOT;
	if (!rc)
		rc = name_taken(c, r, name, 0);
	if (rc)
		return rc;
	if (sqlite3_prepare_v2(c->db, "INSERT INTO images (region, folder, "
			       "kind, owner, name, state, created, mtime) "
			       "VALUES (?1, 'custom', ?2, ?3, ?4, 'PENDING', "
			       "strftime('%s'), strftime('%s'))", -1, &st,
			       NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, region, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, kind_names[KIND_CUSTOM], -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, c->account, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -EIO;
	*row = sqlite3_last_insert_rowid(c->db);
	return 0;
}

/* Keep a copy of s in g (for the spec), NULL staying NULL. */
static const char *keep(struct chg *g, int i, const char *s)
{
	g->strs[i] = s ? strdup(s) : NULL;
	return g->strs[i];
}

/* A commit (copy_of NULL) or copy of pending row. */
static int make(struct cache *c, int64_t row, const char *copy_of,
		const struct spec *spec)
{
	const char *s[] = { spec->description, spec->instance,
			    spec->import_url, spec->sha256, spec->os_name,
			    spec->os_type, spec->platform, spec->arch,
			    copy_of };
	sqlite3_stmt *st;
	struct target t;
	struct chg *g;
	int rc = target_of(c, row, &t);

	if (rc)
		return rc;
	if (!t.pending)	/* the service cannot make an image again */
		return spec->amend ? -EPERM : -EEXIST;
	g = chg_new(&t, row, OP_MAKE, NULL, NULL, 0, 0);
	if (!g)
		return -ENOMEM;
	free(g->key);
	g->key = key_of(OP_MAKE, spec->dry_run, s, sizeof(s) / sizeof(*s));
	g->dry_run = spec->dry_run;
	g->spec.dry_run = spec->dry_run;
	g->spec.description = keep(g, 0, s[0]);
	g->spec.instance = keep(g, 1, s[1]);
	g->spec.import_url = keep(g, 2, s[2]);
	g->spec.sha256 = keep(g, 3, s[3]);
	g->spec.os_name = keep(g, 4, s[4]);
	g->spec.os_type = keep(g, 5, s[5]);
	g->spec.platform = keep(g, 6, s[6]);
	g->spec.arch = keep(g, 7, s[7]);
	g->spec.copy_of = keep(g, 8, s[8]);
	for (size_t i = 0; i < sizeof(s) / sizeof(*s); i++)
		rc |= s[i] && !g->strs[i];
	if (rc || !g->key) {
		chg_free(g);
		return -ENOMEM;
	}
	/* where the source is, when the file knows: no search */
	st = copy_of ? cache_stmt(c, C_BY_ID) : NULL;
	if (st) {
		sqlite3_bind_text(st, 1, copy_of, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW) {
			cache_copy_text(g->copy_region,
					sizeof(g->copy_region), st, 0);
			g->spec.copy_region = g->copy_region;
		}
		sqlite3_reset(st);
	}
	return submit(c, g);
}

int cache_commit(struct backend *b, int64_t row, const struct spec *spec)
{
	return make(to_cache(b), row, NULL, spec);
}

int cache_copy(struct backend *b, int64_t row, const char *source_id,
	       const struct spec *spec)
{
	return make(to_cache(b), row, source_id, spec);
}

/* A change of a pending image: the cache's alone, once no change of it
 * is under way. */
static int pending_change(struct cache *c, int64_t row, const char *sql,
			  const char *text)
{
	int rc = row_busy(c, row);

	return rc ? rc : run_sql(c->db, sql, row, text);
}

/*
 * My pending image replace, which a new name (mv onto its directory) takes
 * the place of: 0 when it may, or is gone already (*replace 0 then).
 */
static int replaceable(struct cache *c, const struct target *t,
		       const char *name, int64_t *replace)
{
	struct target p;
	int rc = *replace ? target_of(c, *replace, &p) : 0;

	if (rc == -ENOENT || !*replace) {
		*replace = 0;
		return 0;
	}
	if (rc)
		return rc;
	if (!p.pending)
		return -ENOTEMPTY;	/* committed meanwhile */
	if (p.r != t->r || strcmp(p.name, name))
		return -EINVAL;
	return 0;
}

/*
 * See struct backend_ops' edit: one change; what equals what the image
 * has is no change (also the retry of a change that is done).
 */
int cache_edit(struct backend *b, int64_t row, const char *from,
	       const char *name, const char *description, int64_t replace)
{
	struct cache *c = to_cache(b);
	struct target t;
	int rc = target_of(c, row, &t);

	if (rc)
		return rc;
	if (name && !strcmp(name, t.name))
		name = NULL;
	if (description && !strcmp(description, t.description))
		description = NULL;
	if (!name && !description)
		return 0;
	if (from && strcmp(from, t.name))
		return -ENOENT;		/* renamed meanwhile */
	if (name)
		rc = replaceable(c, &t, name, &replace);
	if (!rc && !t.pending)
		return change(c, row, OP_EDIT, name, description, 0, replace);
	if (!rc && description)
		rc = -EINVAL;	/* a pending image has no description */
	if (!rc)
		rc = row_busy(c, row);
	if (!rc && replace)
		rc = pending_change(c, replace, "DELETE FROM images WHERE "
				    "row = ?1", NULL);
	if (!rc)
		rc = name_taken(c, t.r, name, row);
	return rc ? rc : pending_change(c, row, "UPDATE images SET name = ?2, "
					"mtime = strftime('%s') WHERE row = "
					"?1", name);
}

/* My image goes, its directory with it; rmdir of a pending one. */
int cache_remove(struct backend *b, int64_t row)
{
	struct cache *c = to_cache(b);
	struct target t;
	int rc = target_of(c, row, &t);

	if (rc || !t.pending)
		return rc ? rc : change(c, row, OP_DELETE, NULL, NULL, 0, 0);
	return pending_change(c, row, "DELETE FROM images WHERE row = ?1",
			      NULL);
}

/* What the service would answer a delete (its dry run), changing nothing. */
int cache_check_remove(struct backend *b, int64_t row)
{
	struct cache *c = to_cache(b);
	struct target t;
	int rc = target_of(c, row, &t);

	if (rc || t.pending)
		return rc;
	return change(c, row, OP_DELETE, NULL, NULL, 1, 0);
}

int cache_share(struct backend *b, int64_t row, const char *peer)
{
	struct cache *c = to_cache(b);
	struct target t;
	int rc;

	if (!strcmp(peer, c->account))
		return -EINVAL;
	rc = target_of(c, row, &t);
	if (rc || t.pending)
		return rc ? rc : -EPERM;
	return change(c, row, OP_SHARE, peer, NULL, 0, 0);
}

int cache_unshare(struct backend *b, int64_t row, const char *peer)
{
	struct cache *c = to_cache(b);
	struct target t;
	int rc = target_of(c, row, &t);

	if (rc || t.pending)
		return rc ? rc : -ENOENT;
	return change(c, row, OP_UNSHARE, peer, NULL, 0, 0);
}

/* sql prepared, ?1 region and ?2 peer bound (NULL: it failed). */
static sqlite3_stmt *region_peer(struct cache *c, const char *sql,
				 const char *region, const char *peer)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_text(st, 1, region, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, peer, -1, SQLITE_STATIC);
	return st;
}

/* Images shared between me and peer in region, either way. */
static int peer_busy(struct cache *c, const char *region, const char *peer,
		     int *n)
{
	sqlite3_stmt *st;
	int rc;

	st = region_peer(c, "SELECT (SELECT count(*) FROM shares s JOIN "
			 "images i ON i.row = s.image WHERE i.region = ?1 AND "
			 "s.account = ?2) + (SELECT count(*) FROM images WHERE "
			 "region = ?1 AND folder = 'shared:' || ?2)", region,
			 peer);
	if (!st)
		return -EIO;
	rc = sqlite3_step(st);
	*n = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -EIO;
}

/*
 * The peer folder just added to region, counted with the others: past
 * PEERS_MAX it goes again, -EMLINK (as many accounts as an image may be
 * shared with).
 */
static int peers_bounded(struct cache *c, const char *region,
			 const char *peer)
{
	sqlite3_stmt *st = region_peer(c, "SELECT count(*) FROM peers WHERE "
				       "region = ?1 AND ?2 IS NOT NULL", region,
				       peer);
	int n = 0;

	if (!st)
		return -EIO;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (n <= PEERS_MAX)
		return 0;
	st = region_peer(c, "DELETE FROM peers WHERE region = ?1 AND peer = ?2",
			 region, peer);
	if (st) {
		sqlite3_step(st);
		sqlite3_finalize(st);
	}
	return -EMLINK;
}

/* A peer folder: when the listings it depends on are in. */
static int peer_change(struct cache *c, const char *region, const char *peer,
		       int add)
{
	int r = cache_region(c, region);
	sqlite3_stmt *st;
	int n, rc;

	if (r < 0)
		return -ENOENT;
	if (!strcmp(peer, c->account))
		return -EINVAL;
	rc = work_ready(c, r, KIND_SHARED);
	if (!rc)
		rc = work_ready(c, r, KIND_CUSTOM);
	if (!rc)
		rc = work_shares_ready(c, r, 0);
	if (!rc)
		rc = peer_busy(c, region, peer, &n);
	if (rc)
		return rc;
	if (n)
		return add ? -EEXIST : -ENOTEMPTY;
	st = region_peer(c, add ? "INSERT INTO peers (region, peer) VALUES "
			 "(?1, ?2)" : "DELETE FROM peers WHERE region = ?1 "
			 "AND peer = ?2", region, peer);
	if (!st)
		return -EIO;
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_CONSTRAINT || (rc & 0xff) == SQLITE_CONSTRAINT)
		return -EEXIST;
	if (rc != SQLITE_DONE)
		return -EIO;
	if (!sqlite3_changes(c->db))
		return -ENOENT;
	return add ? peers_bounded(c, region, peer) : 0;
}

int cache_add_peer(struct backend *b, const char *region, const char *peer)
{
	return peer_change(to_cache(b), region, peer, 1);
}

int cache_remove_peer(struct backend *b, const char *region,
		      const char *peer)
{
	return peer_change(to_cache(b), region, peer, 0);
}

/* --- start and stop ------------------------------------------------------- */

static struct worker *worker_new(struct cache *c)
{
	struct worker *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->c = c;
	if (cache_connect(c->path, &w->db)) {
		free(w);
		return NULL;
	}
	return w;
}

int work_start(struct cache *c)
{
	pthread_condattr_t attr;
	struct worker *w;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&c->tick_cond, &attr);
	pthread_condattr_destroy(&attr);
	for (int i = 0; i < CACHE_WORKERS; i++) {
		w = worker_new(c);
		if (!w)
			return -EIO;
		if (pthread_create(&c->workers[i], NULL, worker_main, w)) {
			sqlite3_close(w->db);
			free(w);
			return -EAGAIN;
		}
		c->nworkers++;
	}
	w = worker_new(c);
	if (!w)
		return -EIO;
	if (pthread_create(&c->ticker, NULL, ticker_main, w)) {
		sqlite3_close(w->db);
		free(w);
		return -EAGAIN;
	}
	c->ticking = 1;
	/* every folder's first listing, right after mounting */
	pthread_mutex_lock(&c->lock);
	for (int k = 0; k < KIND_COUNT; k++)
		for (int r = 0; r < c->nregions; r++)
			if (!c->fetched[r][k])
				work_queue_fetch(c, r, k, 0);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

void work_stop(struct cache *c)
{
	struct job *j;

	pthread_mutex_lock(&c->lock);
	c->stop = 1;
	pthread_cond_broadcast(&c->cond);
	pthread_cond_broadcast(&c->tick_cond);
	pthread_mutex_unlock(&c->lock);
	if (c->inner && c->inner->ops->abort)
		c->inner->ops->abort(c->inner);
	for (int i = 0; i < c->nworkers; i++)
		pthread_join(c->workers[i], NULL);
	if (c->ticking)
		pthread_join(c->ticker, NULL);
	c->nworkers = c->ticking = 0;
	/* what the service did and nobody collected: applied now */
	while (c->chgs) {
		struct chg *g = c->chgs;

		c->chgs = g->next;
		if (c->db && g->done)
			finish(c, c->db, g);
		chg_free(g);
	}
	while ((j = pop(c)))
		free(j);
	pthread_cond_destroy(&c->tick_cond);
}
