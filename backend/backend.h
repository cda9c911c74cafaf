/* SPDX-License-Identifier: GPL-2.0 */
/*
 * backend.h - the one interface between the filesystem and an image service.
 *
 * A backend is a struct backend_ops table plus a struct backend that is the
 * first member of each implementation (like the kernel's VFS operation
 * tables). fs/ includes only this header.
 *
 * Every call returns 0 or a negative errno. The rules of the image service
 * (quotas, daily operations, copy regions, sharing) live in the backend that
 * is the service: the local backend checks and applies each of them in one
 * SQLite transaction; with tencentcloud the cloud checks its own. An image
 * the account cannot see is, for every call, one that does not exist. Once
 * the local catalog file was deleted or replaced under the daemon, every
 * mutation is -EROFS (the reads go on).
 *
 * The table has two sides. The tree side (regions ... detail) is what fs/
 * calls: images by catalog row, pending images, peer folders, a change
 * feed. The service side (fetch ... abort) is what a backend that wraps
 * another one (backend/cache/, like sshfs's cache_wrap) calls on the one it
 * wraps: the service's own verbs, by image id, with no rows, no pending
 * images and no peer folders. The local backend implements both sides; the
 * tencentcloud backend only the service side, and is mounted as
 * cache(tencentcloud).
 */
#ifndef IMAGEFS_BACKEND_H
#define IMAGEFS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#define IMAGEFS_VERSION "0.1.0"

/* Limits of names and texts, in bytes where not said otherwise. */
#define NAME_MAX_CHARS	60	/* image name, in characters */
#define DESC_MAX_CHARS	256	/* description, in characters */
#define UTF8_MAX_BYTES	4	/* bytes of one character */
#define NAME_MAX_BYTES	(NAME_MAX_CHARS * UTF8_MAX_BYTES)
#define DESC_MAX_BYTES	(DESC_MAX_CHARS * UTF8_MAX_BYTES)
#define UIN_MAX_DIGITS	15	/* account numbers */
#define INFO_MAX_BYTES	65536	/* a written info text */
#define URL_MAX_BYTES	2048	/* an import's URL */
#define SHARES_MAX	500	/* accounts one image is shared with: the
				 * cloud's limit, above the local one */

/* What an image is, as the mounting account sees it. */
enum image_kind {
	KIND_PUBLIC,
	KIND_MARKET,
	KIND_CUSTOM,	/* my own image */
	KIND_SHARED,	/* another account's image shared with me */
	KIND_COUNT
};

/* The folder names of the kinds, in the order of enum image_kind. */
extern const char *const kind_names[KIND_COUNT];
/* The kind of a folder name (NULL or unknown: KIND_PUBLIC). */
enum image_kind kind_parse(const char *name);

struct region {
	int64_t row;		/* stable small number, 1.. */
	char name[32];		/* ap-guangzhou */
	char title[96];
	int mainland;
	int copy;		/* supports image duplication */
};

/*
 * One image with every attribute of the info file (DESIGN.md section 2).
 * Each text field holds its longest value whole: a backend answers
 * -EOVERFLOW rather than cut one.
 * backend/local/rows.c packs each field: a new one goes there too.
 */
struct image {
	int64_t row;		/* catalog row id: stable, the inode base */
	enum image_kind kind;
	int pending;		/* made by mkdir, not yet committed */
	int dup;		/* an earlier holder (by id) has this name:
				 * from list and find; get says 0 */
	char id[16];		/* img-xxxxxxxx, "" while pending */
	char name[NAME_MAX_BYTES + 1];
	char region[32];
	char owner[96];
	char os_name[128];
	char os_type[16];
	char platform[32];
	char arch[16];
	int bits;		/* 0 when unknown */
	int size_gb;		/* 0 when unknown */
	char state[16];
	int64_t progress;	/* percent (bytes when the size is unknown),
				 * -1 when none */
	int64_t created;	/* unix seconds */
	int64_t mtime;		/* last change, unix seconds */
	char description[DESC_MAX_BYTES + 1];
	char source[sizeof("import:") + URL_MAX_BYTES];
	char format[16];	/* imported: qcow2, vmdk, vhd or raw */
	char sha256[72];	/* imported: of the bytes, in hex */
	char provider[128];
	char price[64];
	/* custom: the accounts it is shared with, sorted, comma separated */
	char shared_with[SHARES_MAX * (UIN_MAX_DIGITS + 1)];
	char error[512];
};

