/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tree.h - finding what a name in a folder is, for the files that change
 * the tree. The tree's own calls (fs_lookup, fs_getattr, fs_readdir,
 * fs_readlink, fs_statfs, fs_setattr, fs_init) are declared in fs.h.
 */
#ifndef IMAGEFS_TREE_H
#define IMAGEFS_TREE_H

#include "fs.h"

/*
 * The image called entry (an entry name: U+FF0F for '/', a " (img-...)"
 * suffix for a later holder of a name) in folder f: 0 or -ENOENT.
 */
int find_image(struct fs *fs, const struct folder *f, const char *entry,
	       struct image *out);

/* My share named entry in r/shared/<peer>/: 0 or -ENOENT. */
int find_share(struct fs *fs, const struct region *r, const char *peer,
	       const char *entry, struct share *out);

/*
 * Whether uin can name a peer folder: digits, and not the mounting account
 * (no sharing with yourself). 0 or -EINVAL.
 */
int peer_check(struct fs *fs, const char *uin);

#endif /* IMAGEFS_TREE_H */
