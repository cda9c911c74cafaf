// SPDX-License-Identifier: GPL-2.0
/*
 * contract.c - the contract of backend.h, checked at the interface itself,
 * without FUSE (STYLE.md habit 9), against each way a mount can be made:
 *
 *	build/contract local DB			the local catalog
 *	build/contract cache-local DB CACHE	the cache over the local catalog
 *	build/contract tencentcloud URL CACHE	the cache over the cloud client
 *						(keys: $TENCENTCLOUD_SECRET_*)
 *
 * DB is a new catalog (made with the seed); URL a stand-in of the cloud
 * (tests/tcserver.py) over such a catalog. tests/test_contract.py runs the
 * three and checks what the stand-in was sent. Each case states one rule
 * and checks it by the errno of the call; a call that waits
 * (-BACKEND_WAIT) is made again when the backend wakes its caller, as
 * fs/ops.c does, and the waits are counted.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "../backend/backend.h"
#include "../mountopts/config.h"
#include "expect.h"

#define ME	"100000000001"
#define PEER	"100000000002"	/* shares ml-training-base with me */
#define OTHER	"100000000007"
#define GZ	"ap-guangzhou"
#define BJ	"ap-beijing"
#define DEADLINE_S 60.0		/* a waiting call gives up after this */

static struct backend *b;
static int cached;		/* the cache wraps the backend */
static int cloud;		/* ... and the backend is the cloud */
static int waits;		/* calls that returned -BACKEND_WAIT */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static unsigned int woken;

static void on_wake(void *ctx)
{
	(void)ctx;
	pthread_mutex_lock(&lock);
	woken++;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Sleep until a wake-up after seen, or 20 ms. */
static void nap(unsigned int seen)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += 20000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&lock);
	if (woken == seen)
		pthread_cond_timedwait(&cond, &lock, &ts);
	pthread_mutex_unlock(&lock);
}

static unsigned int seen_now(void)
{
	unsigned int n;

	pthread_mutex_lock(&lock);
	n = woken;
	pthread_mutex_unlock(&lock);
	return n;
}

/* Make expr (a backend call) until it does not wait; its result. */
#define CALL(expr)							\
	({								\
		double until_ = now_s() + DEADLINE_S;			\
		int rc_;						\
		for (;;) {						\
			unsigned int seen_ = seen_now();		\
			rc_ = (expr);					\
			if (rc_ != -BACKEND_WAIT || now_s() > until_)	\
				break;					\
			waits++;					\
			nap(seen_);					\
		}							\
		rc_;							\
	})

/* --- reading the tree ----------------------------------------------------- */

struct found {
	const char *name;
	struct image img;
	int n;
	int pending;
};

static int count_cb(void *ctx, const struct image *img)
{
	struct found *f = ctx;

	f->n++;
	f->pending += img->pending;
	if (f->name && !strcmp(img->name, f->name))
		f->img = *img;
	return 0;
}

/* The images of a folder: how many, and the one called name. */
static struct found folder(const char *region, enum image_kind kind,
			   const char *peer, const char *name)
{
	struct folder f = { region, kind, peer };
	struct found out = { .name = name };

	EXPECT_EQ_INT(CALL(b->ops->list(b, &f, 0, count_cb, &out)), 0);
	return out;
}

static int peer_found(void *ctx, const struct peer *p)
{
	const char *uin = ((const char **)ctx)[0];

	if (!strcmp(p->uin, uin))
		((const char **)ctx)[1] = "found";
	return 0;
}

static int has_peer(const char *region, const char *uin)
{
	const char *ctx[2] = { uin, NULL };

	EXPECT_EQ_INT(CALL(b->ops->peers(b, region, -1, peer_found, ctx)), 0);
	return ctx[1] != NULL;
}

static int share_count(void *ctx, const struct share *s)
{
	(void)s;
	++*(int *)ctx;
	return 0;
}

static int share_keep(void *ctx, const struct share *s)
{
	*(struct share *)ctx = *s;
	return 1;
}

/* The one share of region with peer (row 0: none). */
static struct share share_with(const char *region, const char *peer)
{
	struct share s = { 0 };

	EXPECT_EQ_INT(CALL(b->ops->shares(b, region, peer, 0, share_keep,
					  &s)), 0);
	return s;
}

