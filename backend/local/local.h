/* SPDX-License-Identifier: GPL-2.0 */
/*
 * local.h - internals of the local (SQLite) backend, shared by its files:
 * local.c (catalog, reads), rules.c (every rule and mutation), changes.c
 * (what other daemons changed), service.c (the service side, for a
 * wrapping backend), import.c (imports), rows.c (the rows read lately).
 */
#ifndef IMAGEFS_LOCAL_H
#define IMAGEFS_LOCAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <sqlite3.h>

#include "../backend.h"

/* How long SQLite itself waits for a lock (threads other than the FUSE
 * one, and the set-up); requests wait with -BACKEND_WAIT instead, for
 * -o lock_timeout, then ENOLCK. */
#define LOCAL_BUSY_MS 10000

#define LOCAL_WAL_FILES 2	/* -wal and -shm */

/* The cached statements; the reads come first, up to Q_USAGE. */
enum query {
	Q_REGIONS,
	Q_GET,
	Q_LIST,
	Q_LIST_PLAIN,
	Q_FOLDER_DUPS,
	Q_FIND,
	Q_FIND_SORTED,
	Q_COUNT,
	Q_PEERS,
	Q_SHARES,
	Q_GET_SHARE,
	Q_DATA_VERSION,
	Q_USAGE,
	Q_SUMMARY,
	Q_BEGIN,
	Q_BEGIN_READ,
	Q_COMMIT,
	Q_ROLLBACK,
	Q_OWN,
	Q_NAME_TAKEN,
	Q_CHARGE,
	Q_REFUND,
	Q_SETTING,
	Q_ID_TAKEN,
	Q_INSERT_PENDING,
	Q_DEFAULTS,
	Q_MAKE_IMAGE,
	Q_UNMAKE,
	Q_SOURCE,
	Q_EDIT,
	Q_DELETE,
	Q_SHARE_COUNT,
	Q_SHARE_EXISTS,
	Q_INSERT_SHARE,
	Q_DELETE_SHARE,
	Q_INSERT_PEER,
	Q_PEER_COUNT,
	Q_DELETE_PEER,
	Q_PEER_BUSY,
	Q_STAMP,
	Q_STAMP_SHARES,
	Q_LOG,
	Q_LOG_LINKS,
	Q_RELINK,
	Q_REGION_COPY,
	Q_INSERT_IMPORT,
	Q_COPY_REGIONS,
	Q_FIRST_SHARE,
	Q_COUNT_ALL
};

/* The image rows read lately (rows.c). */
struct row_slot {
	int64_t row;		/* 0: empty */
	size_t off;		/* of the packed row in the arena */
};

struct row_cache {
	int64_t version;	/* the catalog they were read from */
	int64_t writes;
	char *arena;
	size_t used;
	struct row_slot *slot;
	int count;
};

/* Public and market folders that hold a name twice, or not (local.c). */
#define DUP_FOLDERS	128

struct dup_folders {
	int64_t version;	/* the catalog they were counted in */
	int64_t writes;
	int n;
	struct {
		char region[32];
		enum image_kind kind;
		int dups;
	} f[DUP_FOLDERS];
};

struct local {
	struct backend b;	/* first: a backend * is a local * */
	sqlite3 *db;
	sqlite3_stmt *stmts[Q_COUNT_ALL];
	char *path;
	char *account;
	int dry_run;		/* the open transaction only checks */
	/*
	 * Reads share one read transaction per request: opened at the first
	 * read (reading), ended by request_end or before a write
	 * transaction begins. Only once the caller has called request_end
	 * (read_tx): a caller that never ends its requests gets a
	 * transaction per statement, as SQLite's autocommit gives.
	 */
	int read_tx;
	int reading;
	int64_t version;	/* data_version in the read transaction, */
	int version_known;	/* once asked */
	int64_t writes;		/* write transactions ended */
	struct row_cache rows;
	struct dup_folders dups;
	struct importer *importer;	/* import.c */
	int64_t origin;		/* this daemon, in the change log */
	/* held by each service-side call (service.c): a wrapper calls from
	 * several threads */
	pthread_mutex_t service_lock;
	/* the change feed's own connection, used from another thread */
	pthread_mutex_t changes_lock;
	sqlite3 *cdb;
	sqlite3_stmt *cst;
	int64_t data_version;
	/* the catalog file was deleted or replaced under this daemon: every
	 * change is refused from then on (set and read with __atomic) */
	int gone;
	/* the -wal and -shm files of the catalog when it was opened */
	struct {
		dev_t dev;
		ino_t ino;
	} wal[LOCAL_WAL_FILES];
	char why[400];		/* why the last call failed, for people */
	/* a dry-run amend: a region whose operations today count one less,
	 * the charge the amend gives back (rules.c), until the end of the
	 * transaction */
	const char *credit;
};

