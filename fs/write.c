// SPDX-License-Identifier: GPL-2.0
/*
 * write.c - the write side of the tree: mkdir/rmdir of pending images and
 * peer folders, writing and committing info, deleting, renaming, sharing by
 * symlink, and the in-memory scratch files of editors.
 *
 * An info text is checked at each write(2) that completes a line (so a
 * shell's ">" redirection, which ignores close(2), still sees the error)
 * and committed at the first flush; later flushes return the same result.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../mountopts/log.h"
#include "fs.h"
#include "fs_internal.h"
#include "info.h"
#include "names.h"

#define SCRATCH_MAX_BYTES	(1 << 20)	/* one editor's file */
#define SCRATCH_MAX_FILES	256

struct scratch {
	struct scratch *next;
	int64_t id;
	int64_t row;		/* the image directory that holds it, or a
				 * link_holder(): a temporary share link */
	char name[256];
	char *data;
	size_t len;
	time_t mtime;
	int alias;		/* renamed onto info: stands for info now */
};

struct open_file {
	struct open_file *next;
	int64_t row;		/* the image */
	int64_t scratch;	/* a scratch file's id, or 0 for info */
	int writable;
	int pending;		/* info of a pending image: commit makes it */
	int dirty;
	int written;		/* a write(2) came */
	int error;		/* a refused write: nothing is committed */
	int at_release;		/* commit the empty text at release */
	int lazy;		/* read-only info: render at the first read */
	int mutable;		/* of an image that can change: no page cache
				 * kept from one open to the next */
	int flushed;
	int result;		/* of the commit, for every later flush */
	char *buf;
	size_t len;
	size_t cap;
};

static void changed(struct fs *fs, const struct image *img);
static void image_changed(struct fs *fs, int64_t row);

/* Temporary links (ln -sf's) live in a peer folder: keyed by its inode. */
static int64_t link_holder(uint64_t folder)
{
	return -(int64_t)folder;
}

/* The name GNU ln gives a link it will rename over another: CuXXXXXX. */
static int ln_temp_name(const char *name)
{
	if (strncmp(name, "Cu", 2) || strlen(name) != 8)
		return 0;
	for (int i = 2; i < 8; i++)
		if (!isalnum((unsigned char)name[i]))
			return 0;
	return 1;
}

static struct scratch *scratch_get(struct fs *fs, int64_t id)
{
	for (struct scratch *s = fs->scratch; s; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

static struct scratch *scratch_named(struct fs *fs, int64_t row,
				     const char *name)
{
	for (struct scratch *s = fs->scratch; s; s = s->next)
		if (s->row == row && !s->alias && !strcmp(s->name, name))
			return s;
	return NULL;
}

static void scratch_entry(struct fs *fs, const struct scratch *s,
			  struct entry *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = ino_make(N_SCRATCH, s->id);
	e->st.st_ino = e->ino;
	e->st.st_mode = s->row < 0 ? S_IFLNK | 0777 : S_IFREG | 0644;
	e->st.st_nlink = 1;
	e->st.st_uid = fs->uid;
	e->st.st_gid = fs->gid;
	e->st.st_size = s->len;
	e->st.st_blksize = 4096;
	e->st.st_blocks = (s->len + 511) / 512;
	e->st.st_atime = e->st.st_mtime = e->st.st_ctime = s->mtime;
	e->mutable = 1;
}

int scratch_getattr(struct fs *fs, int64_t id, struct entry *e)
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

/* The info of a pending image exists while a writer has it open. */
static struct open_file *pending_writer(struct fs *fs, int64_t row)
{
	for (struct open_file *of = fs->open_files; of; of = of->next)
		if (of->row == row && of->pending && !of->scratch)
			return of;
	return NULL;
}

static void pending_info_entry(struct fs *fs, const struct open_file *of,
			       struct entry *e)
{
	struct scratch s = { .len = of->len, .mtime = time(NULL) };

	scratch_entry(fs, &s, e);
	e->ino = mutable_ino(N_INFO, of->row);
	e->st.st_ino = e->ino;
}

int scratch_readlink(struct fs *fs, int64_t id, char *buf, size_t size)
{
	struct scratch *s = scratch_get(fs, id);

	if (!s || s->row >= 0)
		return -EINVAL;
	if (s->len >= size)
		return -ENAMETOOLONG;
	memcpy(buf, s->data, s->len);
	buf[s->len] = 0;
	return 0;
}

int scratch_link_lookup(struct fs *fs, uint64_t folder, const char *name,
			struct entry *e)
{
	return scratch_lookup(fs, link_holder(folder), name, e);
}

int scratch_lookup(struct fs *fs, int64_t row, const char *name,
		   struct entry *e)
{
	struct scratch *s = scratch_named(fs, row, name);

	if (!s)
		return -ENOENT;
	scratch_entry(fs, s, e);
	return 0;
}

int image_children(struct fs *fs, int64_t row, uint64_t off, fill_cb cb,
		   void *ctx)
{
	struct image img;
	struct entry e;
	int rc;

	if (off < 3) {
		rc = fs->b->ops->get(fs->b, row, &img);
		if (rc)
			return rc;
		if (!img.pending) {
			info_entry(fs, &img, &e);
			if (cb(ctx, "info", &e, 3))
				return 0;
		}
	}
	/* scratch ids only grow: the list is newest first, walk it back */
	for (int64_t last = off < 3 ? 0 : (int64_t)off - 3;;) {
		struct scratch *next = NULL;

		for (struct scratch *s = fs->scratch; s; s = s->next)
			if (s->row == row && !s->alias && s->id > last &&
			    (!next || s->id < next->id))
				next = s;
		if (!next)
			return 0;
		scratch_entry(fs, next, &e);
		if (cb(ctx, next->name, &e, (uint64_t)next->id + 3))
			return 0;
		last = next->id;
	}
}

static void scratch_remove(struct fs *fs, struct scratch *s)
{
	for (struct scratch **p = &fs->scratch; *p; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			free(s->data);
			free(s);
			return;
		}
	}
}

void scratch_free_all(struct fs *fs)
{
	while (fs->scratch)
		scratch_remove(fs, fs->scratch);
}

static int scratch_new(struct fs *fs, int64_t row, const char *name,
		       struct scratch **out)
{
	struct scratch *s;
	int n = 0;