static int shares_with(const char *region, const char *peer)
{
	int n = 0;

	EXPECT_EQ_INT(CALL(b->ops->shares(b, region, peer, 0, share_count, &n)),
		      0);
	return n;
}

/* The operations charged in region today, as usage() says. */
static int ops_today(const char *region)
{
	struct usage u;

	EXPECT_EQ_INT(CALL(b->ops->usage(b, region, &u)), 0);
	return u.ops;
}

static int64_t pending(const char *region, const char *name)
{
	int64_t row = 0;

	EXPECT_EQ_INT(CALL(b->ops->create_pending(b, region, name, &row)), 0);
	return row;
}

/* --- the cases ------------------------------------------------------------ */

/* The regions, each once, in a stable order. */
static void test_regions(void)
{
	struct region r[64];
	int n = 0;

	EXPECT_EQ_INT(CALL(b->ops->regions(b, r, 64, &n)), 0);
	EXPECT_EQ_INT(n, 16);
	EXPECT_EQ_STR(r[0].name, GZ);
	EXPECT_EQ_STR(r[3].name, BJ);
}

/* The folders of the seed: mine, public, shared with me by PEER. */
static void test_reads(void)
{
	struct found f = folder(GZ, KIND_CUSTOM, NULL, "build-agent");
	struct image img;
	int n = 0;

	EXPECT_EQ_INT(f.n, 2);
	EXPECT_EQ_STR(f.img.id, "img-sfcvjocu");
	EXPECT_EQ_INT(f.img.kind, KIND_CUSTOM);
	EXPECT_EQ_STR(f.img.state, "NORMAL");
	EXPECT_EQ_STR(f.img.owner, ME);
	EXPECT_EQ_INT(CALL(b->ops->get(b, f.img.row, &img)), 0);
	EXPECT_EQ_STR(img.name, "build-agent");
	EXPECT_EQ_STR(img.shared_with, "");
	EXPECT_EQ_INT(CALL(b->ops->count(b, &(struct folder){ GZ,
					  KIND_CUSTOM, NULL }, &n)), 0);
	EXPECT_EQ_INT(n, 2);
	f = folder(GZ, KIND_PUBLIC, NULL, "Ubuntu Server 22.04 LTS 64bit");
	EXPECT(f.n > 20);
	EXPECT_EQ_STR(f.img.arch, "x86_64");
	EXPECT_EQ_STR(f.img.owner, "tencentcloud");
	EXPECT(has_peer(GZ, PEER));
	f = folder(GZ, KIND_SHARED, PEER, "ml-training-base");
	EXPECT_EQ_INT(f.n, 1);
	EXPECT_EQ_INT(f.img.kind, KIND_SHARED);
	EXPECT_EQ_STR(f.img.owner, PEER);
	EXPECT_EQ_INT(CALL(b->ops->get(b, 1 << 30, &img)), -ENOENT);
}

/* A pending image: a name in custom/, nothing asked of the service. */
static void test_pending(void)
{
	int64_t row = pending(GZ, "contract-pending"), again;
	struct image img;
	struct found f;

	EXPECT(row > 0);
	EXPECT_EQ_INT(CALL(b->ops->create_pending(b, GZ, "contract-pending",
						  &again)), -EEXIST);
	EXPECT_EQ_INT(CALL(b->ops->get(b, row, &img)), 0);
	EXPECT(img.pending);
	EXPECT_EQ_STR(img.id, "");
	f = folder(GZ, KIND_CUSTOM, NULL, "contract-pending");
	EXPECT_EQ_INT(f.n, 3);
	EXPECT_EQ_INT(f.pending, 1);
	EXPECT_EQ_INT(CALL(b->ops->edit(b, row, "contract-pending",
					"contract-renamed", NULL, 0)), 0);
	EXPECT_EQ_INT(CALL(b->ops->get(b, row, &img)), 0);
	EXPECT_EQ_STR(img.name, "contract-renamed");
	/* the same name renamed again (another mount): it is gone */
	EXPECT_EQ_INT(CALL(b->ops->edit(b, row, "contract-pending",
					"contract-again", NULL, 0)), -ENOENT);
	EXPECT_EQ_INT(CALL(b->ops->get(b, row, &img)), 0);
	EXPECT_EQ_STR(img.name, "contract-renamed");
	EXPECT_EQ_INT(CALL(b->ops->edit(b, row, NULL, NULL, "x", 0)), -EINVAL);
	EXPECT_EQ_INT(CALL(b->ops->share(b, row, OTHER)), -EPERM);
	EXPECT_EQ_INT(CALL(b->ops->remove(b, row)), 0);
	EXPECT_EQ_INT(CALL(b->ops->get(b, row, &img)), -ENOENT);
	EXPECT_EQ_INT(folder(GZ, KIND_CUSTOM, NULL, NULL).n, 2);
}

