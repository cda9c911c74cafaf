// SPDX-License-Identifier: GPL-2.0
/*
 * tencent.c - the tencentcloud backend: the account's images in Tencent
 * Cloud CVM, through the API 3.0 (tc_client.c), with the listings kept in a
 * SQLite cache file that has the local catalog's schema.
 *
 * Reads are the local backend's own calls on the cache. A folder never
 * fetched is fetched inside the request; a stale one is served as it is
 * and fetched again by the worker thread, which also polls images that are
 * still CREATING, SYNCING or IMPORTING. What the worker changes goes into
 * the cache's change log, from where the notify thread refreshes the
 * kernel's view, as it does for another daemon's changes.
 *
 * A change is asked of the cloud first, which checks every rule; only when
 * it agrees is the cache changed. Pending images and peer folders, which
 * the cloud does not know, live in the cache alone.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../backend.h"
#include "../local/local.h"
#include "client.h"
#include "../../mountopts/config.h"
#include "../../mountopts/log.h"

#define PAGE 100		/* DescribeImages' largest Limit */
#define POLL_MS 500		/* the worker's pace */
#define MAX_REGIONS 64

struct tencent {
	struct local l;		/* first: the cache, read by local's calls */
	struct tc_conf conf;
	struct tc_client fg;	/* the FUSE thread's client */
	double ttl;
	char detail[400];	/* the cloud's words on the last failure */
	/* moved by each change of this mount, before it asks the cloud and
	 * inside the transaction that applies it: a refresh that saw the
	 * cloud before a change must not undo it in the cache */
	int gen;
	/* the worker and what it is asked to fetch again */
	pthread_t thread;
	int started, stop;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned char want[MAX_REGIONS][KIND_COUNT];
	struct region regions[MAX_REGIONS];
	int nregions;
};

/* The image-type filter of each folder kind. */
static const char *const image_types[KIND_COUNT] = {
	[KIND_PUBLIC] = "PUBLIC_IMAGE",
	[KIND_MARKET] = "MARKET_IMAGE",
	[KIND_CUSTOM] = "PRIVATE_IMAGE",
	[KIND_SHARED] = "SHARED_IMAGE",
};

static struct tencent *to_tc(struct backend *b)
{
	return (struct tencent *)b;
}

static int gen_get(struct tencent *t)
{
	return __atomic_load_n(&t->gen, __ATOMIC_SEQ_CST);
}

