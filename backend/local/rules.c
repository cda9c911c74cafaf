// SPDX-License-Identifier: GPL-2.0
/*
 * rules.c - every rule of the image service and every change to the
 * catalog. Each call is one BEGIN IMMEDIATE transaction: the rules are
 * checked against what the catalog holds at that moment, the change and its
 * charge are applied, and other daemons on the same file see all or nothing.
 *
 * The checks of one call come in the order of DESIGN.md section 4's table,
 * except the daily limit, which is checked last: a failed operation is not
 * charged, so it is charged only once everything else has passed. A dry
 * run (spec->dry_run) makes the same checks in a read transaction, which
 * takes no write lock, and changes nothing.
 *
 * An image the account cannot see (another account's custom image not
 * shared with it) is answered like one that does not exist, so that no
 * call tells whether it does.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "../source.h"
#include "local.h"

/* What the catalog says of one image, for the checks. */
struct owned {
	char region[32];
	char name[NAME_MAX_BYTES + 1];
	char description[DESC_MAX_BYTES + 1];
	char state[16];
	int mine;
	int pending;
	int shares;
	int copies;		/* copies from it still running */
	char charged[32];	/* the region its making was charged to */
	int64_t created;
};

static struct local *to_local(struct backend *b)
{
	return (struct local *)b;
}

/* Run a statement that returns no rows. */
static int step_done(sqlite3_stmt *st)
{
	int rc;

	if (!st)
		return -EIO;
	rc = local_errno(sqlite3_step(st));
	sqlite3_reset(st);
	return rc;
}

/* Run a statement for its first row's first integer; *found = has a row. */
static int step_int(sqlite3_stmt *st, int64_t *value, int *found)
{
	int rc;

	if (!st)
		return -EIO;
	rc = sqlite3_step(st);
	*found = rc == SQLITE_ROW;
	*value = *found ? sqlite3_column_int64(st, 0) : 0;
	rc = local_errno(rc);
	sqlite3_reset(st);
	return rc;
}

/*
 * BEGIN IMMEDIATE. While serving a mount (b.wake set) a lock that another
 * process holds is not waited for here: -BACKEND_WAIT, and the request is
 * made again (backend.h), so that it holds up nothing else.
 */
int local_tx_begin(struct local *l)
{
	int rc;

	/* never a write inside the request's read transaction */
	local_read_end(l);
	l->dry_run = 0;
	l->why[0] = 0;
	if (__atomic_load_n(&l->gone, __ATOMIC_RELAXED))
		return local_refuse(l, -EROFS, "the catalog file was deleted "
				    "or replaced: mount it again");
	if (!l->b.wake)
		return step_done(local_stmt(l, Q_BEGIN));
	sqlite3_busy_timeout(l->db, 0);
	rc = step_done(local_stmt(l, Q_BEGIN));
	sqlite3_busy_timeout(l->db, LOCAL_BUSY_MS);
	return rc == -ENOLCK ? -BACKEND_WAIT : rc;
}

/* A dry run reads: WAL readers neither wait for a writer nor hold it up. */
int local_tx_begin_read(struct local *l)
{
	int rc;

	local_read_end(l);	/* a transaction of its own, as above */
	rc = step_done(local_stmt(l, Q_BEGIN_READ));

	l->dry_run = !rc;
	return rc;
}

/*
 * Commit when rc is 0, else roll back; the transaction's result. A change
 * to a catalog file that was deleted or replaced would be lost: -EROFS.
 */
int local_tx_end(struct local *l, int rc)
{
	l->writes++;
	l->credit = NULL;
	if (!rc && l->dry_run) {
		step_done(local_stmt(l, Q_ROLLBACK));
		return 0;
	}
	if (!rc && local_catalog_gone(l, l->db))
		rc = local_refuse(l, -EROFS, "the catalog file was deleted or "
				  "replaced: mount it again");
	if (!rc)
		rc = step_done(local_stmt(l, Q_COMMIT));
	if (rc)
		step_done(local_stmt(l, Q_ROLLBACK));
	return rc;
}

/*
 * Read an image for a change: -ENOENT when absent (or not to be seen),
 * -EPERM when not mine.
 */
static int owned(struct local *l, int64_t row, struct owned *o)
{
	sqlite3_stmt *st;
	int rc = local_by_row(l, Q_OWN, row, &st);

	if (rc)
		return rc;
	rc = local_copy_text(o->region, sizeof(o->region), st, 0);
	if (!rc)
		rc = local_copy_text(o->name, sizeof(o->name), st, 1);
	if (!rc)
		rc = local_copy_text(o->state, sizeof(o->state), st, 2);
	if (!rc)
		rc = local_copy_text(o->description, sizeof(o->description),
				     st, 6);
	if (!rc)
		rc = local_copy_text(o->charged, sizeof(o->charged), st, 7);
	o->created = sqlite3_column_int64(st, 8);
	o->mine = sqlite3_column_int(st, 3);
	o->shares = sqlite3_column_int(st, 4);
	o->copies = sqlite3_column_int(st, 5);
	o->pending = !strcmp(o->state, "PENDING");
	sqlite3_reset(st);
	if (rc)
		return rc;
	if (!o->mine)
		return local_refuse(l, -EPERM, "%s is not one of my custom "
				    "images", o->name);
	return 0;
}

