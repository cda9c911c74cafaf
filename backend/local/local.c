// SPDX-License-Identifier: GPL-2.0
/*
 * local.c - the embedded image service: one SQLite catalog file that holds
 * every region, image, share and limit, and enforces every rule of the seed
 * inside one BEGIN IMMEDIATE transaction, so that several daemons on one
 * file never break a limit.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "../backend.h"
#include "../imagerow.h"
#include "../source.h"
#include "local.h"
#include "../../mountopts/config.h"
#include "../../mountopts/log.h"

extern const char imagefs_schema_sql[];
extern const char imagefs_regions_sql[];
extern const char imagefs_seed_sql[];
extern const char imagefs_schema2_sql[];
extern const char imagefs_schema3_sql[];
extern const char imagefs_schema4_sql[];
extern const char imagefs_schema5_sql[];
extern const char imagefs_schema6_sql[];

/*
 * How an image row is read: the columns of image_from_row(), in order, but
 * for the last one, dup: DUP_COL where it is needed, else 0.
 */
#define IMAGE_COLS							\
	"i.row, i.id, i.region, "					\
	"CASE WHEN i.kind = 'custom' AND i.owner <> ?1 THEN 'shared' "	\
	"ELSE i.kind END, "						\
	"i.owner, i.name, i.os_name, i.os_type, i.platform, i.arch, "	\
	"i.bits, i.size_gb, i.state, i.progress, i.created, i.mtime, "	\
	"i.description, i.source, i.provider, i.price, i.error, "	\
	"i.format, i.sha256, "						\
	"CASE WHEN i.kind = 'custom' AND i.owner = ?1 THEN "		\
	"(SELECT group_concat(account, ',') FROM (SELECT account "	\
	"FROM shares WHERE image = i.row ORDER BY account)) END, "

/*
 * Whether an earlier holder (by SORT_KEY) that ?1 may see has the name.
 * Most names have one holder: j.row <> i.row rules it out from the
 * index alone, before its row is read.
 */
#define DUP_COL								\
	"EXISTS (SELECT 1 FROM images j WHERE j.region = i.region "	\
	"AND j.kind = i.kind AND j.name = i.name AND j.row <> i.row "	\
	"AND (i.kind <> 'custom' "					\
	"OR (j.owner = i.owner AND (j.owner = ?1 OR EXISTS (SELECT 1 "	\
	"FROM shares t WHERE t.image = j.row AND t.account = ?1)))) "	\
	"AND " SORT_KEY("j") " < " SORT_KEY("i") ") "

/* Whether ?1 may see image t at all: not another account's custom image
 * unless it is shared with ?1. */
#define VISIBLE(t)							\
	"(" t ".kind <> 'custom' OR " t ".owner = ?1 OR EXISTS ("	\
	"SELECT 1 FROM shares v WHERE v.image = " t ".row AND "		\
	"v.account = ?1))"

/* First holder of a name: by image id, pending images (no id) last. */
#define SORT_KEY(t) "coalesce(" t ".id, printf('~%020d', " t ".row))"

/* The images of folder (?2 region, ?3 kind, ?5 owner) that ?1 may see. */
#define FOLDER_WHERE							\
	"i.region = ?2 AND i.kind = ?3 "				\
	"AND (?3 <> 'custom' OR i.owner = ?5) "				\
	"AND (?5 = ?1 OR EXISTS (SELECT 1 FROM shares t "		\
	"WHERE t.image = i.row AND t.account = ?1)) "

/*
 * The accounts with a folder in ?2/shared/ for ?1. Only custom images are
 * shared: saying so lets the index of the region's custom images drive
 * the joins, not a scan of all its images.
 */
#define PEERS_SQL							\
	"SELECT peer FROM peers WHERE account = ?1 AND region = ?2 "	\
	"UNION SELECT s.account FROM shares s JOIN images i "		\
	"ON i.row = s.image WHERE i.owner = ?1 AND i.region = ?2 "	\
	"AND i.kind = 'custom' "					\
	"UNION SELECT i.owner FROM shares s JOIN images i "		\
	"ON i.row = s.image WHERE s.account = ?1 AND i.region = ?2 "	\
	"AND i.kind = 'custom'"

