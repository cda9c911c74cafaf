// SPDX-License-Identifier: GPL-2.0
/*
 * dirs.c - changing the tree by its directories: mkdir, rmdir, unlink and
 * rename (fs.h). mkdir in custom/ makes a pending image and in shared/ a
 * peer folder; unlinking info marks an image for deletion (marks.h), the
 * rmdir that follows deletes it, rmdir drops a pending image or a peer
 * folder; rename renames an image. What happens inside an image directory
 * is files.c's, inside a peer folder share.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "errors.h"
#include "files.h"
#include "inode.h"
#include "marks.h"
#include "names.h"
#include "scratch.h"
#include "share.h"
#include "tree.h"

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

/*
 * Nothing is made in an image directory but info and scratch files: EPERM
 * in mine, EROFS in one I cannot change.
 */
static int image_dir_refuse(struct fs *fs, uint64_t ino)
{
	struct image img;
	int rc = my_image(fs, ino, &img);

	return rc ? rc : -EPERM;
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
	if (t.parent.type == N_IMAGE)
		return image_dir_refuse(fs, parent);
	if (t.parent.type != N_FOLDER ||
	    (t.parent.kind != KIND_CUSTOM && t.parent.kind != KIND_SHARED))
		return t.parent.type == N_PEER ? -EPERM : refuse(&t.parent);
	if (t.found)
		return -EEXIST;
	if (t.parent.kind == KIND_SHARED) {
		if (name[0] == '.')
			return -EPERM;
		rc = peer_check(fs, name);
		if (!rc)
			rc = fs->b->ops->add_peer(fs->b, t.folder.region, name);
		if (rc)
			return rc;
		times_changed(fs, t.folder.region);
		return fs_lookup(fs, parent, name, e);
	}
	rc = name_of_entry(name, iname, sizeof(iname));
	if (!rc)
		rc = fs->b->ops->create_pending(fs->b, t.folder.region, iname,
						&row);
	if (rc)
		return rc;
	times_changed(fs, t.folder.region);
	return fs_getattr(fs, mutable_ino(N_IMAGE, row), e);
}

/* Whether image img's directory holds something: info or a scratch file. */
static int holds_files(struct fs *fs, const struct image *img)
{
	struct entry e;

	return !info_attr(fs, img, &e) || scratch_next(fs, img->row, 0);
}

int fs_rmdir(struct fs *fs, uint64_t parent, const char *name)
{
	struct target t;
	int rc = resolve(fs, parent, name, &t);

	if (rc)
		return rc;
	if (t.parent.type == N_FOLDER && t.parent.kind == KIND_SHARED) {
		rc = fs->b->ops->remove_peer(fs->b, t.folder.region, name);
		if (!rc)
			times_changed(fs, t.folder.region);
		return rc;
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
	/* a committed image is deleted once its info is unlinked (marked) */
	if (holds_files(fs, &t.img))
		return -ENOTEMPTY;
	rc = fs->b->ops->remove(fs->b, t.img.row);
	if (rc != -BACKEND_WAIT)
		mark_clear(fs, t.img.row);	/* gone, or refused: it stays */
	if (!rc)
		times_changed(fs, t.folder.region);
	return failed(fs, t.img.row, "delete", rc);
}

int fs_unlink(struct fs *fs, uint64_t parent, const char *name)
{
	struct image img;
	struct node n;
	int rc = fs_node(fs, parent, &n);

	if (rc)
		return rc;
	if (n.type == N_PEER)
		return share_unlink(fs, &n, parent, name);
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
	if (img.pending || marked(fs, n.id))
		return -ENOENT;
	/* every refusal of the delete now; the rmdir that follows does it */
	rc = fs->b->ops->check_remove(fs->b, n.id);
	if (!rc)
		rc = mark_set(fs, n.id);
	return failed(fs, n.id, "delete", rc);
}

int fs_rename(struct fs *fs, uint64_t parent, const char *name,
	      uint64_t newparent, const char *newname, unsigned int flags)
{
	char iname[1024];
	struct target from, to;
	int64_t replace = 0;
	int rc;

	if (flags & RENAME_EXCHANGE)
		return -EINVAL;
	rc = resolve(fs, parent, name, &from);
	if (rc)
		return rc;
	if (from.parent.type == N_IMAGE) {
		struct image img;

		rc = fs->b->ops->get(fs->b, from.parent.id, &img);
		if (rc)
			return rc;
		if (img.kind != KIND_CUSTOM)
			return img.kind == KIND_SHARED ? -EPERM : -EROFS;
		/*
		 * Out of its directory, mv and gio copy and unlink instead
		 * (an unlink only marks the image); info is never renamed.
		 */
		if (newparent != parent)
			return -EXDEV;
		if (!strcmp(name, "info"))
			return -EPERM;
		return files_rename(fs, img.row, name, newname, flags);
	}
	if (from.parent.type != N_FOLDER || from.parent.kind != KIND_CUSTOM) {
		if (from.parent.type == N_PEER && newparent == parent &&
		    !from.found && !(flags & RENAME_NOREPLACE))
			return share_rename(fs, &from.parent, parent, name,
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
	if (to.parent.type == N_IMAGE)
		return image_dir_refuse(fs, newparent);
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
		if (!to.img.pending || holds_files(fs, &to.img))
			return -ENOTEMPTY;
		replace = to.img.row;	/* dropped in the same change */
	}
	rc = name_of_entry(newname, iname, sizeof(iname));
	if (rc)
		fs_why(fs, rc, "%s: %s", newname, name_rule(rc));
	else
		rc = fs->b->ops->edit(fs->b, from.img.row, from.img.name,
				      iname, NULL, replace);
	if (rc)
		return failed(fs, from.img.row, "rename", rc);
	row_changed(fs, from.img.row);
	return 0;
}
