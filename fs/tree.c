// SPDX-License-Identifier: GPL-2.0
/*
 * tree.c - the tree as the kernel asks for it: attributes, lookups,
 * listings, links, statfs and setattr, over the backend interface. What is
 * only in memory (scratch files, a pending image's info being written) it
 * asks of scratch.c and files.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"
#include "files.h"
#include "inode.h"
#include "marks.h"
#include "names.h"
#include "scratch.h"
#include "tree.h"

/* Listing cookies: "." is 1, ".." is 2, children from 3 on. */
#define COOKIE_FIRST	3
#define COOKIE_LINKS	(UINT64_C(1) << 62)	/* shared/<uin>/ symlinks */

static void folder_of(const struct node *n, struct folder *f)
{
	f->region = n->region->name;
	f->kind = n->type == N_PEER ? KIND_SHARED : n->kind;
	f->peer = n->type == N_PEER ? n->peer : NULL;
}

struct entry_ctx {
	struct image *out;
	const char *entry;	/* the entry name looked for */
	int found;
};

/* Whether img is the image listed as c->entry. */
static int entry_cb(void *ctx, const struct image *img)
{
	struct entry_ctx *c = ctx;
	char entry[NAME_MAX + 1];

	if (name_display(img->name, img->id, img->dup, entry, sizeof(entry)) ||
	    strcmp(entry, c->entry))
		return 0;
	*c->out = *img;
	c->found = 1;
	return 1;
}

int find_image(struct fs *fs, const struct folder *f, const char *entry,
	       struct image *out)
{
	struct entry_ctx c = { .out = out, .entry = entry };
	char name[1024], id[16];
	int rc;

	if (name_parse(entry, name, sizeof(name), id))
		return -ENOENT;
	rc = fs->b->ops->find(fs->b, f, name, entry_cb, &c);
	if (rc || c.found || !id[0])
		return rc ? rc : c.found ? 0 : -ENOENT;
	/*
	 * A name not shown as it is (a leading dot, U+FF0F of its own, cut)
	 * is listed with its id: the holder of that id whose entry it is.
	 */
	rc = fs->b->ops->list(fs->b, f, 0, entry_cb, &c);
	if (rc)
		return rc;
	return c.found ? 0 : -ENOENT;
}

struct peer_ctx {
	int64_t key;
	struct peer *out;
	int found;
};

static int peer_find_cb(void *ctx, const struct peer *p)
{
	struct peer_ctx *c = ctx;

	if (p->key == c->key) {
		*c->out = *p;
		c->found = 1;
	}
	return 1;
}

int peer_check(struct fs *fs, const char *uin)
{
	if (uin_check(uin) || !strcmp(uin, fs->b->account))
		return -EINVAL;
	return 0;
}

/* The peer folder uin of region r: 0 or -ENOENT. */
static int find_peer(struct fs *fs, const struct region *r, const char *uin,
		     struct peer *out)
{
	struct peer_ctx c = { .out = out };
	int rc;

	if (peer_check(fs, uin))
		return -ENOENT;
	c.key = strtoll(uin, NULL, 10);
	rc = fs->b->ops->peers(fs->b, r->name, c.key - 1, peer_find_cb, &c);
	if (rc)
		return rc;
	return c.found ? 0 : -ENOENT;
}

struct share_ctx {
	struct fs *fs;
	const char *entry;
	struct share *out;
	int found;
};

static int share_find_cb(void *ctx, const struct share *s)
{
	struct share_ctx *c = ctx;
	char entry[NAME_MAX + 1];

	if (share_entry(c->fs, s, entry, sizeof(entry)) ||
	    strcmp(entry, c->entry))
		return 0;
	*c->out = *s;
	c->found = 1;
	return 1;
}

/* My share whose link is named entry in region/shared/<peer>/. */
int find_share(struct fs *fs, const struct region *r, const char *peer,
	       const char *entry, struct share *out)
{
	struct share_ctx c = { .fs = fs, .entry = entry, .out = out };
	int rc;

	rc = fs->b->ops->shares(fs->b, r->name, peer, 0, share_find_cb, &c);
	if (rc)
		return rc;
	return c.found ? 0 : -ENOENT;
}