static const char *const sql_text[Q_COUNT_ALL] = {
	[Q_REGIONS] = "SELECT row, name, title, mainland, copy FROM regions "
		      "ORDER BY row",
	[Q_GET] = "SELECT " IMAGE_COLS "0 FROM images i WHERE i.row = ?2 "
		  "AND " VISIBLE("i"),
	[Q_LIST] = "SELECT " IMAGE_COLS DUP_COL "FROM images i WHERE "
		   FOLDER_WHERE
		   "AND i.row > ?4 ORDER BY i.row",
	/* a folder that holds no name twice */
	[Q_LIST_PLAIN] = "SELECT " IMAGE_COLS "0 FROM images i WHERE "
			 FOLDER_WHERE "AND i.row > ?4 ORDER BY i.row",
	[Q_FOLDER_DUPS] = "SELECT 1 FROM images WHERE region = ?2 AND "
			  "kind = ?3 GROUP BY name HAVING count(*) > 1 "
			  "LIMIT 1",
	/* the holders of one name; sorted, the first first (dup: the
	 * position), only when there are several: a sort costs as much as
	 * the rest of a lookup */
	[Q_FIND] = "SELECT " IMAGE_COLS "0 FROM images i WHERE " FOLDER_WHERE
		   "AND i.name = ?4",
	[Q_FIND_SORTED] = "SELECT " IMAGE_COLS "0 FROM images i WHERE "
			  FOLDER_WHERE "AND i.name = ?4 ORDER BY "
			  SORT_KEY("i"),
	[Q_COUNT] = "SELECT count(*) FROM images i WHERE " FOLDER_WHERE,
	[Q_PEERS] = "SELECT p.peer, CAST(p.peer AS INTEGER) AS k, "
		    "(SELECT count(*) FROM shares s JOIN images i "
		    "ON i.row = s.image WHERE s.account = ?1 AND "
		    "i.region = ?2 AND i.kind = 'custom' AND "
		    "i.owner = p.peer), "
		    "max(coalesce((SELECT mtime FROM stamps WHERE region = ?2 "
		    "AND owner = ?1 AND peer = p.peer), 0), coalesce((SELECT "
		    "mtime FROM stamps WHERE region = ?2 AND owner = p.peer "
		    "AND peer = ?1), 0)) "
		    /* not even a stray folder of my own (no sharing
		     * with yourself: rules.c refuses to make one) */
		    "FROM (" PEERS_SQL ") AS p WHERE k > ?3 AND p.peer <> ?1 "
		    "ORDER BY k",
	[Q_SHARES] = "SELECT s.row, s.image, i.name, i.mtime FROM shares s "
		     "JOIN images i ON i.row = s.image WHERE i.owner = ?1 "
		     "AND i.region = ?2 AND s.account = ?3 AND s.row > ?4 "
		     "ORDER BY s.row",
	[Q_GET_SHARE] = "SELECT s.row, s.image, i.name, i.mtime, i.region, "
			"s.account "
			"FROM shares s JOIN images i ON i.row = s.image "
			"WHERE s.row = ?2 AND i.owner = ?1",
	[Q_USAGE] = "SELECT (SELECT count(*) FROM images WHERE region = ?2 "
		    "AND kind = 'custom' AND owner = ?1), "
		    "(SELECT value FROM settings WHERE key = "
		    "'max_custom_images'), "
		    "coalesce((SELECT count FROM ops WHERE account = ?1 AND "
		    "region = ?2 AND day = ?3), 0), "
		    "(SELECT value FROM settings WHERE key = 'max_daily_ops'), "
		    "(SELECT value FROM settings WHERE key = "
		    "'max_share_accounts'), "
		    "(SELECT copy FROM regions WHERE name = ?2)",
	[Q_SUMMARY] = "SELECT (SELECT max(mtime) FROM images WHERE "
		      "region = ?2 AND kind = 'public'), "
		      "(SELECT max(mtime) FROM images WHERE region = ?2 AND "
		      "kind = 'market'), "
		      "(SELECT mtime FROM stamps WHERE region = ?2 AND "
		      "owner = ?1 AND peer = ''), "
		      "(SELECT max(mtime) FROM stamps WHERE region = ?2 AND "
		      "((owner = ?1 AND peer <> '') OR peer = ?1)), "
		      "count(*), coalesce(sum(size_gb), 0), "
		      "(SELECT value FROM settings WHERE key = "
		      "'max_custom_images') "
		      "FROM images WHERE region = ?2 AND kind = 'custom' AND "
		      "owner = ?1",
	[Q_DATA_VERSION] = "PRAGMA data_version",
	[Q_BEGIN] = "BEGIN IMMEDIATE",
	[Q_BEGIN_READ] = "BEGIN",
	[Q_COMMIT] = "COMMIT",
	[Q_ROLLBACK] = "ROLLBACK",
	[Q_OWN] = "SELECT i.region, i.name, i.state, i.kind = 'custom' AND "
		  "i.owner = ?1, "
		  "(SELECT count(*) FROM shares WHERE image = ?2), "
		  /* its copies under way: index images_copying, whose WHERE
		   * this term must repeat word for word */
		  "(SELECT count(*) FROM images c WHERE c.source = "
		  SOURCE_COPY_SQL("i.id", "i.region") " AND c.state NOT IN "
		  "('NORMAL', 'IMPORTFAILED', 'PENDING')), i.description, "
		  /* the region its making was charged to, and when */
		  "CASE WHEN i.source LIKE '" SOURCE_COPY_PREFIX "%' THEN "
		  "substr(i.source, instr(i.source, '" SOURCE_COPY_AT "') + 1) "
		  "ELSE i.region END, i.created "
		  "FROM images i WHERE i.row = ?2 AND " VISIBLE("i"),
	[Q_NAME_TAKEN] = "SELECT 1 FROM images WHERE region = ?2 AND "
			 "kind = 'custom' AND owner = ?1 AND name = ?3 AND "
			 "row <> ?4",
	[Q_CHARGE] = "INSERT INTO ops (account, region, day, count) "
		     "VALUES (?1, ?2, ?3, 1) "
		     "ON CONFLICT (account, region, day) "
		     "DO UPDATE SET count = count + 1",
	[Q_REFUND] = "UPDATE ops SET count = count - 1 WHERE account = ?1 AND "
		     "region = ?2 AND day = ?3 AND count > 0",
	[Q_SETTING] = "SELECT value FROM settings WHERE key = ?2",
	[Q_ID_TAKEN] = "SELECT 1 FROM images WHERE id = ?2",
	/* ?5: the row, or NULL for a new one */
	[Q_INSERT_PENDING] = "INSERT INTO images (row, region, kind, owner, "
			     "name, state, created, mtime) VALUES (?5, ?2, "
			     "'custom', ?1, ?3, 'PENDING', ?4, ?4)",
	/* index images_defaults, whose WHERE these terms must include */
	[Q_DEFAULTS] = "SELECT os_name, os_type, platform, arch, bits, size_gb "
		       "FROM images WHERE region = ?2 AND kind = 'public' AND "
		       "platform = 'TencentOS' AND arch = 'x86_64' "
		       "ORDER BY created DESC LIMIT 1",
	[Q_MAKE_IMAGE] = "UPDATE images SET id = ?3, os_name = ?4, "
			 "os_type = ?5, platform = ?6, arch = ?7, bits = ?8, "
			 "size_gb = ?9, state = coalesce(?14, 'NORMAL'), "
			 "progress = ?15, created = ?10, mtime = ?10, "
			 "description = ?11, source = ?12, price = ?13, "
			 "error = NULL WHERE row = ?2",
	/* ?3 the time */
	[Q_UNMAKE] = "UPDATE images SET id = NULL, os_name = NULL, "
		     "os_type = NULL, platform = NULL, arch = NULL, "
		     "bits = NULL, size_gb = NULL, state = 'PENDING', "
		     "progress = NULL, created = ?3, mtime = ?3, "
		     "description = NULL, source = NULL, price = NULL, "
		     "error = NULL WHERE row = ?2",
	[Q_SOURCE] = "SELECT i.region, i.kind = 'custom' AND i.owner = ?1, "
		     "i.state, i.os_name, i.os_type, i.platform, i.arch, "
		     "i.bits, i.size_gb, i.description, i.price, "
		     "(SELECT copy FROM regions WHERE name = i.region) "
		     "FROM images i WHERE i.id = ?2 AND " VISIBLE("i"),
	/* ?3 name, ?4 description (?5: set it), ?6 the time */
	[Q_EDIT] = "UPDATE images SET name = coalesce(?3, name), "
		   "description = CASE WHEN ?5 THEN ?4 ELSE description END, "
		   "mtime = ?6 WHERE row = ?2",
	/* its shares and import go with it (ON DELETE CASCADE) */
	[Q_DELETE] = "DELETE FROM images WHERE row = ?2",
	[Q_SHARE_COUNT] = "SELECT count(*) FROM shares WHERE image = ?2",
	[Q_SHARE_EXISTS] = "SELECT 1 FROM shares WHERE image = ?2 AND "
			   "account = ?3",
	[Q_INSERT_SHARE] = "INSERT INTO shares (image, account) "
			   "VALUES (?2, ?3)",
	[Q_DELETE_SHARE] = "DELETE FROM shares WHERE image = ?2 AND "
			   "account = ?3",
	[Q_INSERT_PEER] = "INSERT INTO peers (account, region, peer) "
			  "VALUES (?1, ?2, ?3)",
	[Q_PEER_COUNT] = "SELECT count(*) FROM peers WHERE account = ?1 AND "
			 "region = ?2",
	[Q_DELETE_PEER] = "DELETE FROM peers WHERE account = ?1 AND "
			  "region = ?2 AND peer = ?3",
	[Q_PEER_BUSY] = "SELECT count(*) FROM shares s JOIN images i "
			"ON i.row = s.image WHERE i.region = ?2 AND "
			"((i.owner = ?1 AND s.account = ?3) OR "
			"(i.owner = ?3 AND s.account = ?1))",
	[Q_STAMP] = "INSERT INTO stamps (region, owner, peer, mtime) "
		    "VALUES (?2, ?3, coalesce(?4, ''), ?5) "
		    "ON CONFLICT DO UPDATE SET mtime = max(mtime, "
		    "excluded.mtime)",
	[Q_STAMP_SHARES] = "INSERT INTO stamps (region, owner, peer, mtime) "
			   "SELECT ?2, ?3, account, ?5 FROM shares "
			   "WHERE image = ?4 ON CONFLICT DO UPDATE SET "
			   "mtime = max(mtime, excluded.mtime)",
	[Q_LOG] = "INSERT INTO changes (image, region, owner, old_name, "
		  "new_name, peer, origin) VALUES (?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[Q_LOG_LINKS] = "INSERT INTO changes (image, region, owner, "
			"old_name, new_name, peer, origin) SELECT ?2, ?3, ?4, "
			"?5, ?6, account, ?8 FROM shares WHERE image = ?2",
	/* each share of image ?2 again, under a new row (AUTOINCREMENT) */
	[Q_RELINK] = "INSERT OR REPLACE INTO shares (image, account) SELECT "
		     "image, account FROM shares WHERE image = ?2 ORDER BY row",
	[Q_REGION_COPY] = "SELECT copy FROM regions WHERE name = ?2",
	[Q_INSERT_IMPORT] = "INSERT INTO imports (image, url, sha256, "
			    "account, uid) VALUES (?2, ?3, ?4, ?1, ?5)",
	[Q_COPY_REGIONS] = "SELECT group_concat(name, ', ') FROM (SELECT "
			   "name FROM regions WHERE copy ORDER BY row)",
	[Q_FIRST_SHARE] = "SELECT min(account), count(*) FROM shares "
			  "WHERE image = ?2",
};

static struct local *to_local(struct backend *b)
{
	return (struct local *)b;
}

/* The one table from SQLite's result codes to errno. */
int local_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -ENOLCK;	/* not EAGAIN: that is the daily limit */
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_TOOBIG:
		return -EFBIG;
	case SQLITE_CANTOPEN:
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
	default:
		return -EIO;
	}
}

