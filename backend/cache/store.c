// SPDX-License-Identifier: GPL-2.0
/*
 * store.c - the cache's SQLite file: its schema, the reads the tree side
 * makes, and the writes of the workers: a folder as the service listed it
 * is first kept in the worker connection's temp.incoming (no lock held while
 * the network answers), then merged in one short transaction that sends
 * what changed to the change feed.
 *
 * An image's folder says where it shows: public, market, custom or
 * shared:<owner>. Pending images are custom rows without an id.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../imagerow.h"
#include "cache.h"
#include "../../mountopts/log.h"

#define CACHE_VERSION 1004	/* PRAGMA user_version of a cache file */
#define CACHE_VERSION_FIRST 1000	/* older ones are made again */

/* The columns of an image, in the order of ?1.. of the writes below. */
#define COLS								\
	"id, region, folder, kind, owner, name, os_name, os_type, "	\
	"platform, arch, bits, size_gb, state, progress, created, mtime, " \
	"description, source, format, sha256, provider, price, error"
#define NCOLS 23

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS images ("
	" row INTEGER PRIMARY KEY AUTOINCREMENT," /* the inode base, never
						   * reused */
	" id TEXT UNIQUE,"		/* NULL while pending */
	" region TEXT NOT NULL,"
	" folder TEXT NOT NULL,"	/* public, market, custom,
					 * shared:<uin> */
	" kind TEXT NOT NULL,"		/* public, market, custom, shared */
	" owner TEXT NOT NULL,"
	" name TEXT NOT NULL,"
	" os_name TEXT, os_type TEXT, platform TEXT, arch TEXT,"
	" bits INTEGER, size_gb INTEGER,"
	" state TEXT NOT NULL,"		/* PENDING while mkdir'ed only */
	" progress INTEGER,"
	" created INTEGER NOT NULL, mtime INTEGER NOT NULL,"
	" description TEXT, source TEXT, format TEXT, sha256 TEXT,"
	" provider TEXT, price TEXT, error TEXT,"
	" shares_at REAL);"		/* my image: its shares fetched then */
	"CREATE INDEX IF NOT EXISTS images_folder ON images "
	" (region, folder, name);"
	"CREATE TABLE IF NOT EXISTS shares ("
	" row INTEGER PRIMARY KEY AUTOINCREMENT," /* a link's inode, never
						   * reused */
	" image INTEGER NOT NULL REFERENCES images(row) ON DELETE CASCADE,"
	" account TEXT NOT NULL,"
	" UNIQUE (image, account));"
	"CREATE INDEX IF NOT EXISTS shares_account ON shares (account);"
	"CREATE TABLE IF NOT EXISTS peers ("	/* mkdir shared/<uin> */
	" region TEXT NOT NULL, peer TEXT NOT NULL,"
	" PRIMARY KEY (region, peer));"
	"CREATE TABLE IF NOT EXISTS folders ("	/* when listed last */
	" region TEXT NOT NULL, kind INTEGER NOT NULL, fetched REAL NOT NULL,"
	" PRIMARY KEY (region, kind));"
	"CREATE TABLE IF NOT EXISTS quota ("	/* the service's limits */
	" region TEXT PRIMARY KEY, images_max INTEGER, ops INTEGER,"
	" ops_max INTEGER, shares_max INTEGER, copy INTEGER);"
	"CREATE TABLE IF NOT EXISTS meta ("
	" key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	/* this file's id: the FUSE generation of its inodes, 1 .. 2^32-1 */
	"INSERT OR IGNORE INTO meta VALUES ('cache_id', "
	" 1 + abs(random() % 4294967295));";

/* A cache written by imagefs 0.1 (the local catalog's schema and a
 * fetched table) or by an older version: nothing in it is needed, it is
 * made again (with a new cache_id). */
static const char old_cache[] =
	"DROP TABLE IF EXISTS fetched; DROP TABLE IF EXISTS changes;"
	"DROP TABLE IF EXISTS imports; DROP TABLE IF EXISTS ops;"
	"DROP TABLE IF EXISTS peers; DROP TABLE IF EXISTS shares;"
	"DROP TABLE IF EXISTS images; DROP TABLE IF EXISTS regions;"
	"DROP TABLE IF EXISTS settings; DROP TABLE IF EXISTS folders;"
	"DROP TABLE IF EXISTS quota; DROP TABLE IF EXISTS meta;";

/* First holder of a name: by image id, pending images (no id) last. */
#define SORT_KEY(t) "coalesce(" t ".id, printf('~%020d', " t ".row))"

/* The columns of image_from_row(), then shares_at. */
#define READ_COLS							\
	"i.row, i.id, i.region, i.kind, i.owner, i.name, i.os_name, "	\
	"i.os_type, i.platform, i.arch, i.bits, i.size_gb, i.state, "	\
	"i.progress, i.created, i.mtime, i.description, i.source, "	\
	"i.provider, i.price, i.error, i.format, i.sha256, "		\
	"CASE WHEN i.folder = 'custom' THEN (SELECT group_concat(account, " \
	"',') FROM (SELECT account FROM shares WHERE image = i.row ORDER " \
	"BY account)) END, "						\
	"EXISTS (SELECT 1 FROM images j WHERE j.region = i.region AND "	\
	"j.folder = i.folder AND j.name = i.name AND " SORT_KEY("j")	\
	" < " SORT_KEY("i") "), i.shares_at "

/* The peers of region ?1: folders made, accounts shared with either way. */
#define PEERS_SQL							\
	"SELECT peer FROM peers WHERE region = ?1 "			\
	"UNION SELECT s.account FROM shares s JOIN images i "		\
	"ON i.row = s.image WHERE i.region = ?1 "			\
	"UNION SELECT substr(folder, 8) FROM images WHERE region = ?1 "	\
	"AND folder LIKE 'shared:%'"

static const char *const sql_text[C_NREQ] = {
	[C_LIST] = "SELECT " READ_COLS "FROM images i WHERE i.region = ?1 "
		   "AND i.folder = ?2 AND i.row > ?3 ORDER BY i.row",
	[C_FIND] = "SELECT " READ_COLS "FROM images i WHERE i.region = ?1 "
		   "AND i.folder = ?2 AND i.name = ?3 ORDER BY "
		   SORT_KEY("i"),
	[C_GET] = "SELECT " READ_COLS "FROM images i WHERE i.row = ?1",
	[C_COUNT] = "SELECT count(*) FROM images WHERE region = ?1 AND "
		    "folder = ?2",
	[C_PEERS] = "SELECT p.peer, CAST(p.peer AS INTEGER) AS k, "
		    "(SELECT count(*) FROM images WHERE region = ?1 AND "
		    "folder = 'shared:' || p.peer), "
		    /* the newest change between us that this file knows */
		    "max(coalesce((SELECT max(mtime) FROM images WHERE "
		    "region = ?1 AND folder = 'shared:' || p.peer), 0), "
		    "coalesce((SELECT max(i.mtime) FROM shares s JOIN images i "
		    "ON i.row = s.image WHERE i.region = ?1 AND "
		    "s.account = p.peer), 0)) "
		    "FROM (" PEERS_SQL ") AS p WHERE k > ?2 ORDER BY k",
	[C_SHARES] = "SELECT s.row, s.image, i.name, i.mtime FROM shares s "
		     "JOIN images i ON i.row = s.image WHERE i.region = ?1 AND "
		     "s.account = ?2 AND s.row > ?3 ORDER BY s.row",
	[C_GET_SHARE] = "SELECT s.row, s.image, i.name, i.region, s.account, "
			"i.mtime FROM shares s JOIN images i "
			"ON i.row = s.image WHERE s.row = ?1",
	[C_ROW] = "SELECT region, id, folder, name, state, shares_at, "
		  "description FROM images WHERE row = ?1",
	[C_SLOTS] = "SELECT count(*) FROM images WHERE region = ?1 AND "
		    "folder = 'custom'",
	[C_UNSHARED] = "SELECT count(*) FROM images WHERE region = ?1 AND "
		       "folder = 'custom' AND id IS NOT NULL AND state = "
		       "'NORMAL' AND shares_at IS NULL",
	[C_BY_ID] = "SELECT region FROM images WHERE id = ?1",
	/* what is at hand of region ?1: folder times (newest image, as far
	 * as this file knows) and df's figures */
	[C_SUMMARY] = "SELECT (SELECT max(mtime) FROM images WHERE "
		      "region = ?1 AND folder = 'public'), "
		      "(SELECT max(mtime) FROM images WHERE region = ?1 AND "
		      "folder = 'market'), "
		      "(SELECT max(mtime) FROM images WHERE region = ?1 AND "
		      "folder = 'custom'), "
		      "(SELECT max(mtime) FROM images WHERE region = ?1 AND "
		      "folder LIKE 'shared:%'), "
		      "count(*), coalesce(sum(size_gb), 0), "
		      "coalesce((SELECT images_max FROM quota WHERE "
		      "region = ?1), " CACHE_QUOTA_DEFAULT ") "
		      "FROM images WHERE region = ?1 AND folder = 'custom'",
};

int cache_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		log_error("cache: %s", msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return rc == SQLITE_BUSY ? -EAGAIN : -EIO;
	}
	return 0;
}