/* -EEXIST when another of my images in region is called name. */
static int name_free(struct local *l, const char *region, const char *name,
		     int64_t row)
{
	sqlite3_stmt *st = local_stmt(l, Q_NAME_TAKEN);
	int64_t v;
	int found, rc;

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 2, region, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, row);
	rc = step_int(st, &v, &found);
	if (!rc && found)
		rc = local_refuse(l, -EEXIST, "%s/custom already holds an "
				  "image called %s: choose another name",
				  region, name);
	return rc;
}

static int ops_left(struct local *l, const char *region)
{
	struct usage u;
	int rc = local_usage_locked(l, region, &u);

	if (rc)
		return rc;
	if (l->credit && !strcmp(l->credit, region))
		u.ops--;	/* what a dry-run amend gives back */
	if (u.ops < u.ops_max)
		return 0;
	/* a day is a calendar day in UTC+08:00 (local_today) */
	return local_refuse(l, -EAGAIN, "%s: %d of %d image operations used "
			    "today; the next is possible at 00:00 UTC+8",
			    region, u.ops, u.ops_max);
}

/* Charge one operation to region: -EAGAIN beyond the daily limit. A dry
 * run only checks. */
int local_charge(struct local *l, const char *region)
{
	sqlite3_stmt *st;
	char day[16];
	int rc = ops_left(l, region);

	if (rc || l->dry_run)
		return rc;
	st = local_stmt(l, Q_CHARGE);
	if (!st)
		return -EIO;
	local_today(day, sizeof(day));
	sqlite3_bind_text(st, 2, region, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, day, -1, SQLITE_TRANSIENT);
	return step_done(st);
}

/*
 * Move the times of the folders a change shows in: owner's custom/ (no
 * peer), or what owner and peer share; for a change of an image, also
 * the folders of the accounts it is shared with (its links there).
 */
static int stamp(struct local *l, int64_t row, const char *region,
		 const char *owner, const char *peer)
{
	int64_t now = time(NULL);
	sqlite3_stmt *st;
	int rc;

	if (!owner)
		return 0;
	st = local_stmt(l, Q_STAMP);
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 2, region, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, owner, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, peer, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, now);
	rc = step_done(st);
	if (rc || peer || !row)
		return rc;
	st = local_stmt(l, Q_STAMP_SHARES);
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 2, region, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, owner, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, row);
	sqlite3_bind_int64(st, 5, now);
	return step_done(st);
}

/* Run Q_LOG or Q_LOG_LINKS with the arguments of local_log_change. */
static int log_step(struct local *l, enum query q, int64_t row,
		    const char *region, const char *owner,
		    const char *old_name, const char *new_name,
		    const char *peer)
{
	sqlite3_stmt *st = local_stmt(l, q);

	if (!st)
		return -EIO;
	if (row)
		sqlite3_bind_int64(st, 2, row);
	sqlite3_bind_text(st, 3, region, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, owner, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, old_name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, new_name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, peer, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, l->origin);
	return step_done(st);
}

/*
 * Tell other daemons: image row of owner went from old_name to new_name;
 * and move the times of the folders that show it. A rename also changes
 * each of its share links (relink): one change more for each account it
 * is shared with (peer set), so that the other daemons list the new links
 * in shared/<peer>/ too.
 */
int local_log_change(struct local *l, int64_t row, const char *region,
		      const char *owner, const char *old_name,
		      const char *new_name, const char *peer)
{
	int rc = stamp(l, row, region, owner, peer);

	if (!rc)
		rc = log_step(l, Q_LOG, row, region, owner, old_name,
			      new_name, peer);
	if (!rc && row && !peer && old_name && new_name &&
	    strcmp(old_name, new_name))
		rc = log_step(l, Q_LOG_LINKS, row, region, owner, old_name,
			      new_name, NULL);
	return rc;
}

static int64_t setting(struct local *l, const char *key, int64_t fallback)
{
	sqlite3_stmt *st = local_stmt(l, Q_SETTING);
	int64_t v;
	int found;

	if (!st)
		return fallback;
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	if (step_int(st, &v, &found) || !found)
		return fallback;
	return v;
}

/* prefix and 8 random lowercase letters or digits. */
static int random_name(const char *prefix, char *out, size_t size)
{
	static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
	unsigned char r[8];
	size_t n = strlen(prefix);

	if (size < n + sizeof(r) + 1)
		return -ENAMETOOLONG;
	if (getrandom(r, sizeof(r), 0) != sizeof(r))
		return -EIO;
	memcpy(out, prefix, n);
	for (size_t i = 0; i < sizeof(r); i++)
		out[n + i] = digits[r[i] % 36];
	out[n + sizeof(r)] = 0;
	return 0;
}