int local_refuse(struct local *l, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(l->why, sizeof(l->why), fmt, ap);
	va_end(ap);
	return rc;
}

int local_sql_error(struct local *l, int rc)
{
	int err = local_errno(rc) ? local_errno(rc) : -EIO;

	return local_refuse(l, err, "%s", sqlite3_errmsg(l->db));
}

const char *local_why(struct backend *b)
{
	struct local *l = to_local(b);

	return l->why[0] ? l->why : NULL;
}

static sqlite3_stmt *prepared(struct local *l, enum query q)
{
	sqlite3_stmt *st = l->stmts[q];

	if (!st) {
		if (sqlite3_prepare_v3(l->db, sql_text[q], -1,
				       SQLITE_PREPARE_PERSISTENT, &st,
				       NULL) != SQLITE_OK) {
			log_error("sql: %s", sqlite3_errmsg(l->db));
			return NULL;
		}
		l->stmts[q] = st;
	}
	sqlite3_reset(st);
	return st;
}

/*
 * Run BEGIN or COMMIT of the request's read transaction. A read
 * transaction that cannot begin leaves the reads in autocommit mode.
 */
static int read_step(struct local *l, enum query q)
{
	sqlite3_stmt *st = prepared(l, q);
	int rc;

	if (!st)
		return -EIO;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : local_errno(rc) ? local_errno(rc) : -EIO;
}