static int count_cb(void *ctx, const struct peer *p)
{
	(void)p;
	++*(int *)ctx;
	return 0;
}

/* The peer folders of r/shared/ in *n; only a wait is an error. */
static int count_peers(struct fs *fs, const struct region *r, int *n)
{
	int rc;

	*n = 0;
	rc = fs->b->ops->peers(fs->b, r->name, -1, count_cb, n);
	return rc == -BACKEND_WAIT ? rc : 0;
}

/* A folder of region r; s: the region's summary, or NULL to read it. */
static int folder_entry(struct fs *fs, const struct region *r,
			enum image_kind kind, const struct summary *s,
			struct entry *e)
{
	struct folder f = { .region = r->name, .kind = kind };
	struct summary own;
	int n = 0, rc = 0;

	if (kind == KIND_SHARED)
		rc = count_peers(fs, r, &n);
	else
		rc = fs->b->ops->count(fs->b, &f, &n);
	if (!s) {
		region_summary(fs, r, &own);
		s = &own;
	}
	dir_entry(fs, e, folder_ino(r, kind), kind_mutable(kind) ? 0755 : 0555,
		  n < 0 ? 0 : n, folder_time(fs, s, kind));
	return rc;
}

static void region_entry(struct fs *fs, const struct region *r,
			 struct entry *e)
{
	struct summary s;
	time_t t;

	region_summary(fs, r, &s);
	t = region_time(fs, &s);
	fs->told_region[r - fs->regions] = t;
	dir_entry(fs, e, ino_make(N_REGION, r->row), 0555, KIND_COUNT, t);
}

/* The attributes of an image dir or its info, from the catalog. */
static int image_attr(struct fs *fs, const struct node *n, struct entry *e)
{
	struct image img;
	int rc = fs->b->ops->get(fs->b, n->id, &img);

	if (rc)
		return rc;
	if (n->type == N_IMAGE) {
		image_entry(fs, &img, e);
		return 0;
	}
	return info_attr(fs, &img, e);
}

/* A scratch file, or what it stands for: the info it was renamed onto. */
static int scratch_attr(struct fs *fs, int64_t id, struct entry *e)
{
	struct scratch *s = scratch_get(fs, id);
	int rc;

	if (!s)
		return -ENOENT;
	if (s->alias) {
		rc = fs_getattr(fs, mutable_ino(N_INFO, s->row), e);
		e->ino = e->st.st_ino = ino_make(N_SCRATCH, id);
		return rc;
	}
	scratch_entry(fs, s, e);
	return 0;
}

/* The scratch file name of holder row. */
static int scratch_lookup(struct fs *fs, int64_t row, const char *name,
			  struct entry *e)
{
	struct scratch *s = scratch_named(fs, row, name);

	if (!s)
		return -ENOENT;
	scratch_entry(fs, s, e);
	return 0;
}

int fs_getattr(struct fs *fs, uint64_t ino, struct entry *e)
{
	struct node n;
	struct peer p;
	struct share s;
	char region[32], peer[32];
	int rc = fs_node(fs, ino, &n);

	if (rc)
		return rc;
	switch (n.type) {
	case N_ROOT:
		fs->told_root = root_time(fs);
		dir_entry(fs, e, ino, 0555, fs->nregions, fs->told_root);
		return 0;
	case N_REGION:
		region_entry(fs, n.region, e);
		return 0;
	case N_FOLDER:
		return folder_entry(fs, n.region, n.kind, NULL, e);
	case N_PEER:
		rc = find_peer(fs, n.region, n.peer, &p);
		if (!rc)
			peer_entry(fs, n.region, &p, e);
		return rc;
	case N_IMAGE:
	case N_INFO:
		return image_attr(fs, &n, e);
	case N_LINK:
		rc = fs->b->ops->get_share(fs->b, n.id, region, sizeof(region),
					   peer, sizeof(peer), &s);
		if (!rc)
			link_entry(fs, &s, e);
		return rc;
	case N_SCRATCH:
		return scratch_attr(fs, n.id, e);
	}
	return -ENOENT;
}