/* A folder of images: public/, market/, custom/ or shared/<peer>/. */
struct folder {
	const char *region;
	enum image_kind kind;
	const char *peer;	/* KIND_SHARED: the account sharing with me */
};

/* An account that has a folder in <region>/shared/. */
struct peer {
	char uin[UIN_MAX_DIGITS + 1];
	int64_t key;		/* stable while mounted: the uin as a number */
	int images;		/* images it shares with me (subdirectories) */
	int64_t mtime;		/* the newest change between us, 0: none */
};

/*
 * A share I made: my image <row> shared with <peer>. Its link's target
 * names the image, so a rename (or an edit of the name) makes new links:
 * each share of the image gets a new row, in the same change, and a row
 * (a link's inode) never stands for two targets.
 */
struct share {
	int64_t row;		/* share id, stable while the image keeps
				 * its name */
	int64_t image;		/* the image's row */
	char name[NAME_MAX_BYTES + 1];	/* the image's name */
	int64_t mtime;		/* the image's last change, unix seconds */
};

/* Slots and operations of one region (df -i, user.imagefs.* xattrs). */
struct usage {
	int images;		/* custom images, pending ones included
				 * (quota(): the service's count, -1 when it
				 * has none) */
	int images_max;
	int ops;		/* operations charged today */
	int ops_max;		/* -1: the service has no daily limit */
	int shares_max;
	int copy;		/* the region supports image duplication */
};

/*
 * What a region holds, as the account sees it, from what the backend has
 * at hand: it never waits and never asks the cloud (usage may). Directory
 * times and df's figures.
 */
struct summary {
	int64_t mtime[KIND_COUNT];	/* the newest change of what each folder
					 * holds, unix seconds; 0: none known */
	int images;			/* my custom images, pending ones too */
	int images_max;
	int64_t disk_gb;		/* their disk sizes (SIZE_GB), summed */
};

/* What a pending image becomes when its info text is committed. */
struct spec {
	/* check every rule, change nothing: a read of the catalog, which
	 * takes no write lock (the local backend) */
	int dry_run;
	/*
	 * commit and copy: row is my image that a commit made just before
	 * (the caller's open file made it from its text so far, and goes on
	 * writing): make it again from this spec instead, as the same one
	 * operation, its charge given back in the same transaction. -EBUSY
	 * once anything holds on to it (shared, copied, not NORMAL); a
	 * backend that cannot make an image again answers -EPERM. A row
	 * still pending is committed as without amend.
	 */
	int amend;
	const char *description;	/* NULL: default */
	/* service side, make(): a copy of image copy_of (ID=), which is in
	 * region copy_region (NULL: the backend finds it) */
	const char *copy_of, *copy_region;
	const char *instance;		/* INSTANCE=ins-... */
	const char *import_url;		/* IMPORT_URL=... */
	const char *sha256;		/* what the import must hash to */
	/* the OS keys, each may be NULL */
	const char *os_name, *os_type, *platform, *arch;
};

/* A change another daemon must show: an image renamed, added, removed. */
struct change {
	int64_t seq;
	int64_t image;		/* row, 0 when only a folder changed */
	enum image_kind kind;	/* public/ or market/, else KIND_COUNT: a
				 * custom image, or one shared with me */
	const char *region;
	const char *owner;	/* the image's owner, or NULL */
	const char *old_name;	/* NULL when the image is new */
	const char *new_name;	/* NULL when the image is gone */
	const char *peer;	/* share changes: the other account */
};

/* Callbacks of the listing calls: return non-zero to stop early. */
typedef int (*image_cb)(void *ctx, const struct image *img);
typedef int (*peer_cb)(void *ctx, const struct peer *peer);
typedef int (*share_cb)(void *ctx, const struct share *share);
typedef int (*change_cb)(void *ctx, const struct change *change);

struct backend;

struct backend_ops {
	const char *name;
	void (*close)(struct backend *b);