void local_read_end(struct local *l)
{
	if (!l->reading)
		return;
	l->reading = 0;
	l->version_known = 0;
	if (sqlite3_get_autocommit(l->db))
		return;
	if (read_step(l, Q_COMMIT))
		read_step(l, Q_ROLLBACK);
}

int local_version(struct local *l)
{
	sqlite3_stmt *st;

	if (!l->read_tx)
		return -1;
	if (l->reading && l->version_known)
		return 0;
	st = local_stmt(l, Q_DATA_VERSION);
	if (!st || !l->reading || sqlite3_step(st) != SQLITE_ROW) {
		if (st)
			sqlite3_reset(st);
		return -1;
	}
	l->version = sqlite3_column_int64(st, 0);
	l->version_known = 1;
	sqlite3_reset(st);
	return 0;
}

void local_request_end(struct backend *b)
{
	struct local *l = (struct local *)b;

	l->read_tx = 1;
	local_read_end(l);
}

sqlite3_stmt *local_stmt(struct local *l, enum query q)
{
	sqlite3_stmt *st;

	if (q <= Q_USAGE && l->read_tx && !l->reading &&
	    sqlite3_get_autocommit(l->db))
		l->reading = !read_step(l, Q_BEGIN_READ);
	st = prepared(l, q);
	if (!st)
		return NULL;
	sqlite3_clear_bindings(st);
	sqlite3_bind_text(st, 1, l->b.account, -1, SQLITE_STATIC);
	return st;
}

/* Step a statement that returns at most one row: 0 (a row), -ENOENT. */
int local_step_one(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE)
		return -ENOENT;
	return local_errno(rc) ? local_errno(rc) : -EIO;
}

int local_by_row(struct local *l, enum query q, int64_t row,
		 sqlite3_stmt **out)
{
	sqlite3_stmt *st = local_stmt(l, q);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 2, row);
	rc = local_step_one(st);
	if (rc)
		sqlite3_reset(st);
	*out = st;
	return rc;
}

int local_copy_text(char *dst, size_t size, sqlite3_stmt *st, int col)
{
	const unsigned char *s = sqlite3_column_text(st, col);
	size_t n = s ? (size_t)sqlite3_column_bytes(st, col) : 0;

	if (n >= size) {
		if (size)
			dst[0] = 0;
		return -EOVERFLOW;
	}
	if (n)
		memcpy(dst, s, n);
	dst[n] = 0;
	return 0;
}

/*
 * Step st to the end, handing each image row to cb; with by_name (the rows
 * of Q_FIND), every row after the first is a dup.
 */
static int each_image(struct local *l, sqlite3_stmt *st, int by_name,
		      image_cb cb, void *ctx)
{
	struct image img;
	int rc, n = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		/* a row that cannot be shown whole is logged and left out
		 * (it keeps its place among the holders of a name) */
		n++;
		if (image_from_row(st, 0, &img))
			continue;
		rows_keep(l, &img);
		if (by_name)
			img.dup = n > 1;
		if (cb(ctx, &img))
			break;
	}
	rc = local_errno(rc);
	sqlite3_reset(st);
	return rc;
}

int local_regions(struct backend *b, struct region *out, int max,
			 int *n)
{
	sqlite3_stmt *st = local_stmt(to_local(b), Q_REGIONS);
	int rc;

	if (!st)
		return -EIO;
	*n = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < max) {
		struct region *r = &out[(*n)++];

		r->row = sqlite3_column_int64(st, 0);
		if (local_copy_text(r->name, sizeof(r->name), st, 1) ||
		    local_copy_text(r->title, sizeof(r->title), st, 2)) {
			rc = SQLITE_TOOBIG;
			break;
		}
		r->mainland = sqlite3_column_int(st, 3);
		r->copy = sqlite3_column_int(st, 4);
	}
	rc = rc == SQLITE_TOOBIG ? -EOVERFLOW :
	     rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 :
	     local_sql_error(to_local(b), rc);
	sqlite3_reset(st);
	return rc;
}

/* Bind the folder's ?2 region, ?3 kind and ?5 owner. */
static void bind_folder(struct local *l, sqlite3_stmt *st,
			const struct folder *f)
{
	const char *kind = f->kind == KIND_SHARED ? "custom" :
			   kind_names[f->kind];
	const char *owner = f->kind == KIND_SHARED ? f->peer : l->b.account;

	sqlite3_bind_text(st, 2, f->region, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, owner ? owner : "", -1, SQLITE_STATIC);
}

/*
 * Whether public or market folder f holds a name twice (1) or not (0), as
 * the request's read transaction sees it; -1: unknown. Most folders hold
 * none, and their listings then skip the dup check of each row (an index
 * search): one scan of the folder's names per catalog version instead.
 */