int fs_lookup(struct fs *fs, uint64_t parent, const char *name,
	      struct entry *e)
{
	struct folder f;
	struct image img;
	struct peer p;
	struct share s;
	struct node n;
	int rc;

	memset(e, 0, sizeof(*e));	/* even a failed lookup says mutable */
	rc = fs_node(fs, parent, &n);
	if (rc)
		return rc;
	/* a missing name may appear here later: cache its absence briefly */
	e->mutable = n.type == N_PEER || n.mutable ||
		     (n.type == N_FOLDER && kind_mutable(n.kind));
	if (name_is_probe(name) && n.type != N_IMAGE) {
		e->mutable = 0;
		return -ENOENT;
	}
	switch (n.type) {
	case N_ROOT: {
		const struct region *r = fs_region(fs, name);

		if (!r)
			return -ENOENT;
		region_entry(fs, r, e);
		return 0;
	}
	case N_REGION:
		for (int k = 0; k < KIND_COUNT; k++)
			if (!strcmp(name, kind_names[k]))
				return folder_entry(fs, n.region, k, NULL, e);
		return -ENOENT;
	case N_FOLDER:
		if (n.kind == KIND_SHARED) {
			rc = find_peer(fs, n.region, name, &p);
			if (!rc)
				peer_entry(fs, n.region, &p, e);
			return rc;
		}
		/* fall through */
	case N_PEER:
		folder_of(&n, &f);
		rc = find_image(fs, &f, name, &img);
		if (!rc) {
			image_entry(fs, &img, e);
			return 0;
		}
		if (rc != -ENOENT || n.type != N_PEER)
			return rc;
		rc = find_share(fs, n.region, n.peer, name, &s);
		if (!rc)
			link_entry(fs, &s, e);
		if (rc == -ENOENT)
			return scratch_lookup(fs, scratch_link_holder(parent),
					      name, e);
		return rc;
	case N_IMAGE:
		if (!strcmp(name, "info")) {
			n.type = N_INFO;
			return image_attr(fs, &n, e);
		}
		return scratch_lookup(fs, n.id, name, e);
	default:
		return -ENOTDIR;
	}
}

/* Listing state handed to the backend's callbacks. */
struct list_ctx {
	struct fs *fs;
	fill_cb fill;
	void *ctx;
	const struct region *region;
	int full;
	int count;
};

static int list_image_cb(void *ctx, const struct image *img)
{
	struct list_ctx *c = ctx;
	char name[512];
	struct entry e;

	if (name_display(img->name, img->id, img->dup, name, sizeof(name)))
		return 0;
	image_entry(c->fs, img, &e);
	c->full = c->fill(c->ctx, name, &e, (uint64_t)img->row + 2);
	return c->full;
}

static int list_peer_cb(void *ctx, const struct peer *p)
{
	struct list_ctx *c = ctx;
	struct entry e;

	peer_entry(c->fs, c->region, p, &e);
	c->full = c->fill(c->ctx, p->uin, &e, (uint64_t)p->key + 2);
	return c->full;
}

static int list_share_cb(void *ctx, const struct share *s)
{
	struct list_ctx *c = ctx;
	char name[512];
	struct entry e;

	if (share_entry(c->fs, s, name, sizeof(name)))
		return 0;
	link_entry(c->fs, s, &e);
	c->full = c->fill(c->ctx, name, &e, COOKIE_LINKS + (uint64_t)s->row);
	return c->full;
}

/* info, then the scratch files in the order they were made. */
static int image_children(struct fs *fs, int64_t row, uint64_t off,
			  struct list_ctx *c)
{
	struct scratch *s;
	struct image img;
	struct entry e;
	int rc;

	if (off < COOKIE_FIRST) {
		rc = fs->b->ops->get(fs->b, row, &img);
		if (rc)
			return rc;
		if (!info_attr(fs, &img, &e) &&
		    c->fill(c->ctx, "info", &e, COOKIE_FIRST))
			return 0;
	}
	for (s = scratch_next(fs, row, off < COOKIE_FIRST ? 0 :
			      (int64_t)(off - COOKIE_FIRST));
	     s; s = scratch_next(fs, row, s->id)) {
		scratch_entry(fs, s, &e);
		if (c->fill(c->ctx, s->name, &e,
			    (uint64_t)s->id + COOKIE_FIRST))
			return 0;
	}
	return 0;
}