static void gen_bump(struct tencent *t)
{
	__atomic_add_fetch(&t->gen, 1, __ATOMIC_SEQ_CST);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int region_index(struct tencent *t, const char *region)
{
	for (int i = 0; i < t->nregions; i++)
		if (!strcmp(t->regions[i].name, region))
			return i;
	return -1;
}

/* Run sql on the connection of c for its first integer (-1: no row). */
static int64_t sql_int(struct local *c, const char *sql, const char *a,
		       const char *b)
{
	sqlite3_stmt *st;
	int64_t v = -1;

	if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* --- from the cloud's JSON to the cache ---------------------------------- */

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static int64_t parse_time(const char *s)
{
	struct tm tm = { 0 };

	if (!strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) &&
	    !strptime(s, "%Y-%m-%d %H:%M:%S", &tm))
		return time(NULL);
	return timegm(&tm);
}

static const char *arch_name(const char *a)
{
	if (!strcmp(a, "arm") || !strcmp(a, "arm_64") ||
	    !strcmp(a, "aarch64") || !strcmp(a, "arm64"))
		return "arm64";
	if (!strcmp(a, "i386") || !strcmp(a, "x86"))
		return "i386";
	return a[0] ? a : NULL;
}

static int settling(const char *state)
{
	return !strcmp(state, "CREATING") || !strcmp(state, "SYNCING") ||
	       !strcmp(state, "IMPORTING");
}

static void bind_str(sqlite3_stmt *st, int col, const char *s)
{
	if (s && s[0])
		sqlite3_bind_text(st, col, s, -1, SQLITE_TRANSIENT);
}

#define UPSERT_SQL							\
	"INSERT INTO images (id, region, kind, owner, name, os_name, "	\
	"os_type, platform, arch, bits, size_gb, state, progress, "	\
	"created, mtime, description, error) VALUES (?1, ?2, ?3, ?4, ?5, " \
	"?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17) "	\
	"ON CONFLICT (id) DO UPDATE SET region = excluded.region, "	\
	"kind = excluded.kind, owner = excluded.owner, "		\
	"name = excluded.name, os_name = excluded.os_name, "		\
	"os_type = excluded.os_type, platform = excluded.platform, "	\
	"arch = excluded.arch, bits = excluded.bits, "			\
	"size_gb = excluded.size_gb, state = excluded.state, "		\
	"progress = excluded.progress, description = excluded.description, " \
	"error = coalesce(excluded.error, error), mtime = strftime('%s') " \
	"WHERE name IS NOT excluded.name OR state IS NOT excluded.state " \
	"OR progress IS NOT excluded.progress OR owner IS NOT "		\
	"excluded.owner OR description IS NOT excluded.description "	\
	"OR os_name IS NOT excluded.os_name OR size_gb IS NOT "	\
	"excluded.size_gb OR kind IS NOT excluded.kind RETURNING row"

/*
 * Put the cloud's image j into the cache as an image of kind and owner;
 * *row is its row, *changed whether anything changed.
 */
static int upsert(struct local *c, const char *region, const char *kind,
		  const char *owner, json_t *j, int64_t *row, int *changed)
{
	const char *state = jstr(j, "ImageState");
	const char *platform = jstr(j, "Platform");
	const char *arch = arch_name(jstr(j, "Architecture"));
	char error[128] = "";
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(c->db, UPSERT_SQL, -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	if (strstr(state, "FAILED"))
		snprintf(error, sizeof(error), "the cloud reports %s", state);
	bind_str(st, 1, jstr(j, "ImageId"));
	bind_str(st, 2, region);
	bind_str(st, 3, kind);
	bind_str(st, 4, owner);
	sqlite3_bind_text(st, 5, jstr(j, "ImageName"), -1, SQLITE_TRANSIENT);
	bind_str(st, 6, jstr(j, "OsName"));
	if (platform[0] || arch)
		bind_str(st, 7, strcmp(platform, "Windows") ? "linux" :
			 "windows");
	bind_str(st, 8, platform);
	bind_str(st, 9, arch);
	if (arch)
		sqlite3_bind_int(st, 10, strcmp(arch, "i386") ? 64 : 32);
	if (json_integer_value(json_object_get(j, "ImageSize")))
		sqlite3_bind_int64(st, 11, json_integer_value(
				   json_object_get(j, "ImageSize")));
	sqlite3_bind_text(st, 12, state[0] ? state : "NORMAL", -1,
			  SQLITE_TRANSIENT);
	if (settling(state))
		sqlite3_bind_int64(st, 13, json_integer_value(
				   json_object_get(j, "SyncPercent")));
	sqlite3_bind_int64(st, 14, parse_time(jstr(j, "CreatedTime")));
	sqlite3_bind_int64(st, 15, parse_time(jstr(j, "CreatedTime")));
	bind_str(st, 16, jstr(j, "ImageDescription"));
	bind_str(st, 17, error);
	rc = sqlite3_step(st);
	*changed = rc == SQLITE_ROW;
	*row = *changed ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return local_errno(rc) ? local_errno(rc) : -EIO;
	if (!*changed)
		*row = sql_int(c, "SELECT row FROM images WHERE id = ?1",
			       jstr(j, "ImageId"), NULL);
	return *row > 0 ? 0 : -EIO;
}

/* Run a statement with ?1 text, ?2 row, ?3 and ?4 text; sqlite3_changes(). */
static int run4(struct local *c, const char *sql, const char *a, int64_t row,
		const char *b, const char *d)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	bind_str(st, 1, a);
	sqlite3_bind_int64(st, 2, row);
	bind_str(st, 3, b);
	bind_str(st, 4, d);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return local_errno(rc) ? local_errno(rc) : -EIO;
	return sqlite3_changes(c->db);
}

static int run3(struct local *c, const char *sql, const char *a, int64_t row,
		const char *b)
{
	return run4(c, sql, a, row, b, NULL);
}

/* --- calls ---------------------------------------------------------------- */

/* "CreateImage: the cloud says CODE: message (RequestId ...)" */
static void say_why(struct tencent *t, const char *action,
		    const struct tc_error *err)
{
	int n = snprintf(t->detail, sizeof(t->detail), "%s: ", action);

	if (err->code[0])
		n += snprintf(t->detail + n, sizeof(t->detail) - n,
			      "the cloud says %.100s: ", err->code);
	snprintf(t->detail + n, sizeof(t->detail) - n, "%.200s%s%.63s%s",
		 err->message[0] ? err->message : "no answer",
		 err->request_id[0] ? " (RequestId " : "", err->request_id,
		 err->request_id[0] ? ")" : "");
}

/* One call; on failure the cloud's words are kept in t->detail. */
static int call(struct tencent *t, struct tc_client *cl, const char *action,
		const char *region, json_t *req, json_t **resp)
{
	struct tc_error err;
	json_t *r = NULL;
	int rc;

	if (!req)
		return -ENOMEM;
	rc = tc_call(cl, action, region, req, &r, &err);
	json_decref(req);
	if (rc && cl == &t->fg)
		say_why(t, action, &err);
	if (resp)
		*resp = r;
	else
		json_decref(r);
	return rc;
}

static json_t *filter(const char *name, const char *value)
{
	return json_pack("{s:s, s:[s]}", "Name", name, "Values", value);
}

/* Every image of a type in region, page after page, into *out. */
static int fetch_all(struct tencent *t, struct tc_client *cl,
		     const char *region, const char *type, json_t **out)
{
	json_t *all = json_array();
	int64_t total = 0;
	int rc = 0;

	for (int64_t off = 0; all && !rc; off += PAGE) {
		json_t *resp, *set;

		rc = call(t, cl, "DescribeImages", region,
			  json_pack("{s:[o], s:I, s:i}", "Filters",
				    filter("image-type", type), "Offset",
				    (json_int_t)off, "Limit", PAGE), &resp);
		if (rc)
			break;
		set = json_object_get(resp, "ImageSet");
		total = json_integer_value(json_object_get(resp,
							   "TotalCount"));
		json_array_extend(all, set);
		rc = !json_array_size(set) ||
		     (int64_t)json_array_size(all) >= total;
		json_decref(resp);
		if (rc) {
			rc = 0;
			break;
		}
	}
	if (rc || !all) {
		json_decref(all);
		return rc ? rc : -ENOMEM;
	}
	*out = all;
	return 0;
}

/* The accounts an image of mine is shared with, as a JSON array. */
static int fetch_shares(struct tencent *t, struct tc_client *cl,
			const char *region, const char *id, json_t **out)
{
	json_t *resp, *set, *e;
	size_t i;
	int rc = call(t, cl, "DescribeImageSharePermission", region,
		      json_pack("{s:s}", "ImageId", id), &resp);

	if (rc)
		return rc;
	*out = json_array();
	set = json_object_get(resp, "SharePermissionSet");
	json_array_foreach(set, i, e)
		json_array_append_new(*out, json_string(jstr(e, "AccountId")));
	json_decref(resp);
	return 0;
}

/* --- refreshing a folder -------------------------------------------------- */

/* Make the shares of my image row those of the array accounts. */
static int sync_shares(struct local *c, const char *region, const char *name,
		       int64_t row, json_t *accounts)
{
	const char *me = c->b.account;
	sqlite3_stmt *st;
	json_t *a;
	size_t i;
	int rc = 0;

	json_array_foreach(accounts, i, a) {
		const char *peer = json_string_value(a);

		if (peer && run3(c, "INSERT OR IGNORE INTO shares (image, "
				 "account) VALUES (?2, ?3)", NULL, row,
				 peer) > 0)
			rc = local_log_change(c, row, region, me, name, name,
					      peer);
		if (rc)
			return rc;
	}
	if (sqlite3_prepare_v2(c->db, "SELECT account FROM shares WHERE "
			       "image = ?1", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, row);
	while (!rc && sqlite3_step(st) == SQLITE_ROW) {
		const char *peer = (const char *)sqlite3_column_text(st, 0);
		int found = 0;

		json_array_foreach(accounts, i, a)
			found |= !strcmp(json_string_value(a), peer);
		if (found)
			continue;
		run3(c, "DELETE FROM shares WHERE image = ?2 AND account = ?3",
		     NULL, row, peer);
		rc = local_log_change(c, row, region, me, name, name, peer);
	}
	sqlite3_finalize(st);
	return rc;
}

/* Forget the images of a folder that the cloud no longer lists. */
static int drop_unseen(struct local *c, const char *region,
		       enum image_kind kind, double since)
{
	const char *me = c->b.account;
	sqlite3_stmt *st;
	int rc = 0;

	if (sqlite3_prepare_v2(c->db, "SELECT row, owner, name FROM images i "
			       "WHERE region = ?1 AND id IS NOT NULL AND "
			       "mtime < ?3 AND row NOT IN (SELECT row FROM "
			       "temp.seen) AND (CASE ?2 WHEN 'custom' THEN "
			       "kind = 'custom' AND owner = ?4 WHEN 'shared' "
			       "THEN kind = 'custom' AND owner <> ?4 ELSE "
			       "kind = ?2 END)", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, region, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, kind_names[kind], -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (int64_t)since);
	sqlite3_bind_text(st, 4, me, -1, SQLITE_STATIC);
	while (!rc && sqlite3_step(st) == SQLITE_ROW) {
		int64_t row = sqlite3_column_int64(st, 0);
		const char *owner = (const char *)sqlite3_column_text(st, 1);
		const char *name = (const char *)sqlite3_column_text(st, 2);

		rc = local_log_change(c, row, region, owner, name, NULL,
				      kind == KIND_SHARED ? me : NULL);
		if (!rc)
			rc = run3(c, "DELETE FROM images WHERE row = ?2", NULL,
				  row, NULL) < 0 ? -EIO : 0;
	}
	sqlite3_finalize(st);
	return rc;
}

/* Put one listed image in the cache; remember it as seen. */
static int take_image(struct local *c, const char *region,
		      enum image_kind kind, json_t *j, json_t *shares)
{
	const char *me = c->b.account;
	const char *owner = kind == KIND_CUSTOM ? me :
			    kind == KIND_SHARED ? jstr(j, "ImageCreator") :
			    kind == KIND_PUBLIC ? "tencentcloud" : "market";
	const char *name = jstr(j, "ImageName");
	int64_t row;
	int changed, rc;

	if (!owner[0] || (kind == KIND_SHARED && !strcmp(owner, me)))
		return 0;	/* no account to show it under */
	rc = upsert(c, region, kind == KIND_SHARED ? "custom" :
		    kind_names[kind], owner, j, &row, &changed);
	if (!rc && changed)
		rc = local_log_change(c, row, region, owner, name, name, NULL);
	if (!rc && kind == KIND_SHARED &&
	    run3(c, "INSERT OR IGNORE INTO shares (image, account) VALUES "
		 "(?2, ?3)", NULL, row, me) > 0)
		rc = local_log_change(c, row, region, owner, name, name, me);
	if (!rc && shares)
		rc = sync_shares(c, region, name, row, shares);
	if (!rc)
		rc = run3(c, "INSERT OR IGNORE INTO temp.seen VALUES (?2)",
			  NULL, row, NULL) < 0 ? -EIO : 0;
	return rc;
}

/*
 * Fetch a folder of region from the cloud through cl and make the cache
 * (through connection c) hold what it holds.
 */
static int refresh(struct tencent *t, struct local *c, struct tc_client *cl,
		   const char *region, enum image_kind kind)
{
	json_t *list = NULL, *shares = json_object(), *j, *resp = NULL;
	double start = now_s();
	int gen = gen_get(t);
	size_t i;
	int rc;

	rc = fetch_all(t, cl, region, image_types[kind], &list);
	if (!rc && kind == KIND_CUSTOM) {
		json_array_foreach(list, i, j) {
			json_t *a;

			if (strcmp(jstr(j, "ImageState"), "NORMAL"))
				continue;
			rc = fetch_shares(t, cl, region, jstr(j, "ImageId"),
					  &a);
			if (rc)
				break;
			json_object_set_new(shares, jstr(j, "ImageId"), a);
		}
		if (!rc)
			rc = call(t, cl, "DescribeImageQuota", region,
				  json_object(), &resp);
	}
	if (rc)
		goto out;
	rc = local_tx_begin(c);
	if (rc)
		goto out;
	if (gen != gen_get(t)) {
		/* a change of this mount came between: fetch again later */
		local_tx_end(c, -EAGAIN);
		pthread_mutex_lock(&t->lock);
		t->want[region_index(t, region)][kind] = 1;
		pthread_mutex_unlock(&t->lock);
		rc = 0;
		goto out;
	}
	rc = local_exec(c->db, "CREATE TEMP TABLE IF NOT EXISTS seen (row "
			"INTEGER PRIMARY KEY); DELETE FROM temp.seen");
	json_array_foreach(list, i, j) {
		if (rc)
			break;
		rc = take_image(c, region, kind, j, kind == KIND_CUSTOM ?
				json_object_get(shares, jstr(j, "ImageId")) :
				NULL);
	}
	if (!rc)
		rc = drop_unseen(c, region, kind, start);
	if (!rc && resp) {
		char quota[24];

		snprintf(quota, sizeof(quota), "%lld", (long long)
			 json_integer_value(json_object_get(resp,
							    "ImageNumQuota")));
		rc = run3(c, "UPDATE settings SET value = CAST(?1 AS INTEGER) "
			  "WHERE key = 'max_custom_images' AND ?1 > 0", quota,
			  0, NULL) < 0 ? -EIO : 0;
	}
	if (!rc)
		rc = run3(c, "INSERT OR REPLACE INTO fetched (region, kind, "
			  "at) VALUES (?1, ?3, ?2)", region, (int64_t)start,
			  kind_names[kind]) < 0 ? -EIO : 0;
	rc = local_tx_end(c, rc);
out:
	json_decref(list);
	json_decref(shares);
	json_decref(resp);
	return rc;
}

/* Fetch a folder now if it never was; ask the worker if it is stale. */
static int fresh(struct tencent *t, const char *region, enum image_kind kind)
{
	int64_t at = sql_int(&t->l, "SELECT at FROM fetched WHERE region = ?1 "
			     "AND kind = ?2", region, kind_names[kind]);
	int r = region_index(t, region);

	if (r < 0)
		return -ENOENT;
	if (at < 0)
		return refresh(t, &t->l, &t->fg, region, kind);
	if (now_s() - at >= t->ttl) {
		pthread_mutex_lock(&t->lock);
		t->want[r][kind] = 1;
		pthread_cond_signal(&t->cond);
		pthread_mutex_unlock(&t->lock);
	}
	return 0;
}

/* --- the worker ----------------------------------------------------------- */

/* Ask the cloud again about my images that are still settling. */
static int poll_settling(struct tencent *t, struct local *c,
			 struct tc_client *cl)
{
	sqlite3_stmt *st;
	json_t *ids = json_object(), *list, *j;
	int gen = gen_get(t);
	const char *region;
	size_t i;
	int rc = 0;

	if (!ids || sqlite3_prepare_v2(c->db, "SELECT region, id FROM images "
				       "WHERE kind = 'custom' AND owner = ?1 "
				       "AND id IS NOT NULL AND state IN "
				       "('CREATING', 'SYNCING', 'IMPORTING')",
				       -1, &st, NULL) != SQLITE_OK) {
		json_decref(ids);
		return -EIO;
	}
	sqlite3_bind_text(st, 1, c->b.account, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *r = (const char *)sqlite3_column_text(st, 0);

		if (!json_object_get(ids, r))
			json_object_set_new(ids, r, json_array());
		json_array_append_new(json_object_get(ids, r), json_string(
				      (const char *)sqlite3_column_text(st,
									1)));
	}
	sqlite3_finalize(st);
	json_object_foreach(ids, region, list) {
		json_t *resp;

		rc = call(t, cl, "DescribeImages", region,
			  json_pack("{s:O}", "ImageIds", list), &resp);
		if (rc)
			continue;
		rc = local_tx_begin(c);
		if (!rc && gen != gen_get(t))
			rc = -EAGAIN;	/* polled again next time */
		json_array_foreach(json_object_get(resp, "ImageSet"), i, j) {
			int64_t row;
			int changed;

			if (!rc)
				rc = upsert(c, region, "custom", c->b.account,
					    j, &row, &changed);
			if (!rc && changed)
				rc = local_log_change(c, row, region,
						      c->b.account,
						      jstr(j, "ImageName"),
						      jstr(j, "ImageName"),
						      NULL);
		}
		local_tx_end(c, rc);
		json_decref(resp);
	}
	json_decref(ids);
	return rc;
}

/*
 * Ask for the folders fetched longer than the time-to-live ago: the kernel
 * may hold their listings and never ask, so the cloud's own changes must
 * come to it.
 */
static void want_stale(struct tencent *t, struct local *c)
{
	double ttl = t->ttl > 2.0 * POLL_MS / 1000 ? t->ttl :
		     2.0 * POLL_MS / 1000;
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(c->db, "SELECT region, kind FROM fetched "
			       "WHERE at <= ?1", -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_double(st, 1, now_s() - ttl);
	pthread_mutex_lock(&t->lock);
	while (sqlite3_step(st) == SQLITE_ROW) {
		int r = region_index(t, (const char *)sqlite3_column_text(st,
									  0));
		const char *kind = (const char *)sqlite3_column_text(st, 1);

		for (int k = 0; r >= 0 && k < KIND_COUNT; k++)
			if (!strcmp(kind, kind_names[k]))
				t->want[r][k] = 1;
	}
	pthread_mutex_unlock(&t->lock);
	sqlite3_finalize(st);
}

struct worker {
	struct tencent *t;
	struct local *c;
	struct tc_client cl;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct tencent *t = w->t;

	pthread_mutex_lock(&t->lock);
	while (!t->stop) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += POLL_MS * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&t->cond, &t->lock, &ts);
		pthread_mutex_unlock(&t->lock);
		want_stale(t, w->c);
		pthread_mutex_lock(&t->lock);
		for (int r = 0; r < t->nregions && !t->stop; r++) {
			for (int k = 0; k < KIND_COUNT && !t->stop; k++) {
				if (!t->want[r][k])
					continue;
				t->want[r][k] = 0;
				pthread_mutex_unlock(&t->lock);
				refresh(t, w->c, &w->cl, t->regions[r].name, k);
				pthread_mutex_lock(&t->lock);
			}
		}
		if (t->stop)
			break;
		pthread_mutex_unlock(&t->lock);
		poll_settling(t, w->c, &w->cl);
		pthread_mutex_lock(&t->lock);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

static struct worker *worker_new(struct tencent *t)
{
	struct worker *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->t = t;
	if (local_open_file(t->l.path, t->l.account, 0, sizeof(struct local),
			    &w->c)) {
		free(w);
		return NULL;
	}
	w->c->origin = 0;	/* its changes reach this daemon's kernel too */
	if (tc_client_init(&w->cl, &t->conf)) {
		local_close(&w->c->b);
		free(w);
		return NULL;
	}
	return w;
}

static void worker_free(struct worker *w)
{
	tc_client_free(&w->cl);
	local_close(&w->c->b);
	free(w);
}

static void *worker_thread(void *arg)
{
	worker_main(arg);
	worker_free(arg);
	return NULL;
}

static void kick(struct tencent *t)
{
	pthread_mutex_lock(&t->lock);
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

/* --- reads ---------------------------------------------------------------- */

static int tc_list(struct backend *b, const struct folder *f, int64_t after,
		   image_cb cb, void *ctx)
{
	int rc = fresh(to_tc(b), f->region, f->kind);

	return rc ? rc : local_list(b, f, after, cb, ctx);
}

static int tc_find(struct backend *b, const struct folder *f,
		   const char *name, image_cb cb, void *ctx)
{
	int rc = fresh(to_tc(b), f->region, f->kind);

	return rc ? rc : local_find(b, f, name, cb, ctx);
}

static int tc_count(struct backend *b, const struct folder *f, int *n)
{
	int rc = fresh(to_tc(b), f->region, f->kind);

	return rc ? rc : local_count(b, f, n);
}

static int tc_peers(struct backend *b, const char *region, int64_t after,
		    peer_cb cb, void *ctx)
{
	int rc = fresh(to_tc(b), region, KIND_SHARED);

	if (!rc)
		rc = fresh(to_tc(b), region, KIND_CUSTOM);
	return rc ? rc : local_peers(b, region, after, cb, ctx);
}

static int tc_shares(struct backend *b, const char *region, const char *peer,
		     int64_t after, share_cb cb, void *ctx)
{
	int rc = fresh(to_tc(b), region, KIND_CUSTOM);

	return rc ? rc : local_shares(b, region, peer, after, cb, ctx);
}

static int tc_usage(struct backend *b, const char *region, struct usage *u)
{
	int rc = fresh(to_tc(b), region, KIND_CUSTOM);

	return rc ? rc : local_usage(b, region, u);
}

/* The cloud's words on the last failure, else the cache's. */
static const char *tc_why(struct backend *b)
{
	struct tencent *t = to_tc(b);

	return t->detail[0] ? t->detail : local_why(b);
}

/* --- changes -------------------------------------------------------------- */

/* My image row, for a change; -EPERM when it is not mine. */
static int mine(struct tencent *t, int64_t row, struct image *img)
{
	int rc;

	t->detail[0] = 0;
	t->l.why[0] = 0;
	gen_bump(t);
	rc = local_get(&t->l.b, row, img);
	if (rc)
		return rc;
	return img->kind == KIND_CUSTOM ? 0 : -EPERM;
}

/*
 * The cloud made image id of my pending row (source and state until the
 * cloud says more): take it into the cache, charged to region.
 */
static int adopt(struct tencent *t, const struct image *img, const char *id,
		 const char *source, const char *state, const char *region,
		 const struct spec *spec)
{
	struct local *c = &t->l;
	json_t *resp = NULL, *j;
	int64_t row;
	int changed, rc;

	/* what the cloud says of it now; the worker polls it later */
	if (call(t, &t->fg, "DescribeImages", img->region,
		 json_pack("{s:[s]}", "ImageIds", id), &resp))
		resp = NULL;
	j = json_array_get(json_object_get(resp, "ImageSet"), 0);
	rc = local_tx_begin(c);
	gen_bump(t);
	if (!rc)
		rc = run3(c, "DELETE FROM images WHERE id = ?1 AND row <> ?2",
			  id, img->row, NULL) < 0 ? -EIO : 0;
	if (!rc)
		rc = run3(c, "UPDATE images SET id = ?1, state = ?3, "
			  "progress = 0, mtime = strftime('%s') WHERE row = ?2",
			  id, img->row, state) < 0 ? -EIO : 0;
	if (!rc)
		rc = run3(c, "UPDATE images SET source = ?1, os_name = NULL "
			  "WHERE row = ?2", source, img->row, NULL) < 0 ?
		     -EIO : 0;
	if (!rc && spec->description)
		rc = run3(c, "UPDATE images SET description = ?1 WHERE "
			  "row = ?2", spec->description, img->row, NULL) < 0 ?
		     -EIO : 0;
	if (!rc && j)
		rc = upsert(c, img->region, "custom", c->b.account, j, &row,
			    &changed);
	if (!rc) {
		local_charge(c, region);	/* a hint for open(2) only */
		rc = local_log_change(c, img->row, img->region, c->b.account,
				      img->name, img->name, NULL);
	}
	rc = local_tx_end(c, rc);
	json_decref(resp);
	kick(t);
	return rc;
}

/* The id of the image that ImportImage made: it does not say. */
static int imported_id(struct tencent *t, const struct image *img, char *id,
		       size_t size)
{
	json_t *resp, *j;
	int64_t best = -1;
	size_t i;
	int rc = call(t, &t->fg, "DescribeImages", img->region,
		      json_pack("{s:[o, o], s:i}", "Filters",
				filter("image-type", "PRIVATE_IMAGE"),
				filter("image-name", img->name), "Limit", PAGE),
		      &resp);

	if (rc)
		return rc;
	json_array_foreach(json_object_get(resp, "ImageSet"), i, j) {
		int64_t at = parse_time(jstr(j, "CreatedTime"));

		if (sql_int(&t->l, "SELECT 1 FROM images WHERE id = ?1",
			    jstr(j, "ImageId"), NULL) > 0 || at < best)
			continue;
		best = at;
		snprintf(id, size, "%s", jstr(j, "ImageId"));
	}
	json_decref(resp);
	return best < 0 ? -EIO : 0;
}

static void pack_opt(json_t *o, const char *key, const char *value)
{
	if (value && value[0])
		json_object_set_new(o, key, json_string(value));
}

static int tc_commit(struct backend *b, int64_t row, const struct spec *spec)
{
	struct tencent *t = to_tc(b);
	char id[64] = "", source[1100];
	struct image img;
	json_t *req, *resp;
	int rc = mine(t, row, &img);

	if (rc)
		return rc;
	if (!img.pending)
		return -EEXIST;
	if (spec->import_url && url_check(spec->import_url))
		return local_refuse(&t->l, -EINVAL, "IMPORT_URL is an http "
				    "or https URL");
	if (!spec->import_url && !spec->instance && spec->dry_run)
		return local_check_ops(b, img.region);	/* not yet said */
	if (!spec->import_url && !spec->instance)
		return local_refuse(&t->l, -EINVAL, "the cloud makes an "
				    "image from an instance (INSTANCE=), a "
				    "file (IMPORT_URL=) or a copy (ID=)");
	/* an import's keys may come in later lines: ask when they are in */
	if (spec->dry_run && spec->import_url && (!spec->arch ||
	    (!spec->platform && !spec->os_type)))
		return local_check_ops(b, img.region);
	req = json_pack("{s:s, s:b}", "ImageName", img.name, "DryRun",
			spec->dry_run);
	if (!req)
		return -ENOMEM;
	pack_opt(req, "ImageDescription", spec->description);
	if (spec->instance) {
		pack_opt(req, "InstanceId", spec->instance);
		rc = call(t, &t->fg, "CreateImage", img.region, req, &resp);
		if (rc || spec->dry_run) {
			json_decref(resp);
			return rc;
		}
		snprintf(id, sizeof(id), "%s", jstr(resp, "ImageId"));
		json_decref(resp);
		snprintf(source, sizeof(source), "instance:%s",
			 spec->instance);
		return adopt(t, &img, id, source, "CREATING", img.region,
			     spec);
	}
	pack_opt(req, "ImageUrl", spec->import_url);
	pack_opt(req, "Architecture", spec->arch);
	pack_opt(req, "OsType", spec->platform && spec->platform[0] ?
		 spec->platform : spec->os_type);
	pack_opt(req, "OsVersion", spec->os_name ? spec->os_name : "-");
	rc = call(t, &t->fg, "ImportImage", img.region, req, NULL);
	if (!rc && !spec->dry_run)
		rc = imported_id(t, &img, id, sizeof(id));
	if (rc || spec->dry_run)
		return rc;
	url_redact(spec->import_url, source + 7, sizeof(source) - 7);
	memcpy(source, "import:", 7);
	return adopt(t, &img, id, source, "IMPORTING", img.region, spec);
}

/* Where image id is: from the cache, else from the cloud, region by
 * region. */
static int source_region(struct tencent *t, const char *id, char *region,
			 size_t size)
{
	int64_t r = sql_int(&t->l, "SELECT r.row FROM images i JOIN regions r "
			    "ON r.name = i.region WHERE i.id = ?1", id, NULL);

	if (r > 0 && r <= t->nregions) {
		snprintf(region, size, "%s", t->regions[r - 1].name);
		return 0;
	}
	for (int i = 0; i < t->nregions; i++) {
		json_t *resp;
		int rc = call(t, &t->fg, "DescribeImages", t->regions[i].name,
			      json_pack("{s:[s]}", "ImageIds", id), &resp);
		size_t n = json_array_size(json_object_get(resp, "ImageSet"));

		json_decref(resp);
		if (rc && rc != -ENOENT && rc != -EINVAL)
			return rc;
		if (!rc && n) {
			snprintf(region, size, "%s", t->regions[i].name);
			return 0;
		}
	}
	return -EINVAL;		/* a missing source */
}

static int tc_copy(struct backend *b, int64_t row, const char *source_id,
		   const struct spec *spec)
{
	struct tencent *t = to_tc(b);
	char from[32], source[1100], id[64];
	struct image img;
	json_t *resp = NULL;
	int rc = mine(t, row, &img);

	if (rc)
		return rc;
	if (!img.pending)
		return -EEXIST;
	rc = source_region(t, source_id, from, sizeof(from));
	if (rc)
		return rc;
	rc = call(t, &t->fg, "SyncImages", from,
		  json_pack("{s:[s], s:[s], s:s, s:b}", "ImageIds", source_id,
			    "DestinationRegions", img.region, "ImageName",
			    img.name, "DryRun", spec->dry_run), &resp);
	if (rc || spec->dry_run) {
		json_decref(resp);
		return rc == -ENOENT ? -EINVAL : rc;
	}
	snprintf(source, sizeof(source), "copy:%s@%s", source_id, from);
	snprintf(id, sizeof(id), "%s", jstr(json_array_get(json_object_get(
		 resp, "ImageSet"), 0), "ImageId"));
	json_decref(resp);
	/* SyncImages copies the description too: a new one is set after */
	if (spec->description && sql_int(&t->l, "SELECT 1 FROM images WHERE "
					 "id = ?1 AND description IS ?2",
					 source_id, spec->description) < 0 &&
	    call(t, &t->fg, "ModifyImageAttribute", img.region,
		 json_pack("{s:s, s:s}", "ImageId", id, "ImageDescription",
			   spec->description), NULL))
		log_warn("copy %s: the description was not set", id);
	return adopt(t, &img, id, source, "SYNCING", from, spec);
}

/*
 * The cloud did what was asked of my image: do the same to the cache with
 * sql (?1 text, ?2 row, ?3 peer, ?4 text2), charge it and tell the kernel.
 */
static int applied2(struct tencent *t, const struct image *img,
		    const char *sql, const char *text, const char *peer,
		    const char *text2, const char *new_name)
{
	struct local *c = &t->l;
	int rc = local_tx_begin(c);

	gen_bump(t);
	if (!rc)
		rc = run4(c, sql, text, img->row, peer, text2) < 0 ? -EIO : 0;
	if (!rc) {
		local_charge(c, img->region);
		rc = local_log_change(c, img->row, img->region, c->b.account,
				      img->name, new_name, peer);
	}
	return local_tx_end(c, rc);
}

static int applied(struct tencent *t, const struct image *img,
		   const char *sql, const char *text, const char *peer,
		   const char *new_name)
{
	return applied2(t, img, sql, text, peer, NULL, new_name);
}

/* A new name and description (NULL: unchanged) in one call. */
static int tc_edit(struct backend *b, int64_t row, const char *name,
		   const char *description)
{
	struct tencent *t = to_tc(b);
	struct image img;
	json_t *req;
	int rc = mine(t, row, &img);

	if (rc)
		return rc;
	if (img.pending)
		return local_edit(b, row, name, description);
	if (name && !strcmp(name, img.name))
		name = NULL;
	if (description && !strcmp(description, img.description))
		description = NULL;
	if (!name && !description)
		return 0;
	req = json_pack("{s:s}", "ImageId", img.id);
	if (name)
		json_object_set_new(req, "ImageName", json_string(name));
	if (description)
		json_object_set_new(req, "ImageDescription",
				    json_string(description));
	rc = call(t, &t->fg, "ModifyImageAttribute", img.region, req, NULL);
	if (rc)
		return rc;
	/* ?4 is NULL for "": a description cleared */
	return applied2(t, &img, description ?
			"UPDATE images SET name = coalesce(?1, name), "
			"description = ?4, mtime = strftime('%s') WHERE "
			"row = ?2" :
			"UPDATE images SET name = ?1, mtime = strftime('%s') "
			"WHERE row = ?2", name, NULL, description,
			name ? name : img.name);
}

static int tc_rename(struct backend *b, int64_t row, const char *name)
{
	return tc_edit(b, row, name, NULL);
}

static int tc_set_description(struct backend *b, int64_t row,
			      const char *description)
{
	return tc_edit(b, row, NULL, description);
}

static int tc_remove(struct backend *b, int64_t row)
{
	struct tencent *t = to_tc(b);
	struct image img;
	int rc = mine(t, row, &img);

	if (rc)
		return rc;
	if (img.pending)
		return local_remove(b, row);
	rc = call(t, &t->fg, "DeleteImages", img.region,
		  json_pack("{s:[s]}", "ImageIds", img.id), NULL);
	if (rc)
		return rc;
	/* the image goes; its directory stays, pending, until rmdir */
	return applied(t, &img, "UPDATE images SET id = NULL, state = "
		       "'PENDING', os_name = NULL, os_type = NULL, platform = "
		       "NULL, arch = NULL, bits = NULL, size_gb = NULL, "
		       "progress = NULL, description = NULL, source = NULL, "
		       "price = NULL, error = NULL, mtime = strftime('%s') "
		       "WHERE row = ?2 AND ?1 IS NULL", NULL, NULL, img.name);
}

static int tc_permission(struct backend *b, int64_t row, const char *peer,
			 const char *permission)
{
	struct tencent *t = to_tc(b);
	int share = !strcmp(permission, "SHARE");
	struct image img;
	int rc;

	if (share && !strcmp(peer, b->account))
		return -EINVAL;
	rc = mine(t, row, &img);
	if (rc)
		return rc;
	if (img.pending)
		return share ? -EPERM : -ENOENT;
	rc = call(t, &t->fg, "ModifyImageSharePermission", img.region,
		  json_pack("{s:s, s:[s], s:s}", "ImageId", img.id,
			    "AccountIds", peer, "Permission", permission),
		  NULL);
	if (rc)
		return rc;
	return applied(t, &img, share ? "INSERT OR IGNORE INTO shares "
		       "(image, account) SELECT ?2, ?3 WHERE ?1 IS NULL" :
		       "DELETE FROM shares WHERE image = ?2 AND account = ?3 "
		       "AND ?1 IS NULL", NULL, peer, img.name);
}

static int tc_share(struct backend *b, int64_t row, const char *peer)
{
	return tc_permission(b, row, peer, "SHARE");
}

static int tc_unshare(struct backend *b, int64_t row, const char *peer)
{
	return tc_permission(b, row, peer, "CANCEL");
}

static int tc_create_pending(struct backend *b, const char *region,
			     const char *name, int64_t *row)
{
	int rc = fresh(to_tc(b), region, KIND_CUSTOM);

	return rc ? rc : local_create_pending(b, region, name, row);
}

/* --- open and close ------------------------------------------------------- */

static void tc_close(struct backend *b)
{
	struct tencent *t = to_tc(b);

	if (t->started) {
		pthread_mutex_lock(&t->lock);
		t->stop = 1;
		pthread_cond_signal(&t->cond);
		pthread_mutex_unlock(&t->lock);
		pthread_join(t->thread, NULL);
	}
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	tc_client_free(&t->fg);
	credentials_clear(&t->conf.creds);
	local_close(b);
}

static const struct backend_ops tencent_ops = {
	.name = "tencentcloud",
	.close = tc_close,
	.regions = local_regions,
	.list = tc_list,
	.find = tc_find,
	.get = local_get,
	.count = tc_count,
	.peers = tc_peers,
	.shares = tc_shares,
	.get_share = local_get_share,
	.usage = tc_usage,
	.summary = local_summary,
	.create_pending = tc_create_pending,
	.commit = tc_commit,
	.copy = tc_copy,
	.check_ops = local_check_ops,
	.rename = tc_rename,
	.set_description = tc_set_description,
	.edit = tc_edit,
	.remove = tc_remove,
	.share = tc_share,
	.unshare = tc_unshare,
	.add_peer = local_add_peer,
	.remove_peer = local_remove_peer,
	.changes = local_changes,
	.why = tc_why,
};

/* $XDG_CACHE_HOME/imagefs/<account>@<host>.db */
static int cache_path(const struct config *cfg, const char *host, char *out,
		      size_t size)
{
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	int n;

	if (cfg->cache)
		n = snprintf(out, size, "%s", cfg->cache);
	else if (xdg && xdg[0] == '/')
		n = snprintf(out, size, "%s/imagefs/%s@%s.db", xdg,
			     cfg->account, host);
	else
		n = snprintf(out, size, "%s/.cache/imagefs/%s@%s.db",
			     home ? home : "", cfg->account, host);
	return n < (int)size ? 0 : -ENAMETOOLONG;
}

int tencent_open(const struct config *cfg, struct backend **out)
{
	struct tc_conf conf = { 0 };
	struct tencent *t;
	struct local *l;
	char path[PATH_MAX];
	struct worker *w;
	int rc;

	conf.timeout_ms = (long)(cfg->api_timeout * 1000);
	conf.debug = cfg->debug;
	rc = tc_conf_init(&conf, cfg->endpoint);
	if (!rc)
		rc = credentials_load(cfg, &conf.creds);
	if (!rc)
		rc = cache_path(cfg, conf.host, path, sizeof(path));
	if (!rc)
		rc = local_open_file(path, cfg->account, 0, sizeof(*t), &l);
	if (rc) {
		credentials_clear(&conf.creds);
		return rc;
	}
	t = (struct tencent *)l;
	t->conf = conf;
	credentials_clear(&conf.creds);
	t->ttl = cfg->cache_ttl;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	t->l.b.ops = &tencent_ops;
	rc = tc_client_init(&t->fg, &t->conf);
	if (!rc)
		rc = local_exec(l->db, "CREATE TABLE IF NOT EXISTS fetched "
				"(region TEXT NOT NULL, kind TEXT NOT NULL, "
				"at INTEGER NOT NULL, "
				"PRIMARY KEY (region, kind))");
	if (!rc)
		rc = local_regions(&l->b, t->regions, MAX_REGIONS,
				       &t->nregions);
	w = rc ? NULL : worker_new(t);
	if (!rc && !w)
		rc = -ENOMEM;
	if (!rc && pthread_create(&t->thread, NULL, worker_thread, w)) {
		worker_free(w);
		rc = -EAGAIN;
	}
	t->started = !rc;
	if (rc) {
		tc_close(&l->b);
		return rc;
	}
	*out = &l->b;
	return 0;
}