/* A new image id, img- and 8 random lowercase letters or digits, unused. */
static int new_id(struct local *l, char *id, size_t size)
{
	int64_t v;
	int found, rc;

	for (int tries = 0; tries < 16; tries++) {
		sqlite3_stmt *st = local_stmt(l, Q_ID_TAKEN);

		rc = random_name("img-", id, size);
		if (rc || !st)
			return rc ? rc : -EIO;
		sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
		rc = step_int(st, &v, &found);
		if (rc || !found)
			return rc;
	}
	return -EIO;
}

/* Make pending image name in region, as *row (0: a new row). */
static int insert_pending(struct local *l, const char *region,
			  const char *name, int64_t *row)
{
	sqlite3_stmt *st = local_stmt(l, Q_INSERT_PENDING);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 2, region, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, time(NULL));
	if (*row)
		sqlite3_bind_int64(st, 5, *row);
	rc = step_done(st);
	if (!rc)
		*row = sqlite3_last_insert_rowid(l->db);
	return rc;
}

/*
 * A new pending image in region, in the open transaction: the slot and the
 * name are checked. row NULL: only checked (a dry run).
 */
static int pending_locked(struct local *l, const char *region,
			  const char *name, int64_t *row)
{
	struct usage u;
	int rc = local_usage_locked(l, region, &u);

	if (!rc && u.images >= u.images_max)
		rc = local_refuse(l, -EDQUOT, "%s: %d of %d image slots used "
				  "(pending images count): delete an image, "
				  "or rmdir a pending one, first", region,
				  u.images, u.images_max);
	if (!rc)
		rc = name_free(l, region, name, 0);
	if (rc || !row)
		return rc;
	*row = 0;
	rc = insert_pending(l, region, name, row);
	if (!rc)
		rc = local_log_change(l, *row, region, l->b.account, NULL,
				      name, NULL);
	return rc;
}

int local_create_pending(struct backend *b, const char *region,
			 const char *name, int64_t *row)
{
	struct local *l = to_local(b);
	int rc = local_tx_begin(l);

	*row = 0;
	if (rc)
		return rc;
	return local_tx_end(l, pending_locked(l, region, name, row));
}

/* The size of a field of struct image. */
#define IMAGE_FIELD(f) sizeof(((struct image *)0)->f)

/* The attributes a committed image gets. */
struct attrs {
	char os_name[IMAGE_FIELD(os_name)], os_type[IMAGE_FIELD(os_type)];
	char platform[IMAGE_FIELD(platform)], arch[IMAGE_FIELD(arch)];
	char description[IMAGE_FIELD(description)];
	char source[IMAGE_FIELD(source)], price[IMAGE_FIELD(price)];
	int bits, size_gb;
	const char *state;	/* NULL: NORMAL */
	int64_t progress;	/* with a state: where it stands */
};

/* The OS attributes of an image row from column col on. */
static int attrs_from_row(struct attrs *a, sqlite3_stmt *st, int col)
{
	int rc = local_copy_text(a->os_name, sizeof(a->os_name), st, col);

	if (!rc)
		rc = local_copy_text(a->os_type, sizeof(a->os_type), st,
				     col + 1);
	if (!rc)
		rc = local_copy_text(a->platform, sizeof(a->platform), st,
				     col + 2);
	if (!rc)
		rc = local_copy_text(a->arch, sizeof(a->arch), st, col + 3);
	a->bits = sqlite3_column_int(st, col + 4);
	a->size_gb = sqlite3_column_int(st, col + 5);
	return rc;
}

static void bind_opt(sqlite3_stmt *st, int col, const char *s)
{
	if (s && s[0])
		sqlite3_bind_text(st, col, s, -1, SQLITE_STATIC);
}

/* Turn pending row into a NORMAL image with a new id and attributes a. */
static int make_image(struct local *l, int64_t row, const struct owned *o,
		      const struct attrs *a)
{
	sqlite3_stmt *st;
	char id[16];
	int rc = new_id(l, id, sizeof(id));

	if (rc)
		return rc;
	st = local_stmt(l, Q_MAKE_IMAGE);
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 2, row);
	sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
	bind_opt(st, 4, a->os_name);
	bind_opt(st, 5, a->os_type);
	bind_opt(st, 6, a->platform);
	bind_opt(st, 7, a->arch);
	if (a->bits)
		sqlite3_bind_int(st, 8, a->bits);
	if (a->size_gb)
		sqlite3_bind_int(st, 9, a->size_gb);
	sqlite3_bind_int64(st, 10, time(NULL));
	bind_opt(st, 11, a->description);
	bind_opt(st, 12, a->source);
	bind_opt(st, 13, a->price);
	if (a->state) {
		sqlite3_bind_text(st, 14, a->state, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 15, a->progress);
	}
	rc = step_done(st);
	if (!rc)
		rc = local_log_change(l, row, o->region, l->b.account, o->name,
				o->name, NULL);
	return rc;
}