/* The children of a node from cookie off on. */
static int list_children(struct fs *fs, const struct node *n, uint64_t off,
			 struct list_ctx *c)
{
	struct summary s;
	struct folder f;
	struct entry e;
	int rc;

	switch (n->type) {
	case N_ROOT:
		for (int i = 0; i < fs->nregions && !c->full; i++) {
			const struct region *r = &fs->regions[i];
			uint64_t cookie = (uint64_t)r->row + 2;

			if (cookie <= off)
				continue;
			region_entry(fs, r, &e);
			c->full = c->fill(c->ctx, r->name, &e, cookie);
		}
		return 0;
	case N_REGION:
		region_summary(fs, n->region, &s);
		for (int k = 0; k < KIND_COUNT && !c->full; k++) {
			if ((uint64_t)k + COOKIE_FIRST <= off)
				continue;
			rc = folder_entry(fs, n->region, k, &s, &e);
			if (rc)
				return rc;
			c->full = c->fill(c->ctx, kind_names[k], &e,
					  (uint64_t)k + COOKIE_FIRST);
		}
		return 0;
	case N_FOLDER:
		if (n->kind == KIND_SHARED)
			return fs->b->ops->peers(fs->b, n->region->name,
						 off < COOKIE_FIRST ? -1 :
						 (int64_t)off - 2,
						 list_peer_cb, c);
		/* fall through */
	case N_PEER:
		folder_of(n, &f);
		if (off < COOKIE_LINKS) {
			rc = fs->b->ops->list(fs->b, &f, off < COOKIE_FIRST ?
					      0 : (int64_t)off - 2,
					      list_image_cb, c);
			if (rc || c->full || n->type != N_PEER)
				return rc;
			off = COOKIE_LINKS;
		}
		return fs->b->ops->shares(fs->b, n->region->name, n->peer,
					  (int64_t)(off - COOKIE_LINKS),
					  list_share_cb, c);
	case N_IMAGE:
		return image_children(fs, n->id, off, c);
	default:
		return -ENOTDIR;
	}
}

int fs_readdir(struct fs *fs, uint64_t ino, uint64_t off, fill_cb cb,
	       void *ctx)
{
	struct list_ctx c = { .fs = fs, .fill = cb, .ctx = ctx };
	struct entry self, up;
	struct node n;
	int rc = fs_node(fs, ino, &n);

	if (rc)
		return rc;
	c.region = n.region;
	if (n.type == N_INFO || n.type == N_LINK || n.type == N_SCRATCH)
		return -ENOTDIR;
	if (off < 2) {
		/* the kernel takes only the type and inode of "." and ".." */
		memset(&self, 0, sizeof(self));
		self.ino = self.st.st_ino = ino;
		self.st.st_mode = S_IFDIR;
		if (off < 1 && cb(ctx, ".", &self, 1))
			return 0;
		up = self;
		if (cb(ctx, "..", &up, 2))
			return 0;
	}
	return list_children(fs, &n, off, &c);
}

int fs_readlink(struct fs *fs, uint64_t ino, char *buf, size_t size)
{
	char region[32], peer[32];
	struct share s;
	struct node n;
	int rc = fs_node(fs, ino, &n);

	if (rc)
		return rc;
	if (n.type == N_SCRATCH)
		return scratch_readlink(fs, n.id, buf, size);
	if (n.type != N_LINK)
		return -EINVAL;
	rc = fs->b->ops->get_share(fs->b, n.id, region, sizeof(region), peer,
				   sizeof(peer), &s);
	if (rc)
		return rc;
	rc = link_target(fs, &s, buf, size);
	return rc < 0 ? rc : 0;
}