	/* regions, in row order; *n is set to how many (at most max) */
	int (*regions)(struct backend *b, struct region *out, int max, int *n);
	/* the images of a folder with row > after, in row order */
	int (*list)(struct backend *b, const struct folder *f, int64_t after,
		    image_cb cb, void *ctx);
	/* the images of a folder named exactly name, first holder first */
	int (*find)(struct backend *b, const struct folder *f, const char *name,
		    image_cb cb, void *ctx);
	/* one image by row; -ENOENT when the account cannot see it */
	int (*get)(struct backend *b, int64_t row, struct image *out);
	/* how many images a folder holds */
	int (*count)(struct backend *b, const struct folder *f, int *n);
	/* the accounts with a folder in region/shared/, key > after */
	int (*peers)(struct backend *b, const char *region, int64_t after,
		     peer_cb cb, void *ctx);
	/* my images of region shared with peer, share row > after */
	int (*shares)(struct backend *b, const char *region, const char *peer,
		      int64_t after, share_cb cb, void *ctx);
	/* one share by row */
	int (*get_share)(struct backend *b, int64_t row, char *region,
			 size_t region_size, char *peer, size_t peer_size,
			 struct share *out);
	int (*usage)(struct backend *b, const char *region, struct usage *u);
	int (*summary)(struct backend *b, const char *region,
		       struct summary *s);

	/* mutations: each checks every rule and applies it atomically */
	int (*create_pending)(struct backend *b, const char *region,
			      const char *name, int64_t *row);
	int (*commit)(struct backend *b, int64_t row, const struct spec *spec);
	/* make pending row a copy of image source_id (spec: description) */
	int (*copy)(struct backend *b, int64_t row, const char *source_id,
		    const struct spec *spec);
	/*
	 * Optional (NULL: the service cannot): make my image row pending
	 * again, as a commit found it, that commit's charge given back in
	 * the same transaction: the caller's open file made it and then
	 * wrote a text that was refused. -EBUSY once anything holds on to
	 * it (as spec's amend); 0 for a row still pending.
	 */
	int (*uncommit)(struct backend *b, int64_t row);
	/* -EAGAIN when the daily limit of the image's region is reached */
	int (*check_ops)(struct backend *b, const char *region);
	/*
	 * An edit of my image row (pending or committed): its new name and
	 * description (NULL: unchanged; "" clears the description), applied
	 * together in one transaction and charged as one operation, or not
	 * at all; a pending image takes a name only (-EINVAL). What equals
	 * what the image has is no change: nothing changed, nothing charged,
	 * 0. from (mv): the name by which the caller found row; -ENOENT when
	 * it is no longer called that (renamed meanwhile, by another mount),
	 * checked where the edit is applied (NULL: not checked). replace: my
	 * pending image called name in the same folder (mv onto an empty
	 * directory), dropped in the same transaction, or 0.
	 */
	int (*edit)(struct backend *b, int64_t row, const char *from,
		    const char *name, const char *description, int64_t replace);
	/* delete my image and its directory: a committed one (every rule
	 * of a delete) or a pending one */
	int (*remove)(struct backend *b, int64_t row);
	/* what remove of a committed image would answer, changing nothing
	 * (local: a read, which takes no write lock; tencentcloud: the
	 * cloud's DryRun) */
	int (*check_remove)(struct backend *b, int64_t row);
	int (*share)(struct backend *b, int64_t row, const char *peer);
	int (*unshare)(struct backend *b, int64_t row, const char *peer);
	int (*add_peer)(struct backend *b, const char *region,
			const char *peer);
	int (*remove_peer)(struct backend *b, const char *region,
			   const char *peer);

	/*
	 * Changes made by other processes since *seq, oldest first; *seq is
	 * advanced. Safe to call from a thread other than the one that makes
	 * the calls above. *seq = -1 asks for the current position only.
	 */
	int (*changes)(struct backend *b, int64_t *seq, change_cb cb,
		       void *ctx);

	/*
	 * Optional: why the last call failed, in words for people (the rule
	 * it broke and what would make it pass, or the service's own error
	 * code and request id), or NULL when there is nothing to add to the
	 * errno. One line; valid until the next call. On the service side,
	 * of the last failed call of the calling thread.
	 */
	const char *(*detail)(struct backend *b);

	/*
	 * Optional (NULL: nothing to do): the FUSE thread is done with a
	 * request for now, answered or set aside to wait. A backend may keep
	 * something open from the first call of a request until then (the
	 * local backend: one read transaction for all the request's reads);
	 * one that has never seen this call keeps nothing open. A backend
	 * that makes a request's calls to another on the FUSE thread passes
	 * it on; one that calls the other's service side from its workers
	 * (the cache) does not.
	 */
	void (*request_end)(struct backend *b);