/*
 * Open a transaction on my image row (pending: it must be pending; dry: a
 * read that only checks). On an error the transaction is over; on success
 * the caller ends it.
 */
static int begin_owned(struct local *l, int64_t row, struct owned *o,
		       int pending, int dry)
{
	int rc = dry ? local_tx_begin_read(l) : local_tx_begin(l);

	if (rc)
		return rc;
	rc = owned(l, row, o);
	if (!rc && pending && !o->pending)
		rc = local_refuse(l, -EEXIST, "%s is an image already",
				  o->name);
	if (rc)
		local_tx_end(l, rc);
	return rc;
}

/*
 * An amend (spec->amend), in the open transaction: my image o, which a
 * commit made just before, is to be made again, as the same one
 * operation: the charge of that commit is given back (a dry run counts it
 * as given back). Only while nothing holds on to what that commit made:
 * NORMAL, not shared, no copy from it running. A pending o (made by
 * nobody yet) is a plain commit.
 */
static int amend_locked(struct local *l, const struct owned *o)
{
	char day[16], today[16];
	sqlite3_stmt *st;

	if (o->pending)
		return 0;
	if (strcmp(o->state, "NORMAL"))
		return local_refuse(l, -EBUSY, "%s is %s: its info can no "
				    "longer be written anew", o->name,
				    o->state);
	if (o->shares || o->copies)
		return local_refuse(l, -EBUSY, "%s is shared or copied "
				    "already: its info can no longer be "
				    "written anew", o->name);
	local_day(o->created, day, sizeof(day));
	if (l->dry_run) {
		local_today(today, sizeof(today));
		if (!strcmp(day, today))
			l->credit = o->charged;
		return 0;
	}
	st = local_stmt(l, Q_REFUND);
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 2, o->charged, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, day, -1, SQLITE_TRANSIENT);
	return step_done(st);
}

/* Open the transaction of a commit or copy of row: begin_owned, and for
 * an amend, its charge given back. */
static int begin_commit(struct local *l, int64_t row, struct owned *o,
			const struct spec *spec)
{
	int rc = begin_owned(l, row, o, !spec->amend, spec->dry_run);

	if (rc || !spec->amend)
		return rc;
	rc = amend_locked(l, o);
	if (rc)
		local_tx_end(l, rc);
	return rc;
}

/* Set dst to s (when s is not empty); -EINVAL when it does not fit. */
static int set_text(char *dst, size_t size, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (!n)
		return 0;
	if (n >= size)
		return -EINVAL;
	memcpy(dst, s, n + 1);
	return 0;
}

/*
 * The download of an import, for the importer threads (import.c), with
 * the account (?1) and the Unix user that commit it.
 */
static int queue_import(struct local *l, int64_t row, const struct spec *spec)
{
	sqlite3_stmt *st = local_stmt(l, Q_INSERT_IMPORT);

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 2, row);
	sqlite3_bind_text(st, 3, spec->import_url, -1, SQLITE_STATIC);
	bind_opt(st, 4, spec->sha256);
	/* only a daemon of this account and Unix user may download it */
	sqlite3_bind_int64(st, 5, geteuid());
	return step_done(st);
}

/* The SOURCE (and, for an import, the state) of a new image. */
static int spec_source(const struct spec *spec, struct attrs *a)
{
	char buf[URL_MAX_BYTES + 1];
	int rc;

	if (spec->import_url) {
		/* local_commit() checked that it fits */
		url_redact(spec->import_url, buf, sizeof(buf));
		a->state = "IMPORTING";
		a->progress = 0;
		return source_format(a->source, sizeof(a->source),
				     SOURCE_IMPORT, buf, NULL);
	}
	if (!spec->instance) {
		/* a notional instance with the attributes asked for */
		rc = random_name("ins-", buf, sizeof(buf));
		if (rc)
			return rc;
	}
	return source_format(a->source, sizeof(a->source), SOURCE_INSTANCE,
			     spec->instance ? spec->instance : buf, NULL);
}

/* The attributes of a new image that spec asks for, over defaults a. */
static int spec_attrs(const struct spec *spec, struct attrs *a)
{
	int rc = set_text(a->os_name, sizeof(a->os_name), spec->os_name);

	if (!rc)
		rc = set_text(a->os_type, sizeof(a->os_type), spec->os_type);
	if (!rc)
		rc = set_text(a->platform, sizeof(a->platform),
			      spec->platform);
	if (!rc)
		rc = set_text(a->arch, sizeof(a->arch), spec->arch);
	if (spec->arch && spec->arch[0])
		a->bits = strcmp(spec->arch, "i386") ? 64 : 32;
	if (!rc)
		rc = set_text(a->description, sizeof(a->description),
			      spec->description);
	return rc ? rc : spec_source(spec, a);
}