/* The quota of a region counts pending images. */
static void test_quota(void)
{
	int64_t rows[64];
	struct usage u;
	int n = 0;

	EXPECT_EQ_INT(CALL(b->ops->usage(b, BJ, &u)), 0);
	EXPECT_EQ_INT(u.images, 0);
	EXPECT(u.images_max > 0 && u.images_max <= 64);
	EXPECT_EQ_INT(u.ops_max, cloud ? -1 : 1000);
	for (; n < u.images_max; n++) {
		char name[32];

		snprintf(name, sizeof(name), "slot-%d", n);
		rows[n] = pending(BJ, name);
	}
	EXPECT_EQ_INT(CALL(b->ops->create_pending(b, BJ, "one-too-many",
						  &rows[63])), -EDQUOT);
	EXPECT_EQ_INT(CALL(b->ops->usage(b, BJ, &u)), 0);
	EXPECT_EQ_INT(u.images, u.images_max);
	while (n--)
		EXPECT_EQ_INT(CALL(b->ops->remove(b, rows[n])), 0);
}

/* A commit makes the image, once; what it made reads at once. */
static void test_commit(void)
{
	struct spec dry = { .dry_run = 1, .instance = "ins-12345678" };
	struct spec spec = { .instance = "ins-12345678",
			     .description = "made by the contract" };
	struct spec nothing = { 0 };
	int64_t row = pending(GZ, "contract-made");
	struct image img;
	int before;

	EXPECT_EQ_INT(CALL(b->ops->commit(b, row, &dry)), 0);
	EXPECT_EQ_INT(CALL(b->ops->get(b, row, &img)), 0);
	EXPECT(img.pending);
	if (cloud)	/* the cloud needs an instance or a URL */
		EXPECT_EQ_INT(CALL(b->ops->commit(b, row, &nothing)), -EINVAL);
	EXPECT_EQ_INT(CALL(b->ops->commit(b, row, &spec)), 0);
	before = waits;
	EXPECT_EQ_INT(b->ops->get(b, row, &img), 0);	/* no wait */
	EXPECT_EQ_INT(waits, before);
	EXPECT(!img.pending);
	EXPECT_EQ_INT((int)strlen(img.id), 12);
	EXPECT_EQ_STR(img.source, "instance:ins-12345678");
	EXPECT_EQ_STR(img.description, "made by the contract");
	EXPECT_EQ_STR(img.shared_with, "");
	EXPECT_EQ_INT(CALL(b->ops->commit(b, row, &spec)), -EEXIST);
	/* a missing instance (the cloud's), a missing source: EINVAL, and
	 * the image stays pending */
	row = pending(GZ, "contract-refused");
	spec.instance = "ins-00000000";
	EXPECT_EQ_INT(CALL(b->ops->commit(b, row, &spec)),
		      cloud ? -EINVAL : 0);
	if (!cloud) {	/* the local backend's instances are notional */
		EXPECT_EQ_INT(CALL(b->ops->remove(b, row)), 0);
		row = pending(GZ, "contract-refused");
	}
	EXPECT_EQ_INT(CALL(b->ops->copy(b, row, "img-zzzzzzzz", &spec)),
		      -EINVAL);
	EXPECT_EQ_INT(CALL(b->ops->get(b, row, &img)), 0);
	EXPECT(img.pending);
	EXPECT_EQ_INT(CALL(b->ops->remove(b, row)), 0);
}

/*
 * A commit made again (spec's amend) is the same one operation: the first
 * commit's charge is given back in its transaction; uncommit makes it
 * pending again, its charge given back. The cache cannot make an image
 * again: EPERM, and no uncommit.
 */