static int folder_dups(struct local *l, const struct folder *f)
{
	struct dup_folders *d = &l->dups;
	sqlite3_stmt *st;
	int rc;

	if ((f->kind != KIND_PUBLIC && f->kind != KIND_MARKET) ||
	    local_version(l))
		return -1;
	if (d->version != l->version || d->writes != l->writes) {
		d->n = 0;
		d->version = l->version;
		d->writes = l->writes;
	}
	for (int i = 0; i < d->n; i++)
		if (d->f[i].kind == f->kind &&
		    !strcmp(d->f[i].region, f->region))
			return d->f[i].dups;
	st = local_stmt(l, Q_FOLDER_DUPS);
	if (!st)
		return -1;
	sqlite3_bind_text(st, 2, f->region, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, kind_names[f->kind], -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return -1;
	if (d->n < DUP_FOLDERS) {
		snprintf(d->f[d->n].region, sizeof(d->f[d->n].region), "%s",
			 f->region);
		d->f[d->n].kind = f->kind;
		d->f[d->n++].dups = rc == SQLITE_ROW;
	}
	return rc == SQLITE_ROW;
}

int local_list(struct backend *b, const struct folder *f,
		      int64_t after, image_cb cb, void *ctx)
{
	struct local *l = to_local(b);
	sqlite3_stmt *st = local_stmt(l, folder_dups(l, f) ? Q_LIST :
				      Q_LIST_PLAIN);

	if (!st)
		return -EIO;
	bind_folder(l, st, f);
	sqlite3_bind_int64(st, 4, after);
	return each_image(l, st, 0, cb, ctx);
}

int local_find(struct backend *b, const struct folder *f,
		      const char *name, image_cb cb, void *ctx)
{
	struct local *l = to_local(b);
	sqlite3_stmt *st = local_stmt(l, Q_FIND);
	struct image img;
	int rc, found = 0;

	if (!st)
		return -EIO;
	bind_folder(l, st, f);
	sqlite3_bind_text(st, 4, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		/* left out when it cannot be shown whole, as each_image() */
		found = !image_from_row(st, 0, &img);
		rc = sqlite3_step(st);
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE) {
		if (found) {
			rows_keep(l, &img);
			cb(ctx, &img);
		}
		return 0;
	}
	if (rc != SQLITE_ROW)
		return local_errno(rc) ? local_errno(rc) : -EIO;
	st = local_stmt(l, Q_FIND_SORTED);
	if (!st)
		return -EIO;
	bind_folder(l, st, f);
	sqlite3_bind_text(st, 4, name, -1, SQLITE_STATIC);
	return each_image(l, st, 1, cb, ctx);
}

int local_get(struct backend *b, int64_t row, struct image *out)
{
	struct local *l = to_local(b);
	sqlite3_stmt *st;
	int rc;

	if (rows_get(l, row, out))
		return 0;
	rc = local_by_row(l, Q_GET, row, &st);
	if (rc)
		return rc;
	rc = image_from_row(st, 0, out);
	sqlite3_reset(st);
	if (!rc)
		rows_keep(l, out);
	return rc;
}

int local_count(struct backend *b, const struct folder *f, int *n)
{
	struct local *l = to_local(b);
	sqlite3_stmt *st = local_stmt(l, Q_COUNT);
	int rc;

	if (!st)
		return -EIO;
	bind_folder(l, st, f);
	rc = sqlite3_step(st);
	*n = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	rc = local_errno(rc);
	sqlite3_reset(st);
	return rc;
}

int local_peers(struct backend *b, const char *region, int64_t after,
		       peer_cb cb, void *ctx)
{
	sqlite3_stmt *st = local_stmt(to_local(b), Q_PEERS);
	struct peer p;
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 2, region, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, after);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (local_copy_text(p.uin, sizeof(p.uin), st, 0))
			continue;	/* not an account number */
		p.key = sqlite3_column_int64(st, 1);
		p.images = sqlite3_column_int(st, 2);
		p.mtime = sqlite3_column_int64(st, 3);
		if (cb(ctx, &p))
			break;
	}
	rc = local_errno(rc);
	sqlite3_reset(st);
	return rc;
}

int local_shares(struct backend *b, const char *region,
			const char *peer, int64_t after, share_cb cb,
			void *ctx)
{
	sqlite3_stmt *st = local_stmt(to_local(b), Q_SHARES);
	struct share s;
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 2, region, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, peer, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, after);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		s.row = sqlite3_column_int64(st, 0);
		s.image = sqlite3_column_int64(st, 1);
		if (local_copy_text(s.name, sizeof(s.name), st, 2))
			continue;	/* as each_image() leaves it out */
		s.mtime = sqlite3_column_int64(st, 3);
		if (cb(ctx, &s))
			break;
	}
	rc = local_errno(rc);
	sqlite3_reset(st);
	return rc;
}

int local_get_share(struct backend *b, int64_t row, char *region,
			   size_t region_size, char *peer, size_t peer_size,
			   struct share *out)
{
	sqlite3_stmt *st;
	int rc = local_by_row(to_local(b), Q_GET_SHARE, row, &st);

	if (rc)
		return rc;
	out->row = sqlite3_column_int64(st, 0);
	out->image = sqlite3_column_int64(st, 1);
	rc = local_copy_text(out->name, sizeof(out->name), st, 2);
	out->mtime = sqlite3_column_int64(st, 3);
	if (!rc)
		rc = local_copy_text(region, region_size, st, 4);
	if (!rc)
		rc = local_copy_text(peer, peer_size, st, 5);
	sqlite3_reset(st);
	return rc;
}

void local_day(int64_t when, char *buf, size_t size)
{
	time_t t = when + 8 * 3600;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%d", &tm);
}

void local_today(char *buf, size_t size)
{
	local_day(time(NULL), buf, size);
}

int local_usage_locked(struct local *l, const char *region, struct usage *u)
{
	sqlite3_stmt *st = local_stmt(l, Q_USAGE);
	char day[16];
	int rc;

	if (!st)
		return -EIO;
	local_today(day, sizeof(day));
	sqlite3_bind_text(st, 2, region, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, day, -1, SQLITE_TRANSIENT);
	rc = local_step_one(st);
	if (!rc && sqlite3_column_type(st, 5) == SQLITE_NULL)
		rc = -ENOENT;	/* no such region */
	if (!rc) {
		u->images = sqlite3_column_int(st, 0);
		u->images_max = sqlite3_column_int(st, 1);
		u->ops = sqlite3_column_int(st, 2);
		u->ops_max = sqlite3_column_int(st, 3);
		u->shares_max = sqlite3_column_int(st, 4);
		u->copy = sqlite3_column_int(st, 5);
	}
	sqlite3_reset(st);
	return rc;
}

