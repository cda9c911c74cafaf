// SPDX-License-Identifier: GPL-2.0
/*
 * inode.c - inode numbers and what they name, the attributes of each kind
 * of node, and the inodes a change makes stale (ours or another daemon's).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inode.h"
#include "info.h"
#include "names.h"

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

int kind_mutable(enum image_kind k)
{
	return k == KIND_CUSTOM || k == KIND_SHARED;
}

/* Read-only kinds: public, market, shared. */
static int kind_writable(enum image_kind k)
{
	return k == KIND_CUSTOM;
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

void dir_entry(struct fs *fs, struct entry *e, uint64_t ino, mode_t mode,
	       int subdirs, time_t t)
{
	memset(&e->st, 0, sizeof(e->st));
	e->ino = ino;
	e->mutable = 0;
	e->transient = 0;
	e->st.st_ino = ino;
	e->st.st_mode = S_IFDIR | mode;
	e->st.st_nlink = 2 + subdirs;
	e->st.st_uid = fs->uid;
	e->st.st_gid = fs->gid;
	e->st.st_size = 4096;
	e->st.st_blksize = 4096;
	e->st.st_atime = e->st.st_mtime = e->st.st_ctime = t;
}

void file_entry(struct fs *fs, struct entry *e, uint64_t ino, mode_t mode,
		off_t size, time_t t)
{
	dir_entry(fs, e, ino, 0, 0, t);
	e->st.st_mode = mode;
	e->st.st_nlink = 1;
	e->st.st_size = size;
	e->st.st_blocks = (size + 511) / 512;
}

void image_entry(struct fs *fs, const struct image *img, struct entry *e)
{
	dir_entry(fs, e, image_ino(N_IMAGE, img),
		  kind_writable(img->kind) ? 0755 : 0555, 0, img->mtime);
	e->mutable = kind_mutable(img->kind);
}

void info_entry(struct fs *fs, const struct image *img, struct entry *e)
{
	size_t len = info_render(img, NULL, 0);

	file_entry(fs, e, image_ino(N_INFO, img),
		   S_IFREG | (kind_writable(img->kind) ? 0644 : 0444), len,
		   img->mtime);
	e->mutable = kind_mutable(img->kind);
}

static int64_t newest(const int64_t *t, int n)
{
	int64_t max = 0;

	for (int i = 0; i < n; i++)
		if (t[i] > max)
			max = t[i];
	return max;
}

void region_summary(struct fs *fs, const struct region *r, struct summary *s)
{
	memset(s, 0, sizeof(*s));
	if (fs->b->ops->summary && fs->b->ops->summary(fs->b, r->name, s))
		memset(s, 0, sizeof(*s));
}

time_t root_time(struct fs *fs)
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

time_t region_time(struct fs *fs, const struct summary *s)
{
	int64_t t = newest(s->mtime, KIND_COUNT);

	return t ? t : root_time(fs);
}

time_t folder_time(struct fs *fs, const struct summary *s,
		   enum image_kind kind)
{
	return s->mtime[kind] ? s->mtime[kind] : region_time(fs, s);
}

void link_entry(struct fs *fs, const struct share *s, struct entry *e)
{
	char target[512];
	int len = link_target(fs, s, target, sizeof(target));

	file_entry(fs, e, ino_make(N_LINK, s->row), S_IFLNK | 0777,
		   len < 0 ? 0 : len, s->mtime ? s->mtime : fs->mounted);
	e->mutable = 1;
}

void peer_entry(struct fs *fs, const struct region *r, const struct peer *p,
		struct entry *e)
{
	struct summary s;
	time_t t = p->mtime;

	if (!t) {
		region_summary(fs, r, &s);
		t = folder_time(fs, &s, KIND_SHARED);
	}
	dir_entry(fs, e, peer_ino(r, p->uin), 0755, p->images, t);
	e->mutable = 1;
}

int share_entry(struct fs *fs, const struct share *s, char *out,
		size_t size)
{
	struct image img;

	img.id[0] = 0;
	if (link_needs_id(s->name) && fs->b->ops->get(fs->b, s->image, &img))
		img.id[0] = 0;
	return name_display(s->name, img.id, 0, out, size);
}

int link_target(struct fs *fs, const struct share *s, char *buf,
		size_t size)
{
	char entry[512];
	struct image img;
	int rc;

	/* the image's entry in custom/: with its id when not shown as is */
	img.id[0] = 0;
	if (!name_shown_as_is(s->name) &&
	    fs->b->ops->get(fs->b, s->image, &img))
		img.id[0] = 0;
	rc = name_display(s->name, img.id, 0, entry, sizeof(entry));

	if (rc)
		return rc;
	rc = snprintf(buf, size, "../../custom/%s", entry);
	return rc >= (int)size ? -ENAMETOOLONG : rc;
}

int refuse(const struct node *n)
{
	switch (n->type) {
	case N_ROOT:
	case N_REGION:
		return -EPERM;
	case N_FOLDER:
		return n->kind == KIND_CUSTOM ? -EPERM : -EROFS;
	default:
		return -EROFS;
	}
}

int my_image(struct fs *fs, uint64_t ino, struct image *img)
{
	struct node n;
	int rc = fs_node(fs, ino, &n);

	if (rc)
		return rc;
	if (n.type != N_IMAGE)
		return refuse(&n);
	rc = fs->b->ops->get(fs->b, n.id, img);
	if (rc)
		return rc;
	return img->kind == KIND_CUSTOM ? 0 : -EROFS;
}

/*
 * After a change of ours in region: the region's time and the top's are
 * sent again only when they are no longer what the kernel was told (a
 * dropped time costs each later path walk a GETATTR: default_permissions).
 */
void times_changed(struct fs *fs, const char *region)
{
	const struct region *r = fs_region(fs, region);
	struct summary s;
	int64_t t, *told;

	if (!fs->inval_inode || !r)
		return;
	told = &fs->told_region[r - fs->regions];
	region_summary(fs, r, &s);
	t = newest(s.mtime, KIND_COUNT);
	if (!t || t != *told)
		fs->inval_inode(fs->inval_ctx, ino_make(N_REGION, r->row));
	if (!t || t > fs->told_root || t < *told)
		fs->inval_inode(fs->inval_ctx, FS_ROOT_INO);
}

/* Another's change in region: what it did to the times is not known. */
static void times_changed_elsewhere(struct fs *fs, const struct region *r)
{
	fs->inval_inode(fs->inval_ctx, ino_make(N_REGION, r->row));
	fs->inval_inode(fs->inval_ctx, FS_ROOT_INO);
}

void image_changed(struct fs *fs, const struct image *img)
{
	const struct region *r = fs_region(fs, img->region);

	/* old names are not invalidated: they expire (short entry timeouts) */
	if (!fs->inval_inode || !r)
		return;
	times_changed(fs, img->region);
	fs->inval_inode(fs->inval_ctx, mutable_ino(N_INFO, img->row));
	fs->inval_inode(fs->inval_ctx, mutable_ino(N_IMAGE, img->row));
	fs->inval_inode(fs->inval_ctx, folder_ino(r, KIND_CUSTOM));
	fs->inval_inode(fs->inval_ctx, folder_ino(r, KIND_SHARED));
	/* the links in shared/<peer>/ carry the name too */
	for (const char *p = img->shared_with; *p;) {
		char uin[32];
		size_t len = strcspn(p, ",");

		snprintf(uin, sizeof(uin), "%.*s", (int)len, p);
		p += len + (p[len] == ',');
		if (!uin_check(uin))
			fs->inval_inode(fs->inval_ctx, peer_ino(r, uin));
	}
}

void row_changed(struct fs *fs, int64_t row)
{
	struct image img;

	if (!fs->b->ops->get(fs->b, row, &img))
		image_changed(fs, &img);
}

int fs_change(struct fs *fs, const struct change *c)
{
	const struct region *r = fs_region(fs, c->region);
	const char *me = fs->b->account;
	uint64_t parent;
	int mine;

	if (!r || !fs->inval_inode)
		return 0;
	times_changed_elsewhere(fs, r);
	if (c->kind == KIND_PUBLIC || c->kind == KIND_MARKET) {
		/* the cloud's own changes: the image and its listing */
		if (c->image) {
			fs->inval_inode(fs->inval_ctx, ino_make(N_IMAGE,
								c->image));
			fs->inval_inode(fs->inval_ctx, ino_make(N_INFO,
								c->image));
		}
		fs->inval_inode(fs->inval_ctx, folder_ino(r, c->kind));
		return 0;
	}
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