	for (s = fs->scratch; s; s = s->next)
		n++;
	if (n >= SCRATCH_MAX_FILES)
		return -ENOSPC;
	if (strlen(name) >= sizeof(s->name))
		return -ENAMETOOLONG;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->id = fs->next_scratch++;
	s->row = row;
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->mtime = time(NULL);
	s->next = fs->scratch;
	fs->scratch = s;
	*out = s;
	return 0;
}

/* Where a name points in a parent: the parent node and, if any, the child. */
struct target {
	struct node parent;
	struct folder folder;
	struct image img;	/* when the child is an image */
	int found;
};

static int resolve(struct fs *fs, uint64_t parent, const char *name,
		   struct target *t)
{
	int rc = fs_node(fs, parent, &t->parent);

	t->found = 0;
	if (rc)
		return rc;
	if (t->parent.type == N_FOLDER || t->parent.type == N_PEER) {
		t->folder.region = t->parent.region->name;
		t->folder.kind = t->parent.type == N_PEER ? KIND_SHARED :
				 t->parent.kind;
		t->folder.peer = t->parent.type == N_PEER ?
				 t->parent.peer : NULL;
		if (t->folder.kind != KIND_SHARED || t->parent.type == N_PEER) {
			rc = find_image(fs, &t->folder, name, &t->img);
			if (rc && rc != -ENOENT)
				return rc;
			t->found = !rc;
		}
	}
	return 0;
}

/* The errno for changing something in a read-only place. */
static int refuse(const struct node *n)
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

/* The image a directory inode is, if it is one of mine. */
static int my_image(struct fs *fs, uint64_t ino, struct image *img)
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

/* An entry name (U+FF0F for '/') as an image name, checked. */
static int entry_name(const char *entry, char *name, size_t size)
{
	char id[16];
	size_t len;
	int rc = name_parse(entry, name, size, id);

	if (rc)
		return rc;
	if (id[0]) {
		len = strlen(name);
		snprintf(name + len, size - len, " (%s)", id);
	}
	if (name[0] == '.')
		return -EPERM;	/* no dotfiles: a trash folder goes */
	return name_check(name);
}

int fs_mkdir(struct fs *fs, uint64_t parent, const char *name,
	     struct entry *e)
{
	char iname[1024];
	struct target t;
	int64_t row;
	int rc = resolve(fs, parent, name, &t);