int local_usage(struct backend *b, const char *region, struct usage *u)
{
	return local_usage_locked(to_local(b), region, u);
}

int local_summary(struct backend *b, const char *region, struct summary *s)
{
	sqlite3_stmt *st = local_stmt(to_local(b), Q_SUMMARY);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 2, region, -1, SQLITE_STATIC);
	rc = local_step_one(st);
	if (!rc)
		summary_from_row(st, s);
	sqlite3_reset(st);
	return rc;
}

int local_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		log_error("catalog: %s", msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return local_errno(rc) ? local_errno(rc) : -EIO;
	}
	return 0;
}

/* The first column of sql's first row as an integer; *found: a row. */
static int query_int(sqlite3 *db, const char *sql, int64_t *value,
		     int *found)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return local_errno(rc) ? local_errno(rc) : -EIO;
	rc = sqlite3_step(st);
	*found = rc == SQLITE_ROW;
	*value = *found ? sqlite3_column_int64(st, 0) : 0;
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		rc = 0;
	else
		rc = local_errno(rc) ? local_errno(rc) : -EIO;
	sqlite3_finalize(st);
	return rc;
}

static int user_version(sqlite3 *db, int *version)
{
	int64_t v;
	int found, rc = query_int(db, "PRAGMA user_version", &v, &found);

	*version = (int)v;
	return rc;
}

/*
 * The migrations, in order: migrations[i] brings a catalog of version i + 1
 * to version i + 2. A new migration is a schema-N.sql file (linked in by
 * embed.S) and one more line here. They run with foreign keys off, so that
 * one may rebuild a table (SQLite's ALTER TABLE procedure), and must leave
 * every foreign key whole.
 */
static const char *const migrations[] = {
	imagefs_schema2_sql,
	imagefs_schema3_sql,
	imagefs_schema4_sql,
	imagefs_schema5_sql,
	imagefs_schema6_sql,
};

#define SCHEMA_VERSION \
	((int)(1 + sizeof(migrations) / sizeof(*migrations)))

/* -EIO, said, when a foreign key of the catalog points nowhere. */
static int keys_whole(sqlite3 *db)
{
	int64_t v;
	int found, rc = query_int(db, "PRAGMA foreign_key_check", &v, &found);

	if (!rc && found) {
		log_error("catalog: a row points to a row that is not there "
			  "(PRAGMA foreign_key_check)");
		rc = -EIO;
	}
	return rc;
}

/*
 * Create the schema and load the regions and (seed) the seed's images, once,
 * whoever opens first; then migrate, one version after the other, in the
 * same transaction.
 */
static int catalog_init(sqlite3 *db, int seed)
{
	char sql[64];
	int version, rc;

	rc = user_version(db, &version);
	if (rc || version == SCHEMA_VERSION)
		return rc;
	/* not inside a transaction: there it would do nothing */
	rc = local_exec(db, "PRAGMA foreign_keys = OFF");
	if (rc)
		return rc;
	rc = local_exec(db, "BEGIN IMMEDIATE");
	if (rc)
		goto out_keys;
	rc = user_version(db, &version);
	if (rc)
		goto out_rollback;
	if (version > SCHEMA_VERSION) {
		log_error("catalog version %d is newer than this imagefs "
			  "(%d)", version, SCHEMA_VERSION);
		rc = -EPROTO;
		goto out_rollback;
	}
	if (version == 0) {
		rc = local_exec(db, imagefs_schema_sql);
		if (!rc)
			rc = local_exec(db, imagefs_regions_sql);
		if (!rc && seed)
			rc = local_exec(db, imagefs_seed_sql);
		version = 1;
	}
	for (; !rc && version < SCHEMA_VERSION; version++)
		rc = local_exec(db, migrations[version - 1]);
	if (!rc)
		rc = keys_whole(db);
	if (rc)
		goto out_rollback;
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", version);
	rc = local_exec(db, sql);
	if (rc)
		goto out_rollback;
	rc = local_exec(db, "COMMIT");
	if (rc)
		goto out_rollback;
	goto out_keys;

out_rollback:
	local_exec(db, "ROLLBACK");
out_keys:
	if (local_exec(db, "PRAGMA foreign_keys = ON") && !rc)
		rc = -EIO;
	return rc;
}

/*
 * SQLite knows the catalog's size from the WAL index once a commit has gone
 * through the WAL; until then every read transaction fstat()s the file. So
 * write once at open (page 1: the user version it already has). If that
 * fails, the reads still work, with the fstat.
 */
static void wal_know_size(sqlite3 *db)
{
	char sql[64];

	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SCHEMA_VERSION);
	local_exec(db, sql);
}

/* The folder that holds path, into dir. */
static int parent_of(const char *path, char *dir, size_t size)
{
	char *p;

	if (snprintf(dir, size, "%s", path) >= (int)size)
		return -ENAMETOOLONG;
	p = strrchr(dir, '/');
	if (!p)
		snprintf(dir, size, ".");
	else if (p == dir)
		p[1] = 0;
	else
		*p = 0;
	return 0;
}

