// SPDX-License-Identifier: GPL-2.0
/*
 * fs.c - the read side of the tree: inode numbers, attributes, lookups,
 * listings, links, xattrs and statfs, over the backend interface.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "fs_internal.h"
#include "info.h"
#include "names.h"

/* Listing cookies: "." is 1, ".." is 2, children from 3 on. */
#define COOKIE_FIRST	3
#define COOKIE_LINKS	(UINT64_C(1) << 62)	/* shared/<uin>/ symlinks */

uint64_t ino_make(enum node_type type, int64_t id)
{
	if (type == N_ROOT)
		return FS_ROOT_INO;
	return ((uint64_t)id << INO_SHIFT) | type;
}

uint64_t mutable_ino(enum node_type type, int64_t row)
{
	return ino_make(type, row) | INO_MUTABLE;
}

/* Custom and shared images change; public and market ones never do. */
static int kind_mutable(enum image_kind k)
{
	return k == KIND_CUSTOM || k == KIND_SHARED;
}

static uint64_t image_ino(enum node_type type, const struct image *img)
{
	return kind_mutable(img->kind) ? mutable_ino(type, img->row) :
	       ino_make(type, img->row);
}

const struct region *fs_region(struct fs *fs, const char *name)
{
	for (int i = 0; i < fs->nregions; i++)
		if (!strcmp(fs->regions[i].name, name))
			return &fs->regions[i];
	return NULL;
}

static const struct region *region_by_row(struct fs *fs, int64_t row)
{
	for (int i = 0; i < fs->nregions; i++)
		if (fs->regions[i].row == row)
			return &fs->regions[i];
	return NULL;
}

int fs_node(struct fs *fs, uint64_t ino, struct node *n)
{
	int64_t v = (int64_t)(ino >> INO_SHIFT);

	memset(n, 0, sizeof(*n));
	if (ino == FS_ROOT_INO) {
		n->type = N_ROOT;
		return 0;
	}
	n->type = ino & 7;
	n->mutable = !!(ino & INO_MUTABLE);
	n->id = v;
	switch (n->type) {
	case N_REGION:
		n->region = region_by_row(fs, v);
		break;
	case N_FOLDER:
		n->region = region_by_row(fs, v >> 2);
		n->kind = v & 3;
		break;
	case N_PEER:
		n->region = region_by_row(fs, v & 0xff);
		snprintf(n->peer, sizeof(n->peer), "%" PRId64, v >> 8);
		break;
	case N_IMAGE:
	case N_INFO:
	case N_LINK:
	case N_SCRATCH:
		return 0;
	default:
		return -ENOENT;
	}
	return n->region ? 0 : -ENOENT;
}

uint64_t folder_ino(const struct region *r, enum image_kind kind)
{
	return ino_make(N_FOLDER, (r->row << 2) | kind);
}

uint64_t peer_ino(const struct region *r, const char *uin)
{
	return ino_make(N_PEER, (strtoll(uin, NULL, 10) << 8) | r->row);
}

static void set_dir(struct fs *fs, struct entry *e, uint64_t ino, mode_t mode,
		    int subdirs, time_t t)
{
	memset(&e->st, 0, sizeof(e->st));
	e->ino = ino;
	e->mutable = 0;
	e->st.st_ino = ino;
	e->st.st_mode = S_IFDIR | mode;
	e->st.st_nlink = 2 + subdirs;
	e->st.st_uid = fs->uid;
	e->st.st_gid = fs->gid;
	e->st.st_size = 4096;
	e->st.st_blksize = 4096;
	e->st.st_atime = e->st.st_mtime = e->st.st_ctime = t;
}

static void set_file(struct fs *fs, struct entry *e, uint64_t ino, mode_t mode,
		     off_t size, time_t t)
{
	set_dir(fs, e, ino, 0, 0, t);
	e->st.st_mode = mode;
	e->st.st_nlink = 1;
	e->st.st_size = size;
	e->st.st_blocks = (size + 511) / 512;
}

/* Read-only kinds: public, market, shared. */
static int kind_writable(enum image_kind k)
{
	return k == KIND_CUSTOM;
}

void image_entry(struct fs *fs, const struct image *img, struct entry *e)
{
	set_dir(fs, e, image_ino(N_IMAGE, img),
		kind_writable(img->kind) ? 0755 : 0555, 0, img->mtime);
	e->mutable = kind_mutable(img->kind);
}

void info_entry(struct fs *fs, const struct image *img, struct entry *e)
{
	size_t len = info_render(img, NULL, 0);

	set_file(fs, e, image_ino(N_INFO, img),
		 S_IFREG | (kind_writable(img->kind) ? 0644 : 0444), len,
		 img->mtime);
	e->mutable = kind_mutable(img->kind);
}