/* Open the catalog at path (made with the seed's images when seed is set)
 * into a zeroed allocation of size bytes that begins with the struct local;
 * no import workers. local_close() frees it. */
int local_open_file(const char *path, const char *account, int seed,
		    size_t size, struct local **out);
void local_close(struct backend *b);

/*
 * The cached statement q, reset, with ?1 bound to the account. A read
 * outside a write transaction opens the request's read transaction.
 */
sqlite3_stmt *local_stmt(struct local *l, enum query q);
/* End the request's read transaction, if one is open. */
void local_read_end(struct local *l);
/* 0 with l->version the catalog's data_version in the request's read
 * transaction; -1 outside a request */
int local_version(struct local *l);
void local_request_end(struct backend *b);
int local_step_one(sqlite3_stmt *st);
/* Run q with ?2 = row; on 0 *out stands on the row: reset it after use. */
int local_by_row(struct local *l, enum query q, int64_t row,
		 sqlite3_stmt **out);
/* Copy column col's text into dst: 0, or -EOVERFLOW (dst "") when it does
 * not fit whole. */
int local_copy_text(char *dst, size_t size, sqlite3_stmt *st, int col);
int local_errno(int rc);
/*
 * Say why the call fails, in words for people (the backend's detail op): the
 * rule and what would make it pass. Returns rc.
 */