static void test_amend(void)
{
	struct spec first = { .instance = "ins-12345678" };
	struct spec again = { .amend = 1, .instance = "ins-87654321",
			      .description = "made again" };
	struct spec dry = again;
	int64_t row = pending(BJ, "contract-amended");
	struct usage u0, u;
	struct image img;

	dry.dry_run = 1;
	EXPECT_EQ_INT(CALL(b->ops->usage(b, BJ, &u0)), 0);
	EXPECT_EQ_INT(CALL(b->ops->commit(b, row, &first)), 0);
	if (cached) {
		EXPECT_EQ_INT(CALL(b->ops->commit(b, row, &again)), -EPERM);
		EXPECT(!b->ops->uncommit);
		EXPECT_EQ_INT(CALL(b->ops->remove(b, row)), 0);
		return;
	}
	EXPECT_EQ_INT(CALL(b->ops->commit(b, row, &dry)), 0);
	EXPECT_EQ_INT(CALL(b->ops->commit(b, row, &again)), 0);
	EXPECT_EQ_INT(CALL(b->ops->get(b, row, &img)), 0);
	EXPECT(!img.pending);
	EXPECT_EQ_STR(img.source, "instance:ins-87654321");
	EXPECT_EQ_STR(img.description, "made again");
	EXPECT_EQ_INT(CALL(b->ops->usage(b, BJ, &u)), 0);
	EXPECT_EQ_INT(u.ops, u0.ops + 1);
	EXPECT_EQ_INT(CALL(b->ops->uncommit(b, row)), 0);
	EXPECT_EQ_INT(CALL(b->ops->get(b, row, &img)), 0);
	EXPECT(img.pending);
	EXPECT_EQ_STR(img.id, "");
	EXPECT_EQ_INT(CALL(b->ops->usage(b, BJ, &u)), 0);
	EXPECT_EQ_INT(u.ops, u0.ops);
	EXPECT_EQ_INT(CALL(b->ops->uncommit(b, row)), 0);	/* pending */
	EXPECT_EQ_INT(CALL(b->ops->remove(b, row)), 0);
}