/*
 * Directory times: the newest change of what a folder holds, so that they
 * stay the same across remounts and move when the content does; a folder
 * with nothing known falls back to its region's, a region to the tree's,
 * and an empty tree to the mount time.
 */
static int64_t newest(const int64_t *t, int n)
{
	int64_t max = 0;

	for (int i = 0; i < n; i++)
		if (t[i] > max)
			max = t[i];
	return max;
}

static void region_summary(struct fs *fs, const struct region *r,
			   struct summary *s)
{
	memset(s, 0, sizeof(*s));
	if (fs->b->ops->summary && fs->b->ops->summary(fs->b, r->name, s))
		memset(s, 0, sizeof(*s));
}

static time_t root_time(struct fs *fs)
{
	int64_t t = 0;
	struct summary s;

	for (int i = 0; i < fs->nregions; i++) {
		region_summary(fs, &fs->regions[i], &s);
		if (newest(s.mtime, KIND_COUNT) > t)
			t = newest(s.mtime, KIND_COUNT);
	}
	return t ? t : fs->mounted;
}

static time_t region_time(struct fs *fs, const struct summary *s)
{
	int64_t t = newest(s->mtime, KIND_COUNT);

	return t ? t : root_time(fs);
}

static time_t folder_time(struct fs *fs, const struct summary *s,
			  enum image_kind kind)
{
	return s->mtime[kind] ? s->mtime[kind] : region_time(fs, s);
}

void times_changed(struct fs *fs, const char *region)
{
	const struct region *r = fs_region(fs, region);

	if (!fs->inval_inode || !r)
		return;
	fs->inval_inode(fs->inval_ctx, ino_make(N_REGION, r->row));
	fs->inval_inode(fs->inval_ctx, FS_ROOT_INO);
}

static void region_entry(struct fs *fs, const struct region *r,
			 struct entry *e)
{
	struct summary s;

	region_summary(fs, r, &s);
	set_dir(fs, e, ino_make(N_REGION, r->row), 0555, KIND_COUNT,
		region_time(fs, &s));
}

static void link_entry(struct fs *fs, const struct share *s,
		       struct entry *e)
{
	char target[512];
	int len = link_target(s->name, target, sizeof(target));

	set_file(fs, e, ino_make(N_LINK, s->row), S_IFLNK | 0777,
		 len < 0 ? 0 : len, s->mtime ? s->mtime : fs->mounted);
	e->mutable = 1;
}

int link_target(const char *name, char *buf, size_t size)
{
	char entry[512];
	int rc = name_display(name, "", 0, entry, sizeof(entry));

	if (rc)
		return rc;
	rc = snprintf(buf, size, "../../custom/%s", entry);
	return rc >= (int)size ? -ENAMETOOLONG : rc;
}

static void folder_of(const struct node *n, struct folder *f)
{
	f->region = n->region->name;
	f->kind = n->type == N_PEER ? KIND_SHARED : n->kind;
	f->peer = n->type == N_PEER ? n->peer : NULL;
}

struct first_ctx {
	struct image *out;
	const char *id;		/* NULL: the first holder */
	int found;
};

static int first_cb(void *ctx, const struct image *img)
{
	struct first_ctx *c = ctx;

	if (c->id ? strcmp(img->id, c->id) || !img->dup : img->dup)
		return 0;
	*c->out = *img;
	c->found = 1;
	return 1;
}

int find_image(struct fs *fs, const struct folder *f, const char *entry,
	       struct image *out)
{
	struct first_ctx c = { .out = out };
	char name[1024], id[16];
	int rc;

	if (name_parse(entry, name, sizeof(name), id))
		return -ENOENT;
	if (id[0]) {
		/* a name that really ends in " (img-...)" comes first */
		size_t len = strlen(name);

		snprintf(name + len, sizeof(name) - len, " (%s)", id);
		rc = fs->b->ops->find(fs->b, f, name, first_cb, &c);
		if (rc || c.found)
			return rc ? rc : 0;
		name[len] = 0;
		c.id = id;
	}
	rc = fs->b->ops->find(fs->b, f, name, first_cb, &c);
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

int find_peer(struct fs *fs, const struct region *r, const char *uin,
	      struct peer *out)
{
	struct peer_ctx c = { .out = out };
	int rc;

