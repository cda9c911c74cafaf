// SPDX-License-Identifier: GPL-2.0
/*
 * service.c - the local catalog's service side (backend.h): the same
 * images and rules, by image id, for a backend that wraps this one
 * (backend/cache/). The wrapper calls from several threads at once, so each
 * call holds the catalog connection's lock; each change is one of the
 * transactions of rules.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "local.h"

static struct local *to_local(struct backend *b)
{
	return (struct local *)b;
}

/* The row of image id in region (or anywhere, region NULL); -ENOENT. */
static int row_of(struct local *l, const char *region, const char *id,
		  int64_t *row)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(l->db, "SELECT row FROM images WHERE id = ?1 "
				"AND (?2 IS NULL OR region = ?2)", -1, &st,
				NULL);
	if (rc != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, region, -1, SQLITE_STATIC);
	rc = local_step_one(st);
	if (!rc)
		*row = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc;
}

/* Hand over committed images only, as the service side shows them. */
struct pass {
	image_cb cb;
	void *ctx;
	int stopped;
};

static int pass_cb(void *ctx, const struct image *img)
{
	struct pass *p = ctx;
	struct image out;

	if (img->pending)
		return 0;
	out = *img;
	out.row = 0;
	out.dup = 0;
	out.shared_with[0] = 0;
	p->stopped = p->cb(p->ctx, &out);
	return p->stopped;
}

struct peers_of {
	struct local *l;
	const char *region;
	struct pass *pass;
	int rc;
};

/* The images one peer shares with me. */
static int peer_images_cb(void *ctx, const struct peer *peer)
{
	struct peers_of *c = ctx;
	struct folder f = { c->region, KIND_SHARED, peer->uin };

	c->rc = local_list(&c->l->b, &f, 0, pass_cb, c->pass);
	return c->rc || c->pass->stopped;
}

int local_svc_fetch(struct backend *b, const struct folder *f, image_cb cb,
		    void *ctx)
{
	struct local *l = to_local(b);
	struct pass p = { cb, ctx, 0 };
	struct peers_of c = { l, f->region, &p, 0 };
	int rc;

	pthread_mutex_lock(&l->service_lock);
	if (f->kind == KIND_SHARED && !f->peer) {
		rc = local_peers(b, f->region, -1, peer_images_cb, &c);
		if (!rc)
			rc = c.rc;
	} else {
		rc = local_list(b, f, 0, pass_cb, &p);
	}
	pthread_mutex_unlock(&l->service_lock);
	return rc;
}

int local_svc_fetch_ids(struct backend *b, const char *region,
			const char *const *ids, int n, image_cb cb, void *ctx)
{
	struct local *l = to_local(b);
	struct pass p = { cb, ctx, 0 };
	struct image img;
	int64_t row;
	int rc = 0;

	pthread_mutex_lock(&l->service_lock);
	for (int i = 0; i < n && !rc && !p.stopped; i++) {
		rc = row_of(l, region, ids[i], &row);
		if (!rc)
			rc = local_get(b, row, &img);
		if (!rc)
			pass_cb(&p, &img);
		if (rc == -ENOENT)
			rc = 0;		/* unknown ids are left out */
	}
	pthread_mutex_unlock(&l->service_lock);
	return rc;
}

int local_svc_fetch_shares(struct backend *b, const char *region,
			   const char *id, peer_cb cb, void *ctx)
{
	struct local *l = to_local(b);
	struct image img;
	int64_t row;
	int rc;

	pthread_mutex_lock(&l->service_lock);
	rc = row_of(l, region, id, &row);
	if (!rc)
		rc = local_get(b, row, &img);
	pthread_mutex_unlock(&l->service_lock);
	if (!rc && img.kind != KIND_CUSTOM)
		rc = -EPERM;
	for (const char *s = img.shared_with; !rc && *s;) {
		struct peer p = { .images = 0 };
		size_t len = strcspn(s, ",");

		if (len < sizeof(p.uin)) {
			memcpy(p.uin, s, len);
			p.uin[len] = 0;
			p.key = strtoll(p.uin, NULL, 10);
			if (cb(ctx, &p))
				break;
		}
		s += len + (s[len] == ',');
	}
	return rc;
}

int local_svc_quota(struct backend *b, const char *region, struct usage *u)
{
	struct local *l = to_local(b);
	int rc;

	pthread_mutex_lock(&l->service_lock);
	rc = local_usage_locked(l, region, u);
	pthread_mutex_unlock(&l->service_lock);
	return rc;
}

int local_svc_make(struct backend *b, const char *region, const char *name,
		   const struct spec *spec, struct image *out)
{
	struct local *l = to_local(b);
	int rc;

	pthread_mutex_lock(&l->service_lock);
	rc = local_make(b, region, name, spec, out);
	pthread_mutex_unlock(&l->service_lock);
	if (!rc) {
		out->row = 0;
		out->shared_with[0] = 0;
	}
	return rc;
}

enum verb { V_EDIT, V_DELETE, V_CHECK_DELETE, V_SHARE, V_UNSHARE };

/* Verb v on image id of region (t1, t2: its texts), as the service would. */
static int on_image(struct backend *b, const char *region, const char *id,
		    enum verb v, const char *t1, const char *t2)
{
	struct local *l = to_local(b);
	int64_t row;
	int rc;

	pthread_mutex_lock(&l->service_lock);
	rc = row_of(l, region, id, &row);
	if (!rc && v == V_EDIT)
		rc = local_edit(b, row, NULL, t1, t2, 0);
	else if (!rc && v == V_DELETE)
		rc = local_remove(b, row);
	else if (!rc && v == V_CHECK_DELETE)
		rc = local_check_remove(b, row);
	else if (!rc)
		rc = v == V_SHARE ? local_share(b, row, t1) :
		     local_unshare(b, row, t1);
	pthread_mutex_unlock(&l->service_lock);
	return rc;
}

int local_svc_modify(struct backend *b, const char *region, const char *id,
		     const char *name, const char *description)
{
	return on_image(b, region, id, V_EDIT, name, description);
}

int local_svc_delete(struct backend *b, const char *region, const char *id,
		     int dry_run)
{
	return on_image(b, region, id, dry_run ? V_CHECK_DELETE : V_DELETE,
			NULL, NULL);
}

int local_svc_permit(struct backend *b, const char *region, const char *id,
		     const char *peer, int share)
{
	return on_image(b, region, id, share ? V_SHARE : V_UNSHARE, peer,
			NULL);
}