/* Rename, describe, share: each applied, each read back at once. */
static void test_changes(void)
{
	struct found f = folder(GZ, KIND_CUSTOM, NULL, "contract-made");
	int64_t row = f.img.row;
	char region[32], peer[32];
	struct share link, now;
	struct image img;
	int before;

	EXPECT(row > 0);
	EXPECT_EQ_INT(CALL(b->ops->edit(b, row, "contract-made",
					"contract-moved", NULL, 0)), 0);
	EXPECT_EQ_INT(folder(GZ, KIND_CUSTOM, NULL, "contract-made").img.row,
		      0);
	EXPECT_EQ_INT(folder(GZ, KIND_CUSTOM, NULL,
			     "contract-moved").img.row, row);
	/*
	 * Two mounts rename contract-made at once: the one that comes second
	 * renames a name that is gone (ENOENT), and changes nothing; one
	 * that asks for the name it has now is no change.
	 */
	before = ops_today(GZ);
	EXPECT_EQ_INT(CALL(b->ops->edit(b, row, "contract-made",
					"contract-second", NULL, 0)), -ENOENT);
	EXPECT_EQ_INT(CALL(b->ops->get(b, row, &img)), 0);
	EXPECT_EQ_STR(img.name, "contract-moved");
	EXPECT_EQ_INT(folder(GZ, KIND_CUSTOM, NULL,
			     "contract-second").img.row, 0);
	EXPECT_EQ_INT(CALL(b->ops->edit(b, row, "contract-made",
					"contract-moved", NULL, 0)), 0);
	EXPECT_EQ_INT(ops_today(GZ), before);
	EXPECT_EQ_INT(CALL(b->ops->edit(b, row, "contract-moved",
					"build-agent", NULL, 0)), -EEXIST);
	EXPECT_EQ_INT(CALL(b->ops->edit(b, row, NULL, NULL, "described",
					0)), 0);
	EXPECT_EQ_INT(CALL(b->ops->get(b, row, &img)), 0);
	EXPECT_EQ_STR(img.description, "described");
	/* both in one edit; the same again is no change; "" clears */
	EXPECT_EQ_INT(CALL(b->ops->edit(b, row, NULL, "contract-edited",
					"both", 0)), 0);
	EXPECT_EQ_INT(CALL(b->ops->get(b, row, &img)), 0);
	EXPECT_EQ_STR(img.name, "contract-edited");
	EXPECT_EQ_STR(img.description, "both");
	EXPECT_EQ_INT(CALL(b->ops->edit(b, row, NULL, "contract-edited",
					"both", 0)), 0);
	EXPECT_EQ_INT(CALL(b->ops->edit(b, row, NULL, "contract-moved", "",
					0)), 0);
	EXPECT_EQ_INT(CALL(b->ops->get(b, row, &img)), 0);
	EXPECT_EQ_STR(img.name, "contract-moved");
	EXPECT_EQ_STR(img.description, "");

	EXPECT_EQ_INT(CALL(b->ops->share(b, row, ME)), -EINVAL);
	EXPECT_EQ_INT(CALL(b->ops->share(b, row, OTHER)), 0);
	EXPECT_EQ_INT(CALL(b->ops->get(b, row, &img)), 0);
	EXPECT_EQ_STR(img.shared_with, OTHER);
	EXPECT_EQ_INT(shares_with(GZ, OTHER), 1);
	EXPECT(has_peer(GZ, OTHER));
	EXPECT_EQ_INT(CALL(b->ops->share(b, row, OTHER)), -EEXIST);
	/* a rename makes new links: a share's row (a link's inode) never
	 * stands for two names */
	link = share_with(GZ, OTHER);
	EXPECT_EQ_INT(link.image, row);
	EXPECT_EQ_INT(CALL(b->ops->edit(b, row, "contract-moved",
					"contract-shared", NULL, 0)), 0);
	EXPECT_EQ_INT(CALL(b->ops->get(b, row, &img)), 0);
	EXPECT_EQ_STR(img.shared_with, OTHER);
	now = share_with(GZ, OTHER);
	EXPECT_EQ_INT(now.image, row);
	EXPECT_EQ_STR(now.name, "contract-shared");
	EXPECT(now.row != link.row);
	EXPECT_EQ_INT(CALL(b->ops->get_share(b, link.row, region,
					     sizeof(region), peer,
					     sizeof(peer), &now)), -ENOENT);
	EXPECT_EQ_INT(CALL(b->ops->edit(b, row, "contract-shared",
					"contract-moved", NULL, 0)), 0);
	EXPECT_EQ_INT(CALL(b->ops->remove(b, row)), -EBUSY);
	EXPECT_EQ_INT(CALL(b->ops->remove_peer(b, GZ, OTHER)), -ENOTEMPTY);
	EXPECT_EQ_INT(CALL(b->ops->unshare(b, row, OTHER)), 0);
	EXPECT_EQ_INT(CALL(b->ops->get(b, row, &img)), 0);
	EXPECT_EQ_STR(img.shared_with, "");
	EXPECT_EQ_INT(shares_with(GZ, OTHER), 0);
}

/* Peer folders are the mount's own: no operation. */
static void test_peers(void)
{
	EXPECT_EQ_INT(CALL(b->ops->add_peer(b, GZ, ME)), -EINVAL);
	EXPECT_EQ_INT(CALL(b->ops->add_peer(b, GZ, "100000000009")), 0);
	EXPECT(has_peer(GZ, "100000000009"));
	EXPECT_EQ_INT(CALL(b->ops->add_peer(b, GZ, "100000000009")),
		      -EEXIST);
	EXPECT_EQ_INT(CALL(b->ops->remove_peer(b, GZ, "100000000009")), 0);
	EXPECT(!has_peer(GZ, "100000000009"));
	EXPECT_EQ_INT(CALL(b->ops->remove_peer(b, GZ, "100000000009")),
		      -ENOENT);
	EXPECT_EQ_INT(CALL(b->ops->remove_peer(b, GZ, PEER)), -ENOTEMPTY);
}