/* An import's URL as the catalog takes it: -EINVAL otherwise. */
static int url_ok(struct local *l, const char *url)
{
	l->why[0] = 0;
	if (url && (local_url_check(l, url) || strlen(url) > URL_MAX_BYTES))
		return local_refuse(l, -EINVAL, "IMPORT_URL is an http or "
				    "https URL of at most %d bytes, or a file "
				    "URL under a directory of -o import_dirs",
				    URL_MAX_BYTES);
	return 0;
}

/* Make pending row o what spec says, in the open transaction. */
static int commit_locked(struct local *l, int64_t row, const struct owned *o,
			 const struct spec *spec)
{
	struct attrs a = { 0 };
	sqlite3_stmt *st = local_stmt(l, Q_DEFAULTS);
	int rc = 0;

	if (!st)
		return -EIO;
	/* an import says what it is; anything else starts from defaults */
	sqlite3_bind_text(st, 2, o->region, -1, SQLITE_STATIC);
	if (!spec->import_url && sqlite3_step(st) == SQLITE_ROW)
		rc = attrs_from_row(&a, st, 0);
	sqlite3_reset(st);
	if (!rc)
		rc = spec_attrs(spec, &a);
	if (!rc)
		rc = local_charge(l, o->region);
	if (rc || spec->dry_run)
		return rc;
	rc = make_image(l, row, o, &a);
	if (!rc && spec->import_url)
		rc = queue_import(l, row, spec);
	return rc;
}

int local_commit(struct backend *b, int64_t row, const struct spec *spec)
{
	struct local *l = to_local(b);
	struct owned o;
	int rc = url_ok(l, spec->import_url);

	if (!rc)
		rc = begin_commit(l, row, &o, spec);
	if (rc)
		return rc;
	rc = local_tx_end(l, commit_locked(l, row, &o, spec));
	if (!rc && spec->import_url && !spec->dry_run)
		local_import_kick(l);
	return rc;
}

int local_uncommit(struct backend *b, int64_t row)
{
	struct local *l = to_local(b);
	struct owned o;
	sqlite3_stmt *st;
	int rc = begin_owned(l, row, &o, 0, 0);

	if (rc)
		return rc;
	rc = amend_locked(l, &o);
	if (rc || o.pending)
		return local_tx_end(l, rc);
	st = local_stmt(l, Q_UNMAKE);
	if (!st)
		return local_tx_end(l, -EIO);
	sqlite3_bind_int64(st, 2, row);
	sqlite3_bind_int64(st, 3, time(NULL));
	rc = step_done(st);
	if (!rc)
		rc = local_log_change(l, row, o.region, l->b.account, o.name,
				      o.name, NULL);
	return local_tx_end(l, rc);
}

/* What a copy takes from its source image. */
struct source {
	char region[32];
	char state[16];
	int mine;
	int copy;		/* its region supports duplication */
};

/*
 * The image source_id, as a copy's source: -EINVAL when there is none that
 * the account can see (DESIGN.md section 4: a missing source).
 */
static int copy_source(struct local *l, const char *source_id,
		       struct source *src, struct attrs *a)
{
	sqlite3_stmt *st = local_stmt(l, Q_SOURCE);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 2, source_id, -1, SQLITE_STATIC);
	rc = local_step_one(st);
	if (rc) {
		sqlite3_reset(st);
		if (rc != -ENOENT)
			return rc;
		return local_refuse(l, -EINVAL, "no image I can see has the "
				    "ID %s: a copy needs its source",
				    source_id);
	}
	rc = local_copy_text(src->region, sizeof(src->region), st, 0);
	src->mine = sqlite3_column_int(st, 1);
	if (!rc)
		rc = local_copy_text(src->state, sizeof(src->state), st, 2);
	if (!rc)
		rc = attrs_from_row(a, st, 3);
	if (!rc)
		rc = local_copy_text(a->description, sizeof(a->description),
				     st, 9);
	if (!rc)
		rc = local_copy_text(a->price, sizeof(a->price), st, 10);
	src->copy = sqlite3_column_int(st, 11);
	sqlite3_reset(st);
	return rc;
}

/*
 * The checks of a copy, in section 4's order: a missing source (EINVAL),
 * a region that cannot copy (EOPNOTSUPP), not my image (EPERM), not
 * NORMAL (EBUSY), then the daily limit of the source region (EAGAIN).
 */
/* -EOPNOTSUPP: region cannot take part in a copy; say which can. */
static int no_copies(struct local *l, const char *region)
{
	sqlite3_stmt *st = local_stmt(l, Q_COPY_REGIONS);
	char list[256] = "";

	if (st && sqlite3_step(st) == SQLITE_ROW)
		local_copy_text(list, sizeof(list), st, 0);
	if (st)
		sqlite3_reset(st);
	return local_refuse(l, -EOPNOTSUPP, "%s does not copy images; only "
			    "%s do", region, list);
}