/* mkdir -p of the directory that holds path. */
static int make_parent(const char *path)
{
	char dir[PATH_MAX];
	char *p;
	int rc = parent_of(path, dir, sizeof(dir));

	if (rc)
		return rc;
	for (p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(dir, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

/*
 * The catalog holds import URLs with their credentials: a new one is made
 * 0600 whatever the umask, before SQLite opens it (SQLite gives its -wal
 * and -shm the mode of the database file).
 */
static int catalog_create(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int rc = 0;

	if (fd < 0)
		return errno == EEXIST ? 0 : -errno;
	if (fchmod(fd, 0600))
		rc = -errno;
	close(fd);
	return rc;
}

/* Say when the catalog, its -wal or its -shm is open to others. */
static void catalog_check_mode(const char *path)
{
	static const char *const suffixes[] = { "", "-wal", "-shm" };
	char file[PATH_MAX];
	struct stat st;

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(*suffixes); i++) {
		snprintf(file, sizeof(file), "%s%s", path, suffixes[i]);
		if (stat(file, &st) || !(st.st_mode & (S_IRWXG | S_IRWXO)))
			continue;
		log_warn("catalog %s is open to group or others (mode %04o): "
			 "it holds import URLs with their credentials, and "
			 "whoever can write it can act as any account; run: "
			 "chmod 600 %s", file,
			 (unsigned int)(st.st_mode & 07777), file);
	}
}

/*
 * The catalog is read through a memory map of up to MMAP_BYTES: a page
 * costs no read(2) nor a copy, and the kernel's page cache, not the
 * daemon, holds it. SQLite's own cache then holds only pages of the WAL
 * and those being written.
 */
#define MMAP_BYTES	"268435456"
#define CACHE_KIB	"2048"

static int open_db(const char *path, int flags, sqlite3 **out)
{
	sqlite3 *db = NULL;
	int rc;

	rc = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		log_error("cannot open catalog %s: %s", path,
			  db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		rc = local_errno(rc) ? local_errno(rc) : -EIO;
		goto out_close;
	}
	sqlite3_busy_timeout(db, LOCAL_BUSY_MS);
	rc = local_exec(db, "PRAGMA journal_mode = WAL; "
			"PRAGMA synchronous = NORMAL; "
			"PRAGMA foreign_keys = ON; "
			"PRAGMA cache_size = -" CACHE_KIB "; "
			"PRAGMA mmap_size = " MMAP_BYTES);
	if (rc) {
		log_error("cannot use catalog %s", path);
		goto out_close;
	}
	*out = db;
	return 0;

out_close:
	sqlite3_close(db);
	return rc;
}

int local_connect(const char *path, sqlite3 **out)
{
	/* never made here: a catalog deleted under a running daemon is not
	 * made again empty by one of its threads */
	return open_db(path, SQLITE_OPEN_READWRITE, out);
}

/* The -wal and -shm files that SQLite keeps beside a catalog. */
static const char *const wal_files[LOCAL_WAL_FILES] = { "-wal", "-shm" };

/* Lock the folder of path (flock), as catalog_make() and disown() do. */
static int lock_folder(const char *path)
{
	char dir[PATH_MAX];
	int fd, rc = parent_of(path, dir, sizeof(dir));

	if (rc)
		return rc;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || flock(fd, LOCK_EX)) {
		rc = -errno;
		log_error("cannot lock %s: %s", dir, strerror(-rc));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	return fd;
}

/* Remember which -wal and -shm files the catalog's connections use. */
static void own_wal(struct local *l)
{
	char name[PATH_MAX + 8];
	struct stat st;

	for (int i = 0; i < LOCAL_WAL_FILES; i++) {
		snprintf(name, sizeof(name), "%s%s", l->path, wal_files[i]);
		if (!stat(name, &st)) {
			l->wal[i].dev = st.st_dev;
			l->wal[i].ino = st.st_ino;
		}
	}
}

/*
 * The catalog is gone: take its -wal and -shm files away from its path
 * while they are still ours, so that no catalog made there next takes
 * them for its own (the connections here keep them open).
 */
static void disown(struct local *l)
{
	char name[PATH_MAX + 8];
	struct stat st;
	int fd = lock_folder(l->path);

	for (int i = 0; i < LOCAL_WAL_FILES; i++) {
		snprintf(name, sizeof(name), "%s%s", l->path, wal_files[i]);
		if (!stat(name, &st) && st.st_ino == l->wal[i].ino &&
		    st.st_dev == l->wal[i].dev && unlink(name))
			log_error("cannot remove %s: %s", name,
				  strerror(errno));
	}
	if (fd >= 0)
		close(fd);
}

int local_catalog_gone(struct local *l, sqlite3 *db)
{
	int moved = 0;

	if (__atomic_load_n(&l->gone, __ATOMIC_ACQUIRE))
		return 1;
	/* SQLite compares the open file with what its path names now */
	if (sqlite3_file_control(db, "main", SQLITE_FCNTL_HAS_MOVED,
				 &moved) != SQLITE_OK || !moved)
		return 0;
	if (__atomic_exchange_n(&l->gone, 1, __ATOMIC_ACQ_REL))
		return 1;
	log_error("catalog %s was deleted or replaced under this daemon: "
		  "changes refused (EROFS) until it is mounted again",
		  l->path);
	disown(l);
	return 1;
}

void local_disconnect(struct local *l, sqlite3 *db)
{
	int keep = 1;

	/* the files at the catalog's path are not this one's any more: the
	 * last connection to close would delete them */
	if (db && local_catalog_gone(l, db))
		sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL,
				     &keep);
	sqlite3_close(db);
}

/*
 * Make the catalog at path when there is none, with its schema (and seed),
 * under a lock of its folder that other daemons making it take too. A
 * -wal or -shm file found there without its catalog is left over from a
 * catalog that was deleted, perhaps under a daemon that still runs: it
 * must not be taken for the new catalog's, so it is removed first (that
 * daemon keeps its own open).
 */
static int catalog_make(const char *path, int seed)
{
	char name[PATH_MAX + 8];
	struct stat st;
	sqlite3 *db;
	int fd, rc;

	if (!stat(path, &st))
		return 0;
	if (errno != ENOENT) {
		rc = -errno;
		log_error("cannot open catalog %s: %s", path, strerror(-rc));
		return rc;
	}
	fd = lock_folder(path);
	if (fd < 0)
		return fd;
	rc = 0;
	if (!stat(path, &st))
		goto out_unlock;	/* another daemon made it */
	for (int i = 0; i < LOCAL_WAL_FILES; i++) {
		snprintf(name, sizeof(name), "%s%s", path, wal_files[i]);
		if (!unlink(name))
			log_warn("catalog %s is new: removed %s, left over "
				 "from a deleted one", path, name);
	}
	rc = catalog_create(path);
	if (rc) {
		log_error("cannot create catalog %s: %s", path,
			  strerror(-rc));
		goto out_unlock;
	}
	rc = open_db(path, SQLITE_OPEN_READWRITE, &db);
	if (rc)
		goto out_unlock;
	rc = catalog_init(db, seed);
	if (rc)
		log_error("cannot set up catalog %s", path);
	sqlite3_close(db);
out_unlock:
	close(fd);	/* and the lock with it */
	return rc;
}

void local_close(struct backend *b)
{
	struct local *l = to_local(b);
	int again = 0;

	/* the main connection last: only the last one may delete files */
	local_import_stop(l);
	local_changes_close(l);
	for (int q = 0; q < Q_COUNT_ALL; q++) {
		if (l->stmts[q])
			again += sqlite3_stmt_status(l->stmts[q],
					SQLITE_STMTSTATUS_REPREPARE, 0);
		sqlite3_finalize(l->stmts[q]);
	}
	/* a partial index whose WHERE a query's bound value is compared
	 * with makes SQLite prepare that query again at each new value */
	if (again)
		log_warn("catalog: statements were prepared again %d times",
			 again);
	rows_free(l);
	local_disconnect(l, l->db);
	pthread_mutex_destroy(&l->service_lock);
	free(l->path);
	free(l->account);
	free(l);
}

static const struct backend_ops local_ops = {
	.name = "local",
	.close = local_close,
	.regions = local_regions,
	.list = local_list,
	.find = local_find,
	.get = local_get,
	.count = local_count,
	.peers = local_peers,
	.shares = local_shares,
	.get_share = local_get_share,
	.usage = local_usage,
	.summary = local_summary,
	.create_pending = local_create_pending,
	.commit = local_commit,
	.copy = local_copy,
	.uncommit = local_uncommit,
	.check_ops = local_check_ops,
	.edit = local_edit,
	.remove = local_remove,
	.check_remove = local_check_remove,
	.share = local_share,
	.unshare = local_unshare,
	.add_peer = local_add_peer,
	.remove_peer = local_remove_peer,
	.changes = local_changes,
	.detail = local_why,
	.fetch = local_svc_fetch,
	.fetch_ids = local_svc_fetch_ids,
	.fetch_shares = local_svc_fetch_shares,
	.quota = local_svc_quota,
	.make = local_svc_make,
	.modify = local_svc_modify,
	.delete = local_svc_delete,
	.permit = local_svc_permit,
	.request_end = local_request_end,
};

/* The catalog's id: the FUSE generation of its inodes (backend.h). */
static int catalog_generation(struct local *l)
{
	int64_t v;
	int found, rc = query_int(l->db, "SELECT value FROM settings WHERE "
				  "key = 'catalog_id'", &v, &found);

	if (rc)
		return rc;
	if (!found || v < 1 || v > UINT32_MAX) {
		log_error("catalog %s: no catalog_id in its settings",
			  l->path);
		return -EIO;
	}
	l->b.generation = (uint32_t)v;
	return 0;
}

int local_open_file(const char *path, const char *account, int seed,
		    size_t size, struct local **out)
{
	struct local *l;
	int rc;

	l = calloc(1, size);
	if (!l) {
		log_error("cannot open catalog %s: %s", path,
			  strerror(ENOMEM));
		return -ENOMEM;
	}
	l->path = strdup(path);
	l->account = strdup(account);
	if (!l->path || !l->account) {
		rc = -ENOMEM;
		log_error("cannot open catalog %s: %s", path, strerror(-rc));
		goto out_free;
	}
	l->b.ops = &local_ops;
	l->b.account = l->account;
	l->b.wait_timeout = LOCAL_LOCK_TIMEOUT;
	l->b.wait_errno = ENOLCK;
	pthread_mutex_init(&l->changes_lock, NULL);
	pthread_mutex_init(&l->service_lock, NULL);
	if (getrandom(&l->origin, sizeof(l->origin), 0) != sizeof(l->origin))
		l->origin = getpid();
	l->origin &= INT64_MAX;
	rc = make_parent(l->path);
	if (rc) {
		log_error("cannot create the folder of %s: %s", l->path,
			  strerror(-rc));
		goto out_destroy;
	}
	rc = catalog_make(l->path, seed);
	if (rc)
		goto out_destroy;
	rc = local_connect(l->path, &l->db);
	if (rc)
		goto out_destroy;
	rc = catalog_init(l->db, seed);
	if (rc)
		log_error("cannot set up catalog %s", l->path);
	if (!rc)
		rc = catalog_generation(l);
	if (!rc)
		own_wal(l);
	if (rc) {
		sqlite3_close(l->db);
		goto out_destroy;
	}
	wal_know_size(l->db);
	catalog_check_mode(l->path);
	*out = l;
	return 0;

out_destroy:
	pthread_mutex_destroy(&l->changes_lock);
	pthread_mutex_destroy(&l->service_lock);
out_free:
	free(l->path);
	free(l->account);
	free(l);
	return rc;
}

int local_open(const struct config *cfg, struct backend **out)
{
	struct local *l;
	int rc = local_open_file(cfg->db, cfg->account, 1, sizeof(*l), &l);

	if (rc)
		return rc;
	l->b.wait_timeout = cfg->lock_timeout;
	rc = local_import_start(l, cfg->import_timeout, cfg->import_dirs);
	if (rc) {
		log_error("cannot start the import workers: %s",
			  strerror(-rc));
		local_close(&l->b);
		return rc;
	}
	*out = &l->b;
	return 0;
}