	if (uin_check(uin) || !strcmp(uin, fs->b->account))
		return -ENOENT;
	c.key = strtoll(uin, NULL, 10);
	rc = fs->b->ops->peers(fs->b, r->name, c.key - 1, peer_find_cb, &c);
	if (rc)
		return rc;
	return c.found ? 0 : -ENOENT;
}

struct share_ctx {
	const char *name;
	int64_t row;
	struct share *out;
	int found;
};

static int share_find_cb(void *ctx, const struct share *s)
{
	struct share_ctx *c = ctx;

	if (c->name ? strcmp(s->name, c->name) : s->row != c->row)
		return 0;
	*c->out = *s;
	c->found = 1;
	return 1;
}

/* My share named name (entry form) in region/shared/<peer>/. */
int find_share(struct fs *fs, const struct region *r, const char *peer,
	       const char *entry, struct share *out)
{
	struct share_ctx c = { .out = out };
	char name[1024], id[16];
	int rc;

	if (name_parse(entry, name, sizeof(name), id) || id[0])
		return -ENOENT;
	c.name = name;
	rc = fs->b->ops->shares(fs->b, r->name, peer, 0, share_find_cb, &c);
	if (rc)
		return rc;
	return c.found ? 0 : -ENOENT;
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
		n = count_peers(fs, r);
	else
		rc = fs->b->ops->count(fs->b, &f, &n);
	if (!s) {
		region_summary(fs, r, &own);
		s = &own;
	}
	set_dir(fs, e, folder_ino(r, kind),
		kind_writable(kind) || kind == KIND_SHARED ? 0755 : 0555,
		n < 0 ? 0 : n, folder_time(fs, s, kind));
	return rc;
}

static int count_cb(void *ctx, const struct peer *p)
{
	(void)p;
	++*(int *)ctx;
	return 0;
}

int count_peers(struct fs *fs, const struct region *r)
{
	int n = 0;

	if (fs->b->ops->peers(fs->b, r->name, -1, count_cb, &n))
		return 0;
	return n;
}

static void peer_entry(struct fs *fs, const struct region *r,
		       const struct peer *p, struct entry *e)
{
	struct summary s;
	time_t t = p->mtime;

	if (!t) {
		region_summary(fs, r, &s);
		t = folder_time(fs, &s, KIND_SHARED);
	}
	set_dir(fs, e, peer_ino(r, p->uin), 0755, p->images, t);
	e->mutable = 1;
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
	if (img.pending)
		return pending_info_attr(fs, img.row, e);
	info_entry(fs, &img, e);
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
		set_dir(fs, e, ino, 0555, fs->nregions, root_time(fs));
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
		return scratch_getattr(fs, n.id, e);
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
	int rc = fs_node(fs, parent, &n);

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
			return scratch_link_lookup(fs, parent, name, e);
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

	if (name_display(s->name, "", 0, name, sizeof(name)))
		return 0;
	link_entry(c->fs, s, &e);
	c->full = c->fill(c->ctx, name, &e, COOKIE_LINKS + (uint64_t)s->row);
	return c->full;
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
		return image_children(fs, n->id, off, c->fill, c->ctx);
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
	rc = link_target(s.name, buf, size);
	return rc < 0 ? rc : 0;
}

int fs_info_text(struct fs *fs, int64_t row, char **text, size_t *len)
{
	struct image img;
	int rc = fs->b->ops->get(fs->b, row, &img);

	if (rc)
		return rc;
	if (img.pending)
		return -ENOENT;
	*len = info_render(&img, NULL, 0);
	*text = malloc(*len + 1);
	if (!*text)
		return -ENOMEM;
	info_render(&img, *text, *len + 1);
	return 0;
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
		if (n.region && !fs->b->ops->usage(fs->b, r->name, &u)) {
			s.images = u.images;
			s.images_max = u.images_max;
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
	scratch_free_all(fs);
	errors_free_all(fs);
}

int fs_change(struct fs *fs, const struct change *c)
{
	const struct region *r = fs_region(fs, c->region);
	const char *me = fs->b->account;
	uint64_t parent;
	int mine;

	if (!r || !fs->inval_inode)
		return 0;
	times_changed(fs, c->region);
	mine = c->owner && !strcmp(c->owner, me);
	parent = mine ? folder_ino(r, KIND_CUSTOM) :
		 (c->owner && !uin_check(c->owner) ? peer_ino(r, c->owner) : 0);
	if (c->image) {
		fs->inval_inode(fs->inval_ctx, mutable_ino(N_IMAGE, c->image));
		fs->inval_inode(fs->inval_ctx, mutable_ino(N_INFO, c->image));
	}
	if (parent)
		fs->inval_inode(fs->inval_ctx, parent);
	if (!c->peer)
		return 0;
	/* a share or a peer folder: both ends' shared/ views */
	if (mine && !uin_check(c->peer))
		fs->inval_inode(fs->inval_ctx, peer_ino(r, c->peer));
	fs->inval_inode(fs->inval_ctx, folder_ino(r, KIND_SHARED));
	return 0;
}