static int copy_locked(struct local *l, int64_t row, const struct owned *o,
		       const char *source_id, const struct spec *spec)
{
	struct attrs a = { 0 };
	struct source src;
	int64_t copy_to;
	sqlite3_stmt *st;
	int found, rc;

	rc = copy_source(l, source_id, &src, &a);
	if (rc)
		return rc;
	st = local_stmt(l, Q_REGION_COPY);
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 2, o->region, -1, SQLITE_STATIC);
	rc = step_int(st, &copy_to, &found);
	if (!rc && (!src.copy || !copy_to))
		rc = no_copies(l, src.copy ? o->region : src.region);
	else if (!rc && !src.mine)
		rc = local_refuse(l, -EPERM, "%s is not one of my custom "
				  "images: only those can be copied",
				  source_id);
	else if (!rc && strcmp(src.state, "NORMAL"))
		rc = local_refuse(l, -EBUSY, "%s is %s: it can be copied once "
				  "it is NORMAL", source_id, src.state);
	if (!rc)
		rc = set_text(a.description, sizeof(a.description),
			      spec->description);
	if (!rc)
		rc = source_format(a.source, sizeof(a.source), SOURCE_COPY,
				   source_id, src.region);
	if (!rc)
		rc = local_charge(l, src.region);
	if (!rc && !spec->dry_run)
		rc = make_image(l, row, o, &a);
	return rc;
}

int local_copy(struct backend *b, int64_t row, const char *source_id,
	       const struct spec *spec)
{
	struct local *l = to_local(b);
	struct owned o;
	int rc = begin_commit(l, row, &o, spec);

	if (rc)
		return rc;
	return local_tx_end(l, copy_locked(l, row, &o, source_id, spec));
}

/*
 * The service side's make: a new image of mine in region, its pending row
 * and its commit (or copy) in one transaction; *out as it is then. A dry
 * run makes the same checks in a read transaction.
 */
int local_make(struct backend *b, const char *region, const char *name,
	       const struct spec *spec, struct image *out)
{
	struct local *l = to_local(b);
	struct owned o = { 0 };
	int64_t row = 0;
	int rc = url_ok(l, spec->import_url);

	if (!rc)
		rc = spec->dry_run ? local_tx_begin_read(l) :
		     local_tx_begin(l);
	if (rc)
		return rc;
	rc = pending_locked(l, region, name, spec->dry_run ? NULL : &row);
	if (!rc && spec->dry_run) {
		snprintf(o.region, sizeof(o.region), "%s", region);
		snprintf(o.name, sizeof(o.name), "%s", name);
		o.mine = o.pending = 1;
	} else if (!rc) {
		rc = owned(l, row, &o);
	}
	if (!rc)
		rc = spec->copy_of ? copy_locked(l, row, &o, spec->copy_of,
						 spec) :
		     commit_locked(l, row, &o, spec);
	if (!rc && !spec->dry_run)
		rc = local_get(b, row, out);
	rc = local_tx_end(l, rc);
	if (!rc && spec->import_url && !spec->dry_run)
		local_import_kick(l);
	return rc;
}

int local_check_ops(struct backend *b, const char *region)
{
	struct local *l = to_local(b);

	l->why[0] = 0;
	return ops_left(l, region);
}

/* Whether s (NULL: unchanged) is other than the value now (NULL: none). */
static int differs(const char *s, const char *now)
{
	return s && strcmp(s, now ? now : "");
}

/* Drop my pending image row, which holds name in region: 0 when gone. */
static int drop_pending(struct local *l, int64_t row, const char *region,
			const char *name)
{
	struct owned p;
	sqlite3_stmt *st;
	int rc = owned(l, row, &p);

	if (rc == -ENOENT)
		return 0;	/* gone already: the name is free */
	if (rc)
		return rc;
	if (!p.pending)
		return -ENOTEMPTY;	/* committed meanwhile */
	if (strcmp(p.region, region) || strcmp(p.name, name))
		return -EINVAL;
	st = local_stmt(l, Q_DELETE);
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 2, row);
	rc = step_done(st);
	if (!rc)
		rc = local_log_change(l, row, region, l->b.account, name, NULL,
				      NULL);
	return rc;
}

/*
 * A renamed image's links are new links: each of its shares gets a new
 * row, so that a link's row (its inode) never stands for two targets.
 */
static int relink(struct local *l, int64_t row)
{
	sqlite3_stmt *st = local_stmt(l, Q_RELINK);

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 2, row);
	return step_done(st);
}