	if (rc)
		return rc;
	if (t.parent.type != N_FOLDER ||
	    (t.parent.kind != KIND_CUSTOM && t.parent.kind != KIND_SHARED))
		return t.parent.type == N_PEER ? -EPERM : refuse(&t.parent);
	if (t.found)
		return -EEXIST;
	if (t.parent.kind == KIND_SHARED) {
		if (name[0] == '.')
			return -EPERM;
		rc = uin_check(name);
		if (!rc)
			rc = fs->b->ops->add_peer(fs->b, t.folder.region, name);
		if (rc)
			return rc;
		times_changed(fs, t.folder.region);
		return fs_lookup(fs, parent, name, e);
	}
	rc = entry_name(name, iname, sizeof(iname));
	if (!rc)
		rc = fs->b->ops->create_pending(fs->b, t.folder.region, iname,
						&row);
	if (rc)
		return rc;
	times_changed(fs, t.folder.region);
	return fs_getattr(fs, mutable_ino(N_IMAGE, row), e);
}

int fs_rmdir(struct fs *fs, uint64_t parent, const char *name)
{
	struct target t;
	struct scratch *s;
	int rc = resolve(fs, parent, name, &t);

	if (rc)
		return rc;
	if (t.parent.type == N_FOLDER && t.parent.kind == KIND_SHARED) {
		rc = fs->b->ops->remove_peer(fs->b, t.folder.region, name);
		goto out;
	}
	if (!t.found) {
		if (t.parent.type == N_PEER)
			return -ENOTDIR;	/* a share link */
		return t.parent.type == N_IMAGE ? -ENOTDIR : -ENOENT;
	}
	if (t.img.kind == KIND_SHARED)
		return -EPERM;
	if (t.img.kind != KIND_CUSTOM)
		return -EROFS;
	if (!t.img.pending)
		return -ENOTEMPTY;
	for (s = fs->scratch; s; s = s->next)
		if (s->row == t.img.row && !s->alias)
			return -ENOTEMPTY;
	rc = fs->b->ops->remove(fs->b, t.img.row);
out:
	if (!rc)
		times_changed(fs, t.folder.region);
	return rc;
}

/* Remember why an operation on an image failed (user.imagefs.error). */
static int failed(struct fs *fs, int64_t row, const char *what, int rc)
{
	const char *detail = NULL;
	char msg[320];

	if (rc >= 0 || !row || rc == -BACKEND_WAIT)
		return rc;
	if (fs->b->ops->why)
		detail = fs->b->ops->why(fs->b);
	snprintf(msg, sizeof(msg), "%s: %s%s%s%s", what, strerror(-rc),
		 detail ? " (" : "", detail ? detail : "", detail ? ")" : "");
	log_error("image %lld: %s", (long long)row, msg);
	fs_set_error(fs, row, msg);
	return rc;
}

int fs_unlink(struct fs *fs, uint64_t parent, const char *name)
{
	struct image img;
	struct share s;
	struct node n;
	int rc = fs_node(fs, parent, &n);

	if (rc)
		return rc;
	if (n.type == N_PEER) {
		struct scratch *tmp = scratch_named(fs, link_holder(parent),
						    name);

		if (tmp) {
			scratch_remove(fs, tmp);
			return 0;
		}
		rc = find_share(fs, n.region, n.peer, name, &s);
		if (rc == -ENOENT) {
			struct folder f = { n.region->name, KIND_SHARED,
					    n.peer };

			if (!find_image(fs, &f, name, &img))
				return -EPERM;
		}
		if (!rc)
			rc = fs->b->ops->unshare(fs->b, s.image, n.peer);
		if (rc)
			return failed(fs, s.image, "unshare", rc);
		image_changed(fs, s.image);
		return 0;
	}
	if (n.type != N_IMAGE)
		return refuse(&n);
	rc = fs->b->ops->get(fs->b, n.id, &img);
	if (rc)
		return rc;
	if (img.kind == KIND_SHARED && !strcmp(name, "info"))
		return -EPERM;
	if (img.kind != KIND_CUSTOM)
		return -EROFS;
	if (strcmp(name, "info")) {
		struct scratch *sc = scratch_named(fs, n.id, name);

		if (!sc)
			return -ENOENT;
		scratch_remove(fs, sc);
		return 0;
	}
	if (img.pending)
		return -ENOENT;
	rc = fs->b->ops->remove(fs->b, n.id);
	return failed(fs, n.id, "delete", rc);
}

/* Walk a symlink target from a peer folder to the image it names. */
static int link_image(struct fs *fs, uint64_t parent, const char *target,
		      struct image *img)
{
	char path[4096], *save = NULL, *part;
	uint64_t ino = parent;
	struct entry e;
	struct node n;
	int rc;

