/* SPDX-License-Identifier: GPL-2.0 */
/*
 * share.h - sharing my images by symlink: <region>/shared/<uin>/<image> ->
 * ../../custom/<image> shares the image with <uin>, removing the link
 * cancels the share. fs_symlink (fs.h) is here; so are the temporary
 * links GNU ln -sf makes first (CuXXXXXX), which live as scratch files.
 */
#ifndef IMAGEFS_SHARE_H
#define IMAGEFS_SHARE_H

#include <stdint.h>

#include "fs.h"

/*
 * unlink(2) of name in peer folder n (inode parent): cancel the share, or
 * drop a temporary link; -EPERM for an image shared with me.
 */
int share_unlink(struct fs *fs, const struct node *n, uint64_t parent,
		 const char *name);

/*
 * rename(2) of temporary link name onto newname in the same peer folder
 * n: share the image it points to (again is no error). -EPERM when name
 * is no temporary link, -EINVAL when newname is not the image's name.
 */
int share_rename(struct fs *fs, const struct node *n, uint64_t parent,
		 const char *name, const char *newname);

#endif /* IMAGEFS_SHARE_H */