int fs_setattr(struct fs *fs, uint64_t ino, struct open_file *of,
	       const struct stat *st, int set, struct entry *e)
{
	struct scratch *s;
	struct node n;
	int rc = fs_getattr(fs, ino, e);

	if (rc)
		return rc;
	rc = fs_node(fs, ino, &n);
	if (rc)
		return rc;
	if (!(e->st.st_mode & 0200) && !S_ISLNK(e->st.st_mode))
		return n.type == N_ROOT || n.type == N_REGION ? -EPERM :
		       -EROFS;
	if ((set & FS_SET_UID) && st->st_uid != fs->uid)
		return -EPERM;
	if ((set & FS_SET_GID) && st->st_gid != fs->gid)
		return -EPERM;
	if (!(set & FS_SET_SIZE))
		return 0;	/* modes and times: accepted, nothing to keep */
	s = n.type == N_SCRATCH ? scratch_get(fs, n.id) : NULL;
	if (s)
		rc = scratch_resize(s, st->st_size);
	else if (n.type == N_INFO && of)
		rc = files_truncate(of, st->st_size);	/* its own text */
	else if (n.type == N_INFO && st->st_size == 0)
		files_truncate_info(fs, n.id);	/* the writer that follows */
	else
		rc = -EPERM;
	return rc ? rc : fs_getattr(fs, ino, e);
}

/* df's unit: one GiB, as SIZE_GB counts */
#define STATFS_BLOCK	(1UL << 30)
/* what a free slot is worth while no image says: a CVM system disk's
 * default size, in GiB */
#define SLOT_GB_DEFAULT	50

/*
 * df of a region (anywhere in it) or of the whole tree (the top, all
 * regions). Inodes are image slots: total the quota, free what is left.
 * Blocks are GiB of system disk: used, the disk sizes of my custom images;
 * free, the free slots at the average size of those images.
 */
int fs_statfs(struct fs *fs, uint64_t ino, struct statvfs *sv)
{
	int64_t images = 0, images_max = 0, disk_gb = 0, free_slots, slot_gb;
	struct summary s;
	struct usage u;
	struct node n;
	int rc = fs_node(fs, ino, &n);

	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = STATFS_BLOCK;
	sv->f_frsize = STATFS_BLOCK;
	sv->f_namemax = NAME_MAX_CHARS;
	if (rc)
		return 0;
	for (int i = 0; i < fs->nregions; i++) {
		const struct region *r = &fs->regions[i];

		if (n.region && n.region != r)
			continue;
		region_summary(fs, r, &s);
		/* in a region, the slots as the service says (usage) */
		if (n.region) {
			rc = fs->b->ops->usage(fs->b, r->name, &u);
			if (rc == -BACKEND_WAIT)
				return rc;
			if (!rc) {
				s.images = u.images;
				s.images_max = u.images_max;
			}
		}
		images += s.images;
		images_max += s.images_max;
		disk_gb += s.disk_gb;
	}
	free_slots = images < images_max ? images_max - images : 0;
	slot_gb = images && disk_gb ? (disk_gb + images - 1) / images :
		  SLOT_GB_DEFAULT;
	sv->f_files = images_max;
	sv->f_ffree = free_slots;
	sv->f_favail = free_slots;
	sv->f_bfree = free_slots * slot_gb;
	sv->f_bavail = sv->f_bfree;
	sv->f_blocks = disk_gb + sv->f_bfree;
	return 0;
}

int fs_wait_errno(const struct fs *fs)
{
	return fs->b->wait_errno ? fs->b->wait_errno : EIO;
}

int fs_init(struct fs *fs, struct backend *b, int xattr)
{
	int rc;

	memset(fs, 0, sizeof(*fs));
	fs->b = b;
	fs->xattr = xattr;
	fs->uid = getuid();
	fs->gid = getgid();
	fs->mounted = time(NULL);
	fs->next_scratch = 1;
	rc = b->ops->regions(b, fs->regions, FS_MAX_REGIONS, &fs->nregions);
	if (rc)
		return rc;
	return 0;
}

void fs_destroy(struct fs *fs)
{
	files_free_all(fs);
	scratch_free_all(fs);
	errors_free_all(fs);
	marks_free_all(fs);
}