/* An edit of my image row: see struct backend_ops' edit. */
int local_edit(struct backend *b, int64_t row, const char *from,
	       const char *name, const char *description, int64_t replace)
{
	struct local *l = to_local(b);
	struct owned o;
	sqlite3_stmt *st;
	int rc = begin_owned(l, row, &o, 0, 0);

	if (rc)
		return rc;
	if (!differs(name, o.name))
		name = NULL;
	if (!differs(description, o.description))
		description = NULL;
	if (!name && !description)
		goto out;	/* no change: nothing charged */
	if (from && strcmp(from, o.name)) {
		rc = local_refuse(l, -ENOENT, "%s is called %s now: renamed "
				  "meanwhile", from, o.name);
		goto out;
	}
	if (name && replace)
		rc = drop_pending(l, replace, o.region, name);
	if (!rc && name)
		rc = name_free(l, o.region, name, row);
	if (!rc && o.pending && description)
		rc = local_refuse(l, -EINVAL, "%s is pending: write its info "
				  "to make it an image first", o.name);
	if (!rc && !o.pending)
		rc = local_charge(l, o.region);	/* once for both */
	if (rc)
		goto out;
	st = local_stmt(l, Q_EDIT);
	if (!st) {
		rc = -EIO;
		goto out;
	}
	sqlite3_bind_int64(st, 2, row);
	bind_opt(st, 3, name);
	bind_opt(st, 4, description);
	sqlite3_bind_int(st, 5, !!description);
	sqlite3_bind_int64(st, 6, time(NULL));
	rc = step_done(st);
	if (!rc && name && o.shares)
		rc = relink(l, row);
	if (!rc)
		rc = local_log_change(l, row, o.region, l->b.account, o.name,
				      name ? name : o.name, NULL);
out:
	return local_tx_end(l, rc);
}

/* -EBUSY: my image is shared; name an account and its link. */
static int shared_busy(struct local *l, int64_t row, const struct owned *o)
{
	char peer[32] = "";
	sqlite3_stmt *st;
	int n = 0;

	if (!local_by_row(l, Q_FIRST_SHARE, row, &st)) {
		local_copy_text(peer, sizeof(peer), st, 0);
		n = sqlite3_column_int(st, 1);
		sqlite3_reset(st);
	}
	if (n > 1)
		return local_refuse(l, -EBUSY, "%s is shared with %d accounts: "
				    "remove ../shared/%s/%s and the other "
				    "links to it first", o->name, n, peer,
				    o->name);
	return local_refuse(l, -EBUSY, "%s is shared with %s: remove "
			    "../shared/%s/%s first", o->name, peer, peer,
			    o->name);
}

/* What refuses the delete of my image o: -EBUSY, the daily limit, or 0. */
static int remove_refused(struct local *l, int64_t row,
			  const struct owned *o)
{
	if (o->pending)
		return 0;
	if (o->shares)
		return shared_busy(l, row, o);
	if (o->copies)
		return local_refuse(l, -EBUSY, "a copy of %s is still being "
				    "made: it can be deleted once the copy is "
				    "NORMAL", o->name);
	if (strcmp(o->state, "NORMAL") && strcmp(o->state, "IMPORTFAILED"))
		return local_refuse(l, -EBUSY, "%s is %s: it can be deleted "
				    "once it is NORMAL or IMPORTFAILED",
				    o->name, o->state);
	return ops_left(l, o->region);
}

/* The checks of local_remove in a read transaction: no write lock. */
int local_check_remove(struct backend *b, int64_t row)
{
	struct local *l = to_local(b);
	struct owned o;
	int rc = begin_owned(l, row, &o, 0, 1);

	if (rc)
		return rc;
	return local_tx_end(l, remove_refused(l, row, &o));
}

int local_remove(struct backend *b, int64_t row)
{
	struct local *l = to_local(b);
	struct owned o;
	sqlite3_stmt *st;
	int rc = begin_owned(l, row, &o, 0, 0);

	if (rc)
		return rc;
	rc = remove_refused(l, row, &o);
	if (!rc && !o.pending)
		rc = local_charge(l, o.region);
	if (rc)
		goto out;
	st = local_stmt(l, Q_DELETE);
	if (!st) {
		rc = -EIO;
		goto out;
	}
	sqlite3_bind_int64(st, 2, row);
	rc = step_done(st);
	if (!rc)
		rc = local_log_change(l, row, o.region, l->b.account, o.name,
				      NULL, NULL);
out:
	return local_tx_end(l, rc);
}

/* No sharing with yourself: -EINVAL when peer is the mounting account. */
static int not_me(struct local *l, const char *peer)
{
	l->why[0] = 0;
	if (strcmp(peer, l->b.account))
		return 0;
	return local_refuse(l, -EINVAL, "%s is my own account: images are "
			    "shared with other accounts", peer);
}