	if (target[0] == '/') {
		size_t m = strlen(fs->mountpoint);

		if (!fs->mountpoint[0] || strncmp(target, fs->mountpoint, m) ||
		    (target[m] != '/' && target[m]))
			return -EXDEV;	/* outside this mount */
		target += m;
		ino = FS_ROOT_INO;
	}
	if (snprintf(path, sizeof(path), "%s", target) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	for (part = strtok_r(path, "/", &save); part;
	     part = strtok_r(NULL, "/", &save)) {
		if (!strcmp(part, "."))
			continue;
		rc = fs_node(fs, ino, &n);
		if (rc)
			return rc;
		if (!strcmp(part, "..")) {
			/* up from shared/<uin>: shared, region, root */
			switch (n.type) {
			case N_PEER:
				ino = folder_ino(n.region, KIND_SHARED);
				break;
			case N_FOLDER:
				ino = ino_make(N_REGION, n.region->row);
				break;
			case N_REGION:
			case N_ROOT:
				ino = FS_ROOT_INO;
				break;
			default:
				return -EPERM;
			}
			continue;
		}
		rc = fs_lookup(fs, ino, part, &e);
		if (rc)
			return rc;
		ino = e.ino;
	}
	rc = fs_node(fs, ino, &n);
	if (rc)
		return rc;
	if (n.type != N_IMAGE)
		return -EPERM;
	return fs->b->ops->get(fs->b, n.id, img);
}

/* ln -sf makes a link under a temporary name, then renames it over. */
static int temp_link(struct fs *fs, uint64_t parent, const char *target,
		     const char *name, struct entry *e)
{
	int64_t holder = link_holder(parent);
	struct scratch *s;
	int rc;

	if (scratch_named(fs, holder, name))
		return -EEXIST;
	rc = scratch_new(fs, holder, name, &s);
	if (rc)
		return rc;
	s->data = strdup(target);
	if (!s->data) {
		scratch_remove(fs, s);
		return -ENOMEM;
	}
	s->len = strlen(target);
	scratch_entry(fs, s, e);
	return 0;
}

/* Rename a temporary link onto the image's name: share, if not yet. */
static int temp_link_rename(struct fs *fs, const struct node *n,
			    uint64_t parent, const char *name,
			    const char *newname)
{
	struct scratch *s = scratch_named(fs, link_holder(parent), name);
	char entry[512];
	struct image img;
	int rc;

	if (!s)
		return -EPERM;
	rc = link_image(fs, parent, s->data, &img);
	if (rc)
		return rc;
	rc = name_display(img.name, "", 0, entry, sizeof(entry));
	if (rc || strcmp(entry, newname))
		return -EINVAL;
	rc = fs->b->ops->share(fs->b, img.row, n->peer);
	if (rc == -EEXIST)
		rc = 0;		/* ln -sfn over the same share */
	if (rc)
		return failed(fs, img.row, "share", rc);
	scratch_remove(fs, s);
	changed(fs, &img);
	return 0;
}

int fs_symlink(struct fs *fs, const char *target, uint64_t parent,
	       const char *name, struct entry *e)
{
	char entry[512];
	struct image img;
	struct node n;
	int rc = fs_node(fs, parent, &n);

	if (rc)
		return rc;
	if (n.type != N_PEER)
		return n.type == N_IMAGE ? -EROFS : refuse(&n);
	rc = link_image(fs, parent, target, &img);
	if (rc)
		return rc;
	if (img.kind != KIND_CUSTOM || img.pending)
		return -EPERM;
	if (strcmp(img.region, n.region->name))
		return -EXDEV;
	rc = name_display(img.name, "", 0, entry, sizeof(entry));
	if (!rc && strcmp(entry, name) && ln_temp_name(name))
		return temp_link(fs, parent, target, name, e);
	if (rc || strcmp(entry, name))
		return -EINVAL;
	rc = fs->b->ops->share(fs->b, img.row, n.peer);
	if (rc)
		return failed(fs, img.row, "share", rc);
	changed(fs, &img);
	return fs_lookup(fs, parent, name, e);
}

/*
 * Queue what the kernel must drop after a change made in a request: the
 * image's attributes and info, and the listings that show its name.
 */
static void changed(struct fs *fs, const struct image *img)
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

static void image_changed(struct fs *fs, int64_t row)
{
	struct image img;

	if (!fs->b->ops->get(fs->b, row, &img))
		changed(fs, &img);
}

/* The keys a written text may carry for a committed image, and how. */
static int edit_check(const struct image *img, const struct info_text *t)
{
	char buf[64];
	int rc;

	for (int k = 0; k < INFO_NKEYS; k++) {
		const char *now;

		if (!t->v[k] || k == INFO_NAME || k == INFO_DESCRIPTION)
			continue;
		now = k < INFO_INSTANCE ? info_value(img, k, buf, sizeof(buf))
					: NULL;
		if (!now || strcmp(now, t->v[k]))
			return -EPERM;
	}
	if (t->v[INFO_NAME]) {
		rc = name_check(t->v[INFO_NAME]);
		if (rc)
			return rc;
	}
	if (t->v[INFO_DESCRIPTION])
		return description_check(t->v[INFO_DESCRIPTION]);
	return 0;
}

/* Apply an edited text to a committed image: NAME, then DESCRIPTION. */
static int edit_apply(struct fs *fs, const struct image *img,
		      const struct info_text *t)
{
	int rc = 0;

	if (t->v[INFO_NAME] && strcmp(t->v[INFO_NAME], img->name))
		rc = fs->b->ops->rename(fs->b, img->row, t->v[INFO_NAME]);
	if (!rc && t->v[INFO_DESCRIPTION] &&
	    strcmp(t->v[INFO_DESCRIPTION], img->description))
		rc = fs->b->ops->set_description(fs->b, img->row,
						 t->v[INFO_DESCRIPTION]);
	return rc;
}

/*
 * An import text says what the image is: OS_TYPE, OS_NAME or PLATFORM,
 * and ARCH; SHA256 is 64 lowercase hex digits. (Which URLs the service
 * takes is the backend's rule.) A text written line by line is complete
 * only at close: what is missing is said then.
 */
static int import_check(const struct spec *spec, int complete)
{
	if (complete && (!spec->os_type || !spec->arch ||
			 (!spec->os_name && !spec->platform)))
		return -EINVAL;
	if (spec->sha256 && (strlen(spec->sha256) != 64 ||
			     strspn(spec->sha256, "0123456789abcdef") != 64))
		return -EINVAL;
	return 0;
}

/* What a pending image's text asks for: a copy, or a spec to commit. */
static int pending_spec(const struct info_text *t, struct spec *spec,
			int complete)
{
	static const enum info_key allowed[] = {
		INFO_ID, INFO_NAME, INFO_DESCRIPTION, INFO_OS_NAME,
		INFO_OS_TYPE, INFO_PLATFORM, INFO_ARCH, INFO_INSTANCE,
		INFO_IMPORT_URL, INFO_SHA256,
	};
	const char *id = t->v[INFO_ID];
	int rc;

	memset(spec, 0, sizeof(*spec));
	if (t->v[INFO_DESCRIPTION]) {
		rc = description_check(t->v[INFO_DESCRIPTION]);
		if (rc)
			return rc;
	}
	spec->description = t->v[INFO_DESCRIPTION];
	if (id)
		return image_id_check(id);	/* a copy: other keys ignored */
	for (int k = 0; k < INFO_NKEYS; k++) {
		int ok = 0;

		for (size_t i = 0; i < sizeof(allowed) / sizeof(*allowed); i++)
			ok |= allowed[i] == (enum info_key)k;
		if (t->v[k] && !ok)
			return -EINVAL;
	}
	spec->instance = t->v[INFO_INSTANCE];
	if (spec->instance && (strncmp(spec->instance, "ins-", 4) ||
			       strlen(spec->instance) != 12))
		return -EINVAL;
	spec->import_url = t->v[INFO_IMPORT_URL];
	spec->os_name = t->v[INFO_OS_NAME];
	spec->os_type = t->v[INFO_OS_TYPE];
	spec->platform = t->v[INFO_PLATFORM];
	spec->arch = t->v[INFO_ARCH];
	if (spec->os_type && strcmp(spec->os_type, "linux") &&
	    strcmp(spec->os_type, "windows"))
		return -EINVAL;
	if (spec->arch && strcmp(spec->arch, "x86_64") &&
	    strcmp(spec->arch, "i386") && strcmp(spec->arch, "arm64"))
		return -EINVAL;
	spec->sha256 = t->v[INFO_SHA256];
	if (spec->import_url)
		return import_check(spec, complete);
	return spec->sha256 ? -EINVAL : 0;	/* SHA256 checks an import */
}

/*
 * Check (dry_run) or commit the text of an info file. For a pending image
 * it makes the image; for a committed one it applies NAME and DESCRIPTION.
 */
static int info_commit(struct fs *fs, int64_t row, const char *text,
		       size_t len, int dry_run)
{
	struct info_text t;
	struct image img;
	struct spec spec;
	int rc;

	if (len > INFO_MAX_BYTES)
		return -EFBIG;
	rc = fs->b->ops->get(fs->b, row, &img);
	if (rc)
		return rc;
	rc = info_parse(text, len, &t);
	if (rc)
		return rc;
	if (!img.pending) {
		rc = edit_check(&img, &t);
		if (!rc && !dry_run)
			rc = edit_apply(fs, &img, &t);
		goto out_free;
	}
	rc = pending_spec(&t, &spec, !dry_run);
	if (rc)
		goto out_free;
	spec.dry_run = dry_run;
	if (t.v[INFO_ID])
		rc = fs->b->ops->copy(fs->b, row, t.v[INFO_ID], &spec);
	else
		rc = fs->b->ops->commit(fs->b, row, &spec);
out_free:
	info_text_free(&t);
	if (!rc && !dry_run && !fs->b->ops->get(fs->b, row, &img))
		changed(fs, &img);
	return rc;
}

static int of_new(struct fs *fs, int64_t row, int64_t scratch, int writable,
		  struct open_file **out)
{
	struct open_file *of = calloc(1, sizeof(*of));