int cache_connect(const char *path, sqlite3 **out)
{
	sqlite3 *db = NULL;
	int rc;

	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
			     SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		log_error("cannot open cache %s: %s", path,
			  db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return -EIO;
	}
	sqlite3_busy_timeout(db, 10000);
	rc = cache_exec(db, "PRAGMA journal_mode = WAL; "
			"PRAGMA synchronous = NORMAL; "
			"PRAGMA foreign_keys = ON");
	if (rc) {
		sqlite3_close(db);
		return rc;
	}
	*out = db;
	return 0;
}

static int int64_of(sqlite3 *db, const char *sql, int64_t *v)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	rc = sqlite3_step(st);
	*v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -EIO;
}

static int int_of(sqlite3 *db, const char *sql, int *v)
{
	int64_t v64;
	int rc = int64_of(db, sql, &v64);

	*v = (int)v64;
	return rc;
}

int cache_schema(sqlite3 *db, uint32_t *generation)
{
	char sql[64];
	int64_t id = 0;
	int version, old, rc;

	rc = cache_exec(db, "BEGIN IMMEDIATE");
	if (rc)
		return rc;
	rc = int_of(db, "PRAGMA user_version", &version);
	if (!rc)
		rc = int_of(db, "SELECT count(*) FROM sqlite_master WHERE "
			    "name = 'fetched'", &old);
	if (!rc && version >= CACHE_VERSION_FIRST && version < CACHE_VERSION)
		old = 1;
	if (!rc && version && version != CACHE_VERSION && !old) {
		log_error("cache: not an imagefs cache file (version %d)",
			  version);
		rc = -EPROTO;
	}
	if (!rc && old)
		rc = cache_exec(db, old_cache);
	if (!rc)
		rc = cache_exec(db, schema);
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", CACHE_VERSION);
	if (!rc)
		rc = cache_exec(db, sql);
	if (!rc)
		rc = int64_of(db, "SELECT value FROM meta WHERE key = "
			      "'cache_id'", &id);
	if (!rc && (id < 1 || id > UINT32_MAX))
		rc = -EIO;
	*generation = (uint32_t)id;
	return store_tx(db, rc ? "ROLLBACK" : "COMMIT") ? -EIO : rc;
}