int local_refuse(struct local *l, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The same for an SQLite error of l->db: SQLite's own words. */
int local_sql_error(struct local *l, int rc);
const char *local_why(struct backend *b);
/* A connection to the catalog at path, which exists. */
int local_connect(const char *path, sqlite3 **out);
/*
 * Whether the catalog file that db has open was deleted or replaced (its
 * path now names another file, or none): then l is marked gone, which is
 * logged once, its -wal and -shm files are taken from the path, and every
 * change after that is -EROFS.
 */
int local_catalog_gone(struct local *l, sqlite3 *db);
/*
 * Close a connection of l. Once the catalog is gone, the -wal and -shm
 * files at its path may be another catalog's: they are left alone (SQLite
 * would delete them).
 */
void local_disconnect(struct local *l, sqlite3 *db);
/* Run sql (several statements); -errno, with SQLite's message logged. */
int local_exec(sqlite3 *db, const char *sql);
/* The day of the daily limit that unix time when falls on (UTC+08:00),
 * as YYYY-MM-DD; local_today: today's. */
void local_day(int64_t when, char *buf, size_t size);
void local_today(char *buf, size_t size);
int local_usage_locked(struct local *l, const char *region, struct usage *u);

/* The reads of local.c */
int local_regions(struct backend *b, struct region *out, int max, int *n);
int local_list(struct backend *b, const struct folder *f, int64_t after,
	       image_cb cb, void *ctx);
int local_find(struct backend *b, const struct folder *f, const char *name,
	       image_cb cb, void *ctx);
int local_get(struct backend *b, int64_t row, struct image *out);
int local_count(struct backend *b, const struct folder *f, int *n);
int local_peers(struct backend *b, const char *region, int64_t after,
		peer_cb cb, void *ctx);
int local_shares(struct backend *b, const char *region, const char *peer,
		 int64_t after, share_cb cb, void *ctx);
int local_get_share(struct backend *b, int64_t row, char *region,
		    size_t region_size, char *peer, size_t peer_size,
		    struct share *out);
int local_usage(struct backend *b, const char *region, struct usage *u);
int local_summary(struct backend *b, const char *region, struct summary *s);

/* rules.c */
/* BEGIN IMMEDIATE; local_tx_end() commits when rc is 0, else rolls back */
int local_tx_begin(struct local *l);
/* BEGIN (a read: no write lock) for a dry run; local_tx_end() ends it */
int local_tx_begin_read(struct local *l);
int local_tx_end(struct local *l, int rc);
/* Charge one operation to region: -EAGAIN beyond the daily limit. */
int local_charge(struct local *l, const char *region);
/* Tell other daemons (and, from origin 0, this one's kernel view). */
int local_log_change(struct local *l, int64_t row, const char *region,
		     const char *owner, const char *old_name,
		     const char *new_name, const char *peer);
int local_create_pending(struct backend *b, const char *region,
			 const char *name, int64_t *row);
int local_commit(struct backend *b, int64_t row, const struct spec *spec);
int local_uncommit(struct backend *b, int64_t row);
int local_copy(struct backend *b, int64_t row, const char *source_id,
	       const struct spec *spec);
int local_check_ops(struct backend *b, const char *region);
int local_edit(struct backend *b, int64_t row, const char *from,
	       const char *name, const char *description, int64_t replace);
int local_remove(struct backend *b, int64_t row);
int local_check_remove(struct backend *b, int64_t row);
/* make a committed image in one transaction */
int local_make(struct backend *b, const char *region, const char *name,
	       const struct spec *spec, struct image *out);
int local_share(struct backend *b, int64_t row, const char *peer);
int local_unshare(struct backend *b, int64_t row, const char *peer);
int local_add_peer(struct backend *b, const char *region, const char *peer);
int local_remove_peer(struct backend *b, const char *region, const char *peer);

/* rows.c: rows_get() is 1 with the row, when the cache has it */
int rows_get(struct local *l, int64_t row, struct image *out);
void rows_keep(struct local *l, const struct image *img);
void rows_free(struct local *l);

/* service.c: the service side of backend.h */
int local_svc_fetch(struct backend *b, const struct folder *f, image_cb cb,
		    void *ctx);
int local_svc_fetch_ids(struct backend *b, const char *region,
			const char *const *ids, int n, image_cb cb, void *ctx);
int local_svc_fetch_shares(struct backend *b, const char *region,
			   const char *id, peer_cb cb, void *ctx);
int local_svc_quota(struct backend *b, const char *region, struct usage *u);
int local_svc_make(struct backend *b, const char *region, const char *name,
		   const struct spec *spec, struct image *out);
int local_svc_modify(struct backend *b, const char *region, const char *id,
		     const char *name, const char *description);
int local_svc_delete(struct backend *b, const char *region, const char *id,
		     int dry_run);
int local_svc_permit(struct backend *b, const char *region, const char *id,
		     const char *peer, int share);

/* import.c */
/* Start the import workers: timeout without data in seconds; dirs: where
 * file:// may read (DIR[:DIR], -o import_dirs), NULL: nowhere. */
int local_import_start(struct local *l, long timeout, const char *dirs);
void local_import_kick(struct local *l);
void local_import_stop(struct local *l);
/* 0 for an http or https URL of printable ASCII, else -EINVAL */
int url_check(const char *url);
/* 0 for what url_check() takes, or a file:// URL of a file below a
 * directory of -o import_dirs (no "." or ".." on the way); else -EINVAL */
int local_url_check(struct local *l, const char *url);
/* url without its user info, query and fragment, as SOURCE shows it;
 * 1 when something was taken out */
int url_redact(const char *url, char *out, size_t size);

/* changes.c */
int local_changes(struct backend *b, int64_t *seq, change_cb cb, void *ctx);
void local_changes_close(struct local *l);

#endif /* IMAGEFS_LOCAL_H */