	if (!of)
		return -ENOMEM;
	of->row = row;
	of->scratch = scratch;
	of->writable = writable;
	of->next = fs->open_files;
	fs->open_files = of;
	*out = of;
	return 0;
}

static int of_reserve(struct open_file *of, size_t len)
{
	char *p;
	size_t cap = of->cap ? of->cap : 512;

	if (len <= of->cap)
		return 0;
	while (cap < len)
		cap *= 2;
	p = realloc(of->buf, cap);
	if (!p)
		return -ENOMEM;
	of->buf = p;
	of->cap = cap;
	return 0;
}

static int of_load(struct open_file *of, const char *data, size_t len)
{
	int rc = of_reserve(of, len);

	if (rc)
		return rc;
	if (len)
		memcpy(of->buf, data, len);
	of->len = len;
	return 0;
}

int fs_create(struct fs *fs, uint64_t parent, const char *name, int flags,
	      struct entry *e, struct open_file **out)
{
	struct scratch *s;
	struct image img;
	int rc = my_image(fs, parent, &img);

	if (rc)
		return rc == -EROFS && img.kind == KIND_SHARED ? -EROFS : rc;
	if (!strcmp(name, "info")) {
		if (!img.pending || pending_writer(fs, img.row)) {
			if (flags & O_EXCL)
				return -EEXIST;
			rc = fs_open(fs, mutable_ino(N_INFO, img.row), flags,
				     out);
			if (rc)
				return rc;
			return fs_getattr(fs, mutable_ino(N_INFO, img.row), e);
		}
		rc = of_new(fs, img.row, 0, 1, out);
		if (rc)
			return rc;
		(*out)->pending = 1;
		(*out)->dirty = 1;	/* touch alone commits the defaults */
		pending_info_entry(fs, *out, e);
		return 0;
	}
	s = scratch_named(fs, img.row, name);
	if (s && (flags & O_EXCL))
		return -EEXIST;
	if (!s) {
		rc = scratch_new(fs, img.row, name, &s);
		if (rc)
			return rc;
	}
	rc = fs_open(fs, ino_make(N_SCRATCH, s->id), flags, out);
	if (!rc)
		scratch_entry(fs, s, e);
	return rc;
}

int fs_open(struct fs *fs, uint64_t ino, int flags, struct open_file **out)
{
	int writable = (flags & O_ACCMODE) != O_RDONLY;
	struct open_file *pw;
	struct image img;
	struct node n;
	char *text = NULL;
	size_t len = 0;
	int rc = fs_node(fs, ino, &n);

	if (rc)
		return rc;
	if (n.type == N_SCRATCH) {
		struct scratch *s = scratch_get(fs, n.id);

		if (!s)
			return -ENOENT;
		if (s->alias)
			return fs_open(fs, mutable_ino(N_INFO, s->row), flags,
				       out);
		rc = of_new(fs, s->row, s->id, writable, out);
		if (!rc && (flags & O_TRUNC))
			s->len = 0;
		return rc;
	}
	if (n.type != N_INFO)
		return -EISDIR;
	pw = pending_writer(fs, n.id);
	if (pw) {
		rc = of_new(fs, n.id, 0, writable, out);
		if (!rc)
			rc = of_load(*out, pw->buf, pw->len);
		if (!rc)
			(*out)->pending = 1;
		return rc;
	}
	if (!writable) {
		/* rendered at the first read: a warm cat reads the cache */
		rc = of_new(fs, n.id, 0, 0, out);
		if (!rc) {
			(*out)->lazy = 1;
			(*out)->mutable = n.mutable;
		}
		return rc;
	}
	rc = fs->b->ops->get(fs->b, n.id, &img);
	if (rc)
		return rc;
	if (img.pending && img.kind == KIND_CUSTOM) {
		/* a new text for a pending image, as at create */
		rc = of_new(fs, img.row, 0, 1, out);
		if (!rc)
			(*out)->pending = (*out)->dirty = 1;
		return rc;
	}
	if (img.pending)
		return -ENOENT;
	if (writable) {
		if (img.kind == KIND_SHARED)
			return -EROFS;
		if (img.kind != KIND_CUSTOM)
			return -EROFS;
		/* the daily limit, as early as it is known */
		rc = fs->b->ops->check_ops(fs->b, img.region);
		if (rc)
			return failed(fs, n.id, "open", rc);
	}
	rc = fs_info_text(fs, n.id, &text, &len);
	if (rc)
		return rc;
	rc = of_new(fs, n.id, 0, writable, out);
	if (!rc && !(writable && (flags & O_TRUNC)))
		rc = of_load(*out, text, len);
	if (!rc && writable && (flags & O_TRUNC))
		(*out)->dirty = 1;
	free(text);
	return rc;
}

int fs_open_cacheable(const struct open_file *of)
{
	return !of->writable && !of->scratch && !of->pending && !of->mutable;
}

int fs_read(struct fs *fs, struct open_file *of, uint64_t ino, char *buf,
	    size_t size, off_t off, size_t *got)
{
	const char *data;
	size_t len;
	int rc;

	(void)ino;
	if (of->lazy) {
		char *text;

		rc = fs_info_text(fs, of->row, &text, &len);
		if (rc)
			return rc;
		free(of->buf);
		of->buf = text;
		of->len = of->cap = len;
		of->lazy = 0;
	}
	data = of->buf;
	len = of->len;
	if (of->scratch) {
		struct scratch *s = scratch_get(fs, of->scratch);

		if (!s)
			return -ENOENT;
		data = s->data;
		len = s->len;
	}
	*got = 0;
	if ((size_t)off < len) {
		*got = len - off < size ? len - off : size;
		memcpy(buf, data + off, *got);
	}
	return 0;
}

/* Write into a scratch file. */
static int scratch_write(struct fs *fs, struct open_file *of, const char *buf,
			 size_t size, off_t off)
{
	struct scratch *s = scratch_get(fs, of->scratch);
	size_t end = off + size;
	char *p;

	if (!s)
		return -ENOENT;
	if (end > SCRATCH_MAX_BYTES)
		return -EFBIG;
	if (end > s->len) {
		p = realloc(s->data, end);
		if (!p)
			return -ENOMEM;
		memset(p + s->len, 0, off > (off_t)s->len ? off - s->len : 0);
		s->data = p;
		s->len = end;
	}
	memcpy(s->data + off, buf, size);
	s->mtime = time(NULL);
	return 0;
}

int fs_write(struct fs *fs, struct open_file *of, const char *buf,
	     size_t size, off_t off)
{
	size_t end = off + size;
	int rc;

	if (!of->writable)
		return -EBADF;
	if (of->scratch)
		return scratch_write(fs, of, buf, size, off);
	if (of->error)
		return of->error;
	of->written = 1;
	if (end > INFO_MAX_BYTES) {
		of->error = -EFBIG;
		return failed(fs, of->row, "write", -EFBIG);
	}
	rc = of_reserve(of, end);
	if (rc)
		return rc;
	if ((size_t)off > of->len)
		memset(of->buf + of->len, 0, off - of->len);
	memcpy(of->buf + off, buf, size);
	if (end > of->len)
		of->len = end;
	of->dirty = 1;
	of->flushed = 0;
	/* a complete text is checked now: ">" ignores what close says */
	if (of->len && of->buf[of->len - 1] == '\n') {
		rc = info_commit(fs, of->row, of->buf, of->len, 1);
		if (rc == -BACKEND_WAIT)
			return rc;	/* made again, with the same bytes */
		if (rc) {
			of->error = rc;
			return failed(fs, of->row, "write", rc);
		}
	}
	return 0;
}

int fs_flush(struct fs *fs, struct open_file *of)
{
	int rc;

	if (!of->writable || of->scratch)
		return 0;
	if (of->error)
		return of->error;
	if (!of->dirty)
		return 0;
	if (of->flushed)
		return of->result;
	if (of->pending && !of->written) {
		/*
		 * Nothing written yet: touch, or a shell's '>' closing the
		 * fd it dup2'ed before the command writes. Say now whether
		 * the defaults would commit; do it at release if no text
		 * comes.
		 */
		int rc = info_commit(fs, of->row, "", 0, 1);

		if (rc == -BACKEND_WAIT)
			return rc;
		of->at_release = !rc;
		return failed(fs, of->row, "commit", rc);
	}
	rc = info_commit(fs, of->row, of->buf, of->len, 0);
	if (rc == -BACKEND_WAIT)
		return rc;
	of->at_release = 0;
	of->flushed = 1;
	of->result = rc;
	if (of->result)
		failed(fs, of->row, "commit", of->result);
	else
		of->pending = 0;
	return of->result;
}

int fs_release(struct fs *fs, struct open_file *of, int final)
{
	int rc;

	if (of->at_release && !of->written && !of->error) {
		rc = info_commit(fs, of->row, "", 0, 0);
		if (rc == -BACKEND_WAIT && !final)
			return rc;
		if (rc == -BACKEND_WAIT)
			rc = -fs_wait_errno(fs);
		if (!rc)
			of->pending = 0;
		failed(fs, of->row, "commit", rc);
	}
	for (struct open_file **p = &fs->open_files; *p; p = &(*p)->next) {
		if (*p == of) {
			*p = of->next;
			break;
		}
	}
	free(of->buf);
	free(of);
	return 0;
}

/* The info of a pending image while it is being written. */
int pending_info_attr(struct fs *fs, int64_t row, struct entry *e)
{
	struct open_file *of = pending_writer(fs, row);

	if (!of)
		return -ENOENT;
	pending_info_entry(fs, of, e);
	return 0;
}

#define ALIASES_KEPT 32

/*
 * Rename a scratch file onto info: a write of info, committed now. The
 * kernel's "info" then names the scratch inode, so that inode stands for
 * info until the kernel has dropped it (the newest few are kept).
 */
static int scratch_onto_info(struct fs *fs, struct scratch *s)
{
	int rc = info_commit(fs, s->row, s->data ? s->data : "", s->len, 0);
	struct scratch *old, *p;
	int n = 0;

	if (rc)
		return failed(fs, s->row, "commit", rc);
	free(s->data);
	s->data = NULL;
	s->len = 0;
	s->alias = 1;
	for (p = fs->scratch, old = NULL; p; p = p->next)
		if (p->alias && ++n > ALIASES_KEPT)
			old = p;
	if (old)
		scratch_remove(fs, old);
	return 0;
}

/* Within one image directory: scratch files and info. */
static int rename_inside(struct fs *fs, int64_t row, const char *name,
			 const char *newname, unsigned int flags)
{
	struct scratch *s = scratch_named(fs, row, name);
	struct scratch *d = scratch_named(fs, row, newname);
	char *text;
	size_t len;
	int rc;

	if (!strcmp(name, "info")) {
		/* a backup of info: copy it, info itself stays */
		if (d && (flags & RENAME_NOREPLACE))
			return -EEXIST;
		rc = fs_info_text(fs, row, &text, &len);
		if (rc)
			return rc;
		if (!d)
			rc = scratch_new(fs, row, newname, &d);
		if (!rc) {
			free(d->data);
			d->data = text;
			d->len = len;
			return 0;
		}
		free(text);
		return rc;
	}
	if (!s)
		return -ENOENT;
	if (!strcmp(newname, "info")) {
		if (flags & RENAME_NOREPLACE) {
			struct entry e;

			if (!fs_lookup(fs, mutable_ino(N_IMAGE, row), "info",
				       &e))
				return -EEXIST;
		}
		return scratch_onto_info(fs, s);
	}
	if (d) {
		if (flags & RENAME_NOREPLACE)
			return -EEXIST;
		scratch_remove(fs, d);
	}
	snprintf(s->name, sizeof(s->name), "%s", newname);
	return 0;
}

int fs_rename(struct fs *fs, uint64_t parent, const char *name,
	      uint64_t newparent, const char *newname, unsigned int flags)
{
	char iname[1024];
	struct target from, to;
	struct image img;
	int rc;

	if (flags & RENAME_EXCHANGE)
		return -EINVAL;
	rc = fs_node(fs, parent, &from.parent);
	if (rc)
		return rc;
	if (from.parent.type == N_IMAGE) {
		rc = my_image(fs, parent, &img);
		if (rc)
			return rc == -EROFS && img.kind == KIND_SHARED ?
			       -EPERM : rc;
		if (newparent != parent)
			return -EXDEV;
		return rename_inside(fs, img.row, name, newname, flags);
	}
	rc = resolve(fs, parent, name, &from);
	if (rc)
		return rc;
	if (from.parent.type != N_FOLDER || from.parent.kind != KIND_CUSTOM) {
		if (from.parent.type == N_PEER && newparent == parent &&
		    !from.found && !(flags & RENAME_NOREPLACE))
			return temp_link_rename(fs, &from.parent, parent, name,
						newname);
		if (from.parent.type == N_PEER)
			return -EPERM;
		return refuse(&from.parent);
	}
	if (!from.found)
		return -ENOENT;
	rc = resolve(fs, newparent, newname, &to);
	if (rc)
		return rc;
	if (to.parent.type != N_FOLDER || to.parent.kind != KIND_CUSTOM)
		return to.parent.type == N_FOLDER ? refuse(&to.parent) :
		       -EXDEV;
	if (to.parent.region != from.parent.region)
		return -EXDEV;
	if (to.found && to.img.row == from.img.row)
		return 0;
	if (to.found) {
		if (flags & RENAME_NOREPLACE)
			return -EEXIST;
		if (!to.img.pending)
			return -ENOTEMPTY;
		rc = fs_rmdir(fs, newparent, newname);
		if (rc)
			return rc;
	}
	rc = entry_name(newname, iname, sizeof(iname));
	if (!rc)
		rc = fs->b->ops->rename(fs->b, from.img.row, iname);
	if (rc)
		return failed(fs, from.img.row, "rename", rc);
	if (!fs->b->ops->get(fs->b, from.img.row, &img))
		changed(fs, &img);
	return 0;
}

int fs_setattr(struct fs *fs, uint64_t ino, const struct stat *st, int set,
	       struct entry *e)
{
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
	if (set & FS_SET_SIZE) {
		struct scratch *s = n.type == N_SCRATCH ?
				    scratch_get(fs, n.id) : NULL;

		if (s && (size_t)st->st_size <= s->len) {
			s->len = st->st_size;
		} else if (n.type == N_INFO && st->st_size == 0) {
			/* truncate(info): the writer that follows sets it */
			for (struct open_file *of = fs->open_files; of;
			     of = of->next)
				if (of->row == n.id && of->writable &&
				    !of->scratch) {
					of->len = 0;
					of->dirty = 1;
				}
		} else if (!s || (size_t)st->st_size > SCRATCH_MAX_BYTES) {
			return -EPERM;
		} else {
			char *p = realloc(s->data, st->st_size);

			if (!p)
				return -ENOMEM;
			memset(p + s->len, 0, st->st_size - s->len);
			s->data = p;
			s->len = st->st_size;
		}
		return fs_getattr(fs, ino, e);
	}
	return 0;	/* modes and times: accepted, nothing to keep */
}

#define ERRORS_KEPT 256

struct last_error {
	struct last_error *next;
	int64_t row;
	char msg[320];
};

void fs_set_error(struct fs *fs, int64_t row, const char *msg)
{
	struct last_error **p, *e = NULL;
	int n = 0;

	for (p = &fs->errors; *p; p = &(*p)->next) {
		if ((*p)->row == row || ++n >= ERRORS_KEPT) {
			e = *p;
			*p = e->next;	/* taken out, put back first */
			break;
		}
	}
	if (!e)
		e = calloc(1, sizeof(*e));
	if (!e)
		return;
	e->row = row;
	snprintf(e->msg, sizeof(e->msg), "%s", msg);
	e->next = fs->errors;
	fs->errors = e;
}

const char *fs_last_error(struct fs *fs, int64_t row)
{
	for (struct last_error *e = fs->errors; e; e = e->next)
		if (e->row == row)
			return e->msg;
	return NULL;
}

void errors_free_all(struct fs *fs)
{
	while (fs->errors) {
		struct last_error *e = fs->errors;

		fs->errors = e->next;
		free(e);
	}
}