int store_tx(sqlite3 *db, const char *sql)
{
	return cache_exec(db, sql);
}

sqlite3_stmt *cache_stmt(struct cache *c, enum creq q)
{
	sqlite3_stmt *st = c->stmts[q];

	if (!st) {
		if (sqlite3_prepare_v3(c->db, sql_text[q], -1,
				       SQLITE_PREPARE_PERSISTENT, &st,
				       NULL) != SQLITE_OK) {
			log_error("cache: %s", sqlite3_errmsg(c->db));
			return NULL;
		}
		c->stmts[q] = st;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

int cache_by_row(struct cache *c, enum creq q, int64_t row,
		 sqlite3_stmt **out)
{
	sqlite3_stmt *st = cache_stmt(c, q);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, row);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = st;
		return 0;
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? -ENOENT : -EIO;
}

void cache_copy_text(char *dst, size_t size, sqlite3_stmt *st, int col)
{
	const unsigned char *s = sqlite3_column_text(st, col);

	snprintf(dst, size, "%s", s ? (const char *)s : "");
}

int store_begin_incoming(sqlite3 *db)
{
	return cache_exec(db, "CREATE TEMP TABLE IF NOT EXISTS incoming "
			  "(" COLS "); DELETE FROM temp.incoming");
}

static void bind_text(sqlite3_stmt *st, int col, const char *s)
{
	if (s && s[0])
		sqlite3_bind_text(st, col, s, -1, SQLITE_TRANSIENT);
}

/* Bind img's columns, in the order of COLS, as ?1 ... ?23. */
static void bind_image(sqlite3_stmt *st, const struct image *img,
		       const char *folder)
{
	bind_text(st, 1, img->id);
	bind_text(st, 2, img->region);
	bind_text(st, 3, folder);
	bind_text(st, 4, kind_names[img->kind]);
	bind_text(st, 5, img->owner);
	sqlite3_bind_text(st, 6, img->name, -1, SQLITE_TRANSIENT);
	bind_text(st, 7, img->os_name);
	bind_text(st, 8, img->os_type);
	bind_text(st, 9, img->platform);
	bind_text(st, 10, img->arch);
	if (img->bits)
		sqlite3_bind_int(st, 11, img->bits);
	if (img->size_gb)
		sqlite3_bind_int(st, 12, img->size_gb);
	bind_text(st, 13, img->state[0] ? img->state : "NORMAL");
	if (img->progress >= 0)
		sqlite3_bind_int64(st, 14, img->progress);
	sqlite3_bind_int64(st, 15, img->created);
	sqlite3_bind_int64(st, 16, img->mtime ? img->mtime : img->created);
	bind_text(st, 17, img->description);
	bind_text(st, 18, img->source);
	bind_text(st, 19, img->format);
	bind_text(st, 20, img->sha256);
	bind_text(st, 21, img->provider);
	bind_text(st, 22, img->price);
	bind_text(st, 23, img->error);
}

int store_incoming(sqlite3 *db, const struct image *img)
{
	char folder[64];
	struct folder f = { img->region, img->kind, img->owner };
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, "INSERT INTO temp.incoming (" COLS ") "
			       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
			       "?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, "
			       "?19, ?20, ?21, ?22, ?23)", -1, &st,
			       NULL) != SQLITE_OK)
		return -EIO;
	bind_image(st, img, cache_folder(&f, folder, sizeof(folder)));
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