	/*
	 * The service side. Called from the wrapper's worker threads, several
	 * at once; each call may take as long as the network does (never
	 * -BACKEND_WAIT), until abort(). Images are named by id and region;
	 * they are handed over with row 0 and no shared_with.
	 */
	/* every image of a folder; KIND_SHARED with f->peer NULL: every
	 * image shared with me, each with its owner */
	int (*fetch)(struct backend *b, const struct folder *f, image_cb cb,
		     void *ctx);
	/* the images of region among ids (n of them; unknown ids are left
	 * out) */
	int (*fetch_ids)(struct backend *b, const char *region,
			 const char *const *ids, int n, image_cb cb,
			 void *ctx);
	/* the accounts my image id of region is shared with (peer->uin) */
	int (*fetch_shares)(struct backend *b, const char *region,
			    const char *id, peer_cb cb, void *ctx);
	/* the limits of region, and today's operations where counted */
	int (*quota)(struct backend *b, const char *region, struct usage *u);
	/* make my custom image name in region from spec (an instance, an
	 * import, or a copy of spec->copy_of); *out is the new image as the
	 * service has it then (its id at least). A dry run only checks. */
	int (*make)(struct backend *b, const char *region, const char *name,
		    const struct spec *spec, struct image *out);
	/* rename and describe my image in one step: name and description
	 * NULL when unchanged; "" clears the description */
	int (*modify)(struct backend *b, const char *region, const char *id,
		      const char *name, const char *description);
	/* delete my image (dry_run: what a delete would answer, changing
	 * nothing) */
	int (*delete)(struct backend *b, const char *region, const char *id,
		      int dry_run);
	/* share my image with peer (share 1) or stop sharing it (share 0) */
	int (*permit)(struct backend *b, const char *region, const char *id,
		      const char *peer, int share);
	/* make the calls under way return -EINTR soon, and later ones at
	 * once: the wrapper is closing (any thread) */
	void (*abort)(struct backend *b);
};

/*
 * Waiting. A call made from the FUSE thread never waits on something slow
 * (an API call, a catalog lock that another process holds): it returns
 * -BACKEND_WAIT instead, having started what it waits for, and fs/ops.c
 * keeps the request and makes the same call again later, while it serves
 * other requests: at once when the backend calls b->wake(b->wake_ctx)
 * (from any thread, when something it waited for has happened), otherwise
 * every few tens of milliseconds.
 *
 * - A call that returned -BACKEND_WAIT has made no change that its retry
 *   would make again. A change already sent on its way (to the cloud) is
 *   found again by the retry, which returns -BACKEND_WAIT while it runs
 *   and its result once it is done; if nobody asks again (the caller was
 *   interrupted), the change is still applied whole, or not at all.
 * - fs/ makes at most one mutation per request, and reads after a
 *   mutation that succeeded do not wait (the backend has what it changed).
 * - A request still waiting after b->wait_timeout seconds (0: no limit) is
 *   answered -b->wait_errno (a catalog lock held too long: ENOLCK).
 * - FUSE_INTERRUPT (Ctrl-C) of a waiting request answers EINTR at once.
 */
#define BACKEND_WAIT EINPROGRESS

struct backend {
	const struct backend_ops *ops;
	const char *account;	/* the uin the mount acts as */
	/*
	 * The FUSE generation of every inode: rows are never reused within
	 * one catalog, and this changes with the catalog (a file replaced
	 * anew may give the same numbers again). 1 .. 2^32 - 1: the kernel
	 * keeps 32 bits of it.
	 */
	uint32_t generation;
	/* set by the caller before serving: something waited for happened */
	void (*wake)(void *ctx);
	void *wake_ctx;
	double wait_timeout;	/* seconds a request may wait, 0: no limit */
	int wait_errno;		/* its answer after that */
};

struct config;

/* Open the backend the configuration names. */
int backend_open(const struct config *cfg, struct backend **out);

/* The implementations. */
int local_open(const struct config *cfg, struct backend **out);
/* the service side only: mount it as cache(tencentcloud) */
int tencent_open(const struct config *cfg, struct backend **out);

/*
 * The cache (backend/cache/): a backend over inner's service side that
 * keeps its listings in the SQLite file at path, fetched in the background
 * and again after ttl seconds, and the pending images and peer folders that
 * the service does not know. It owns inner from then on (closed with it,
 * also on failure).
 */
int cache_open(struct backend *inner, const char *path, double ttl,
	       struct backend **out);

#endif /* IMAGEFS_BACKEND_H */