/* A copy to another region; then the deletes. */
static void test_copy_and_delete(void)
{
	struct found f = folder(GZ, KIND_CUSTOM, NULL, "contract-moved");
	struct spec spec = { .description = f.img.description };
	int64_t row = pending(BJ, "contract-copy");
	struct image img;
	char source[64];

	EXPECT_EQ_INT(CALL(b->ops->copy(b, row, f.img.id, &spec)), 0);
	EXPECT_EQ_INT(CALL(b->ops->get(b, row, &img)), 0);
	EXPECT(!img.pending);
	snprintf(source, sizeof(source), "copy:%s@%s", f.img.id, GZ);
	EXPECT_EQ_STR(img.source, source);
	EXPECT_EQ_STR(img.region, BJ);
	EXPECT(strcmp(img.id, f.img.id));
	/* another account's image is not mine to change */
	f = folder(GZ, KIND_SHARED, PEER, "ml-training-base");
	EXPECT_EQ_INT(CALL(b->ops->edit(b, f.img.row, f.img.name,
					"mine-now", NULL, 0)), -EPERM);
	EXPECT_EQ_INT(CALL(b->ops->remove(b, f.img.row)), -EPERM);
	f = folder(GZ, KIND_PUBLIC, NULL, "Ubuntu Server 22.04 LTS 64bit");
	EXPECT_EQ_INT(CALL(b->ops->remove(b, f.img.row)), -EPERM);
	/* a check of a delete changes nothing; a delete takes the image
	 * and its directory */
	EXPECT_EQ_INT(CALL(b->ops->check_remove(b, f.img.row)), -EPERM);
	EXPECT_EQ_INT(CALL(b->ops->check_remove(b, row)), 0);
	EXPECT_EQ_INT(CALL(b->ops->get(b, row, &img)), 0);
	EXPECT(!img.pending);
	EXPECT_EQ_INT(CALL(b->ops->remove(b, row)), 0);
	EXPECT_EQ_INT(CALL(b->ops->get(b, row, &img)), -ENOENT);
	/* mv onto my pending image: it goes in the same change */
	f = folder(GZ, KIND_CUSTOM, NULL, "contract-moved");
	row = pending(GZ, "contract-target");
	EXPECT_EQ_INT(CALL(b->ops->edit(b, f.img.row, "contract-moved",
					"contract-target", NULL, row)), 0);
	EXPECT_EQ_INT(CALL(b->ops->get(b, row, &img)), -ENOENT);
	EXPECT_EQ_INT(CALL(b->ops->get(b, f.img.row, &img)), 0);
	EXPECT_EQ_STR(img.name, "contract-target");
	EXPECT_EQ_INT(CALL(b->ops->remove(b, f.img.row)), 0);
	EXPECT_EQ_INT(CALL(b->ops->get(b, f.img.row, &img)), -ENOENT);
	EXPECT_EQ_INT(folder(GZ, KIND_CUSTOM, NULL, NULL).n, 2);
}

/* --- opening the backend -------------------------------------------------- */

/* A local catalog with room for the cases' operations today. */
static void roomy(const char *db)
{
	sqlite3 *h;

	EXPECT_EQ_INT(sqlite3_open(db, &h), SQLITE_OK);
	EXPECT_EQ_INT(sqlite3_exec(h, "UPDATE settings SET value = 1000 WHERE "
				   "key = 'max_daily_ops'", NULL, NULL, NULL),
		      SQLITE_OK);
	sqlite3_close(h);
}

static int open_backend(int argc, char **argv)
{
	struct config cfg = {
		.account = ME,
		.cache_ttl = 60,
		.api_timeout = 10,
		.import_timeout = 30,
	};
	struct backend *inner;
	int rc;

	if (argc != 3 && argc != 4)
		return -EINVAL;
	if (!strcmp(argv[1], "tencentcloud")) {
		cfg.endpoint = argv[2];
		cached = cloud = 1;
		rc = tencent_open(&cfg, &inner);
	} else {
		cfg.db = argv[2];
		cached = !strcmp(argv[1], "cache-local");
		rc = local_open(&cfg, &inner);
		if (!rc)
			roomy(argv[2]);
	}
	if (rc || !cached) {
		b = inner;
		return rc;
	}
	if (argc != 4)
		return -EINVAL;
	return cache_open(inner, argv[3], cfg.cache_ttl, &b);
}

int main(int argc, char **argv)
{
	int rc = open_backend(argc, argv);

	if (rc) {
		fprintf(stderr, "usage: %s local DB | cache-local DB CACHE | "
			"tencentcloud URL CACHE: %s\n", argv[0], strerror(-rc));
		return 2;
	}
	b->wake = on_wake;
	b->wake_ctx = NULL;
	test_regions();
	test_reads();
	test_pending();
	test_quota();
	test_commit();
	test_amend();
	test_changes();
	test_peers();
	test_copy_and_delete();
	b->ops->close(b);
	printf("%s: %d calls waited\n", argv[1], waits);
	EXPECT(cached ? waits > 0 : waits == 0);
	return expect_summary() ? 1 : 0;
}
