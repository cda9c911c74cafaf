// SPDX-License-Identifier: GPL-2.0
/*
 * share.c - share links in peer folders: the walk of a link's target to
 * the image it names, sharing, cancelling, and ln -sf's temporary links.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "inode.h"
#include "names.h"
#include "scratch.h"
#include "share.h"
#include "tree.h"

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

/* The name a link to img has (share_entry). */
static int link_name(const struct image *img, char *out, size_t size)
{
	return name_display(img->name, link_needs_id(img->name) ? img->id : "",
			    0, out, size);
}

int share_rename(struct fs *fs, const struct node *n, uint64_t parent,
		 const char *name, const char *newname)
{
	struct scratch *s = scratch_named(fs, scratch_link_holder(parent),
					  name);
	char entry[512];
	struct image img;
	int rc;

	if (!s)
		return -EPERM;
	rc = link_image(fs, parent, s->data, &img);
	if (rc)
		return rc;
	rc = link_name(&img, entry, sizeof(entry));
	if (rc || strcmp(entry, newname))
		return -EINVAL;
	rc = fs->b->ops->share(fs->b, img.row, n->peer);
	if (rc == -EEXIST)
		rc = 0;		/* ln -sfn over the same share */
	if (rc)
		return failed(fs, img.row, "share", rc);
	scratch_remove(fs, s);
	image_changed(fs, &img);
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
	if (n.type == N_IMAGE) {
		/* emacs's lock file: a scratch link; nothing else is kept */
		rc = my_image(fs, parent, &img);
		if (!rc && scratch_name_ok(name) != 2)
			rc = -EPERM;
		return rc ? rc : scratch_symlink(fs, n.id, name, target, e);
	}
	if (n.type != N_PEER)
		return refuse(&n);
	rc = link_image(fs, parent, target, &img);
	if (rc)
		return rc;
	if (img.kind != KIND_CUSTOM || img.pending)
		return -EPERM;
	if (strcmp(img.region, n.region->name))
		return -EXDEV;
	rc = link_name(&img, entry, sizeof(entry));
	if (!rc && strcmp(entry, name) && ln_temp_name(name))
		return scratch_symlink(fs, scratch_link_holder(parent), name,
				       target, e);
	if (rc || strcmp(entry, name))
		return -EINVAL;
	rc = fs->b->ops->share(fs->b, img.row, n.peer);
	if (rc)
		return failed(fs, img.row, "share", rc);
	image_changed(fs, &img);
	return fs_lookup(fs, parent, name, e);
}

int share_unlink(struct fs *fs, const struct node *n, uint64_t parent,
		 const char *name)
{
	struct scratch *tmp = scratch_named(fs, scratch_link_holder(parent),
					    name);
	struct image img;
	struct share s;
	int rc;

	if (tmp) {
		scratch_remove(fs, tmp);
		return 0;
	}
	rc = find_share(fs, n->region, n->peer, name, &s);
	if (rc == -ENOENT) {
		struct folder f = { n->region->name, KIND_SHARED, n->peer };

		/* an image shared with me; else gone (another daemon's rm) */
		rc = find_image(fs, &f, name, &img);
		return rc ? rc : -EPERM;
	}
	if (rc)
		return rc;
	rc = fs->b->ops->unshare(fs->b, s.image, n->peer);
	if (rc)
		return failed(fs, s.image, "unshare", rc);
	row_changed(fs, s.image);
	return 0;
}
