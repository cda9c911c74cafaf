// SPDX-License-Identifier: GPL-2.0
/*
 * changes.c - what other daemons changed in the catalog, for the
 * kernel cache invalidation thread. It has a connection of its own and
 * polls PRAGMA data_version, which moves only when another connection
 * commits; then it reads the change log past the last sequence it saw.
 * Each poll also looks whether the catalog file was deleted or replaced,
 * which stops every change (local_catalog_gone()).
 */
#include <errno.h>
#include <stdio.h>

#include "local.h"
#include "../../mountopts/log.h"

static int data_version(struct local *l, int64_t *v)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(l->cdb, "PRAGMA data_version", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return local_errno(rc) ? local_errno(rc) : -EIO;
	rc = sqlite3_step(st);
	*v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	rc = rc == SQLITE_ROW ? 0 : -EIO;
	sqlite3_finalize(st);
	return rc;
}

static int read_log(struct local *l, int64_t *seq, change_cb cb, void *ctx)
{
	struct change c;
	int rc;

	if (!l->cst) {
		rc = sqlite3_prepare_v2(l->cdb,
			"SELECT seq, coalesce(image, 0), region, owner, "
			"old_name, new_name, peer, origin = ?2 FROM changes "
			"WHERE seq > ?1 ORDER BY seq", -1, &l->cst, NULL);
		if (rc != SQLITE_OK)
			return -EIO;
	}
	sqlite3_bind_int64(l->cst, 1, *seq);
	sqlite3_bind_int64(l->cst, 2, l->origin);
	while ((rc = sqlite3_step(l->cst)) == SQLITE_ROW) {
		*seq = sqlite3_column_int64(l->cst, 0);
		if (sqlite3_column_int(l->cst, 7))
			continue;	/* our own: the kernel saw it */
		c.seq = *seq;
		c.image = sqlite3_column_int64(l->cst, 1);
		c.kind = KIND_COUNT;	/* only custom images change here */
		c.region = (const char *)sqlite3_column_text(l->cst, 2);
		c.owner = (const char *)sqlite3_column_text(l->cst, 3);
		c.old_name = (const char *)sqlite3_column_text(l->cst, 4);
		c.new_name = (const char *)sqlite3_column_text(l->cst, 5);
		c.peer = (const char *)sqlite3_column_text(l->cst, 6);
		cb(ctx, &c);
	}
	rc = local_errno(rc);
	sqlite3_reset(l->cst);
	return rc;
}

int local_changes(struct backend *b, int64_t *seq, change_cb cb, void *ctx)
{
	struct local *l = (struct local *)b;
	int64_t v = 0;
	int rc;

	pthread_mutex_lock(&l->changes_lock);
	if (!l->cdb) {
		rc = local_connect(l->path, &l->cdb);
		if (rc)
			goto out_unlock;
	}
	local_catalog_gone(l, l->cdb);
	rc = data_version(l, &v);
	if (rc)
		goto out_unlock;
	if (*seq >= 0 && v == l->data_version)
		goto out_unlock;
	l->data_version = v;
	if (*seq < 0) {
		sqlite3_stmt *st;

		rc = sqlite3_prepare_v2(l->cdb, "SELECT coalesce(max(seq), 0) "
					"FROM changes", -1, &st, NULL);
		if (rc != SQLITE_OK) {
			log_error("catalog: %s", sqlite3_errmsg(l->cdb));
			rc = -EIO;
			goto out_unlock;
		}
		rc = sqlite3_step(st);
		*seq = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
		rc = rc == SQLITE_ROW ? 0 : -EIO;
		sqlite3_finalize(st);
		goto out_unlock;
	}
	rc = read_log(l, seq, cb, ctx);
out_unlock:
	pthread_mutex_unlock(&l->changes_lock);
	return rc;
}

void local_changes_close(struct local *l)
{
	pthread_mutex_lock(&l->changes_lock);
	sqlite3_finalize(l->cst);
	local_disconnect(l, l->cdb);
	l->cst = NULL;
	l->cdb = NULL;
	pthread_mutex_unlock(&l->changes_lock);
	pthread_mutex_destroy(&l->changes_lock);
}