/* Run q with ?2 = row, ?3 = peer. */
static int share_step(struct local *l, enum query q, int64_t row,
		      const char *peer, int64_t *value, int *found)
{
	sqlite3_stmt *st = local_stmt(l, q);

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 2, row);
	sqlite3_bind_text(st, 3, peer, -1, SQLITE_STATIC);
	return step_int(st, value, found);
}

int local_share(struct backend *b, int64_t row, const char *peer)
{
	struct local *l = to_local(b);
	struct owned o;
	int64_t v;
	int found, rc;

	rc = not_me(l, peer);
	if (!rc)
		rc = begin_owned(l, row, &o, 0, 0);
	if (rc)
		return rc;
	if (o.pending)
		rc = local_refuse(l, -EPERM, "%s is pending: write its info "
				  "to make it an image first", o.name);
	else if (strcmp(o.state, "NORMAL"))
		rc = local_refuse(l, -EBUSY, "%s is %s: it can be shared once "
				  "it is NORMAL", o.name, o.state);
	if (!rc)
		rc = share_step(l, Q_SHARE_EXISTS, row, peer, &v, &found);
	if (!rc && found)
		rc = local_refuse(l, -EEXIST, "%s is shared with %s already",
				  o.name, peer);
	if (!rc && o.shares >= setting(l, "max_share_accounts", 50))
		rc = local_refuse(l, -EMLINK, "%s is shared with %d accounts, "
				  "the most an image can be: stop sharing it "
				  "with one first", o.name, o.shares);
	if (!rc)
		rc = local_charge(l, o.region);
	if (!rc)
		rc = share_step(l, Q_INSERT_SHARE, row, peer, &v, &found);
	if (!rc)
		rc = local_log_change(l, row, o.region, b->account,
				      o.name, o.name, peer);
	return local_tx_end(l, rc);
}

int local_unshare(struct backend *b, int64_t row, const char *peer)
{
	struct local *l = to_local(b);
	struct owned o;
	int64_t v;
	int found, rc = begin_owned(l, row, &o, 0, 0);

	if (rc)
		return rc;
	rc = share_step(l, Q_SHARE_EXISTS, row, peer, &v, &found);
	if (!rc && !found)
		rc = local_refuse(l, -ENOENT, "%s is not shared with %s",
				  o.name, peer);
	if (!rc)
		rc = local_charge(l, o.region);
	if (!rc)
		rc = share_step(l, Q_DELETE_SHARE, row, peer, &v, &found);
	if (!rc)
		rc = local_log_change(l, row, o.region, b->account,
				      o.name, o.name, peer);
	return local_tx_end(l, rc);
}

/* Run q with ?2 = region, ?3 = peer. */
static int peer_step(struct local *l, enum query q, const char *region,
		     const char *peer, int64_t *value, int *found)
{
	sqlite3_stmt *st = local_stmt(l, q);

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 2, region, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, peer, -1, SQLITE_STATIC);
	return step_int(st, value, found);
}

int local_add_peer(struct backend *b, const char *region, const char *peer)
{
	struct local *l = to_local(b);
	int64_t v;
	int found, rc;

	rc = not_me(l, peer);
	if (!rc)
		rc = local_tx_begin(l);
	if (rc)
		return rc;
	rc = peer_step(l, Q_PEER_BUSY, region, peer, &v, &found);
	if (!rc && !v)
		rc = peer_step(l, Q_INSERT_PEER, region, peer, &v, &found);
	if (rc == -EEXIST || (!rc && v))
		rc = local_refuse(l, -EEXIST, "%s/shared/%s exists already",
				  region, peer);
	/* counted with the new one: an existing folder is EEXIST first */
	if (!rc)
		rc = peer_step(l, Q_PEER_COUNT, region, peer, &v, &found);
	if (!rc && v > setting(l, "max_peer_folders", 500))
		rc = local_refuse(l, -EMLINK, "%s: %lld peer folders, the most "
				  "an account may make in a region: rmdir one "
				  "first", region, (long long)v - 1);
	if (!rc)
		rc = local_log_change(l, 0, region, b->account,
				      NULL, NULL, peer);
	return local_tx_end(l, rc);
}

int local_remove_peer(struct backend *b, const char *region, const char *peer)
{
	struct local *l = to_local(b);
	int64_t v;
	int found, rc = local_tx_begin(l);

	if (rc)
		return rc;
	rc = peer_step(l, Q_PEER_BUSY, region, peer, &v, &found);
	if (!rc && v)
		rc = local_refuse(l, -ENOTEMPTY, "%lld images are shared "
				  "between %s and me in %s: remove the links "
				  "first (%s takes back its own)",
				  (long long)v, peer, region, peer);
	if (!rc)
		rc = peer_step(l, Q_DELETE_PEER, region, peer, &v, &found);
	if (!rc && !sqlite3_changes(l->db))
		rc = -ENOENT;
	if (!rc)
		rc = local_log_change(l, 0, region, b->account,
				      NULL, NULL, peer);
	return local_tx_end(l, rc);
}