int store_made(sqlite3 *db, int64_t row, const struct image *img,
	       double now)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, "DELETE FROM images WHERE id = ?1 AND "
			       "row <> ?2", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, img->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, row);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	/* the id and the attributes; the pending row keeps its name */
	if (rc != SQLITE_DONE || sqlite3_prepare_v2(db,
		"UPDATE images SET id = ?1, os_name = ?7, os_type = ?8, "
		"platform = ?9, arch = ?10, bits = ?11, size_gb = ?12, "
		"state = ?13, progress = ?14, created = ?15, mtime = ?16, "
		"description = ?17, source = ?18, format = ?19, sha256 = ?20, "
		"price = ?22, error = ?23, shares_at = ?25 WHERE row = ?24", -1,
		&st, NULL) != SQLITE_OK)
		return -EIO;
	bind_image(st, img, NULL);
	sqlite3_bind_int64(st, 24, row);
	sqlite3_bind_double(st, 25, now);	/* new: shared with nobody */
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/*
 * Tell the kernel about row (region, owner, names) and each of its shares'
 * peers, read from the file. An image shared with me changes my shared/
 * too: its owner's folder may come or go.
 */
static void feed_row(struct cache *c, sqlite3 *db, int64_t row, int kind,
		     const char *region, const char *owner,
		     const char *old_name, const char *new_name)
{
	sqlite3_stmt *st;

	cache_feed(c, row, kind, region, owner, old_name, new_name,
		   kind == KIND_SHARED ? c->account : NULL);
	if (sqlite3_prepare_v2(db, "SELECT account FROM shares WHERE "
			       "image = ?1", -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, row);
	while (sqlite3_step(st) == SQLITE_ROW)
		cache_feed(c, row, kind, region, owner, old_name, new_name,
			   (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
}

static sqlite3_stmt *prepare(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		log_error("cache: %s", sqlite3_errmsg(db));
		return NULL;
	}
	return st;
}

int store_relink(sqlite3 *db, int64_t row)
{
	sqlite3_stmt *st = prepare(db, "INSERT OR REPLACE INTO shares (image, "
				   "account) SELECT image, account FROM shares "
				   "WHERE image = ?1 ORDER BY row");
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, row);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_finalize(st);
	return rc;
}

/* Put one incoming image (the row of in) in the file: new or changed. */
static int merge_one(struct cache *c, sqlite3 *db, sqlite3_stmt *in,
		     sqlite3_stmt *sel, sqlite3_stmt *ins, sqlite3_stmt *upd)
{
	const char *region = (const char *)sqlite3_column_text(in, 1);
	const char *owner = (const char *)sqlite3_column_text(in, 4);
	const char *name = (const char *)sqlite3_column_text(in, 5);
	int kind = kind_parse((const char *)sqlite3_column_text(in, 3));
	char old[256];
	int64_t row;
	int rc;

	sqlite3_reset(sel);
	sqlite3_bind_value(sel, 1, sqlite3_column_value(in, 0));
	if (sqlite3_step(sel) != SQLITE_ROW) {
		sqlite3_reset(ins);
		for (int i = 0; i < NCOLS; i++)
			sqlite3_bind_value(ins, i + 1,
					   sqlite3_column_value(in, i));
		rc = sqlite3_step(ins);
		if (rc != SQLITE_DONE)
			return -EIO;
		feed_row(c, db, sqlite3_last_insert_rowid(db), kind, region,
			 owner, NULL, name);
		return 0;
	}
	row = sqlite3_column_int64(sel, 0);
	cache_copy_text(old, sizeof(old), sel, 1);
	sqlite3_reset(upd);
	for (int i = 0; i < NCOLS; i++)
		sqlite3_bind_value(upd, i + 1, sqlite3_column_value(in, i));
	sqlite3_bind_int64(upd, NCOLS + 1, row);
	rc = sqlite3_step(upd);
	if (rc != SQLITE_DONE)
		return -EIO;
	if (!sqlite3_changes(db))
		return 0;
	if (strcmp(old, name) && store_relink(db, row))
		return -EIO;
	feed_row(c, db, row, kind, region, owner, old, name);
	return 0;
}

/* Forget the images of folder f that temp.incoming does not hold. */
static int drop_unseen(struct cache *c, sqlite3 *db, const struct folder *f,
		       const char *folder)
{
	sqlite3_stmt *st = prepare(db, "SELECT row, owner, name, kind FROM "
				   "images WHERE region = ?1 AND folder LIKE "
				   "?2 AND id IS NOT NULL AND id NOT IN "
				   "(SELECT id FROM temp.incoming)");
	sqlite3_stmt *del = prepare(db, "DELETE FROM images WHERE row = ?1");
	int rc = st && del ? 0 : -EIO;

	if (!rc) {
		sqlite3_bind_text(st, 1, f->region, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, folder, -1, SQLITE_STATIC);
	}
	while (!rc && sqlite3_step(st) == SQLITE_ROW) {
		int64_t row = sqlite3_column_int64(st, 0);

		feed_row(c, db, row, kind_parse((const char *)
					      sqlite3_column_text(st, 3)),
			 f->region,
			 (const char *)sqlite3_column_text(st, 1),
			 (const char *)sqlite3_column_text(st, 2), NULL);
		sqlite3_reset(del);
		sqlite3_bind_int64(del, 1, row);
		rc = sqlite3_step(del) == SQLITE_DONE ? 0 : -EIO;
	}
	sqlite3_finalize(st);
	sqlite3_finalize(del);
	return rc;
}

int store_merge(struct cache *c, sqlite3 *db, const struct folder *f,
		int all)
{
	sqlite3_stmt *in = prepare(db, "SELECT " COLS " FROM temp.incoming");
	sqlite3_stmt *sel = prepare(db, "SELECT row, name FROM images WHERE "
				    "id = ?1");
	sqlite3_stmt *ins = prepare(db, "INSERT INTO images (" COLS ") "
				    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
				    "?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, "
				    "?17, ?18, ?19, ?20, ?21, ?22, ?23)");
	sqlite3_stmt *upd = prepare(db,
		"UPDATE images SET region = ?2, folder = ?3, kind = ?4, "
		"owner = ?5, name = ?6, os_name = ?7, os_type = ?8, "
		"platform = ?9, arch = ?10, bits = ?11, size_gb = ?12, "
		"state = ?13, progress = ?14, created = ?15, "
		"mtime = strftime('%s'), description = ?17, "
		"source = coalesce(?18, source), "
		"format = coalesce(?19, format), "
		"sha256 = coalesce(?20, sha256), provider = ?21, "
		"price = coalesce(?22, price), error = ?23 WHERE row = ?24 AND "
		"(region IS NOT ?2 OR folder IS NOT ?3 OR owner IS NOT ?5 OR "
		"name IS NOT ?6 OR os_name IS NOT ?7 OR platform IS NOT ?9 OR "
		"arch IS NOT ?10 OR size_gb IS NOT ?12 OR state IS NOT ?13 OR "
		"progress IS NOT ?14 OR description IS NOT ?17 OR "
		"format IS NOT coalesce(?19, format) OR error IS NOT ?23)");
	char folder[64];
	int rc = in && sel && ins && upd ? 0 : -EIO;

	while (!rc && sqlite3_step(in) == SQLITE_ROW)
		rc = merge_one(c, db, in, sel, ins, upd);
	if (!rc && all) {
		if (f->kind == KIND_SHARED && !f->peer)
			snprintf(folder, sizeof(folder), "shared:%%");
		else
			cache_folder(f, folder, sizeof(folder));
		rc = drop_unseen(c, db, f, folder);
	}
	sqlite3_finalize(in);
	sqlite3_finalize(sel);
	sqlite3_finalize(ins);
	sqlite3_finalize(upd);
	return rc;
}

/* Is account in the comma separated list? */
static int listed(const char *list, const char *account)
{
	size_t n = strlen(account);

	for (const char *p = list; *p;) {
		size_t len = strcspn(p, ",");

		if (len == n && !strncmp(p, account, n))
			return 1;
		p += len + (p[len] == ',');
	}
	return 0;
}

int store_shares(struct cache *c, sqlite3 *db, int64_t row,
		 const char *accounts, double now)
{
	sqlite3_stmt *img = prepare(db, "SELECT region, owner, name FROM "
				    "images WHERE row = ?1");
	sqlite3_stmt *old = prepare(db, "SELECT account FROM shares WHERE "
				    "image = ?1");
	sqlite3_stmt *ins = prepare(db, "INSERT OR IGNORE INTO shares (image, "
				    "account) VALUES (?1, ?2)");
	sqlite3_stmt *del = prepare(db, "DELETE FROM shares WHERE image = ?1 "
				    "AND account = ?2");
	sqlite3_stmt *at = prepare(db, "UPDATE images SET shares_at = ?2 "
				   "WHERE row = ?1");
	char region[32], owner[96], name[256], peer[32];
	int rc = img && old && ins && del && at ? 0 : -EIO;

	if (!rc) {
		sqlite3_bind_int64(img, 1, row);
		rc = sqlite3_step(img) == SQLITE_ROW ? 0 : -ENOENT;
	}
	if (rc)
		goto out;
	cache_copy_text(region, sizeof(region), img, 0);
	cache_copy_text(owner, sizeof(owner), img, 1);
	cache_copy_text(name, sizeof(name), img, 2);
	sqlite3_bind_int64(old, 1, row);
	while (!rc && sqlite3_step(old) == SQLITE_ROW) {
		cache_copy_text(peer, sizeof(peer), old, 0);
		if (listed(accounts, peer))
			continue;
		sqlite3_reset(del);
		sqlite3_bind_int64(del, 1, row);
		sqlite3_bind_text(del, 2, peer, -1, SQLITE_STATIC);
		rc = sqlite3_step(del) == SQLITE_DONE ? 0 : -EIO;
		cache_feed(c, row, KIND_CUSTOM, region, owner, name, name,
			   peer);
	}
	for (const char *p = accounts; !rc && *p;) {
		size_t len = strcspn(p, ",");

		snprintf(peer, sizeof(peer), "%.*s", (int)len, p);
		p += len + (p[len] == ',');
		sqlite3_reset(ins);
		sqlite3_bind_int64(ins, 1, row);
		sqlite3_bind_text(ins, 2, peer, -1, SQLITE_STATIC);
		rc = sqlite3_step(ins) == SQLITE_DONE ? 0 : -EIO;
		if (!rc && sqlite3_changes(db))
			cache_feed(c, row, KIND_CUSTOM, region, owner, name,
				   name, peer);
	}
	if (!rc) {
		sqlite3_bind_int64(at, 1, row);
		sqlite3_bind_double(at, 2, now);
		rc = sqlite3_step(at) == SQLITE_DONE ? 0 : -EIO;
	}
out:
	sqlite3_finalize(img);
	sqlite3_finalize(old);
	sqlite3_finalize(ins);
	sqlite3_finalize(del);
	sqlite3_finalize(at);
	return rc;
}
