/* SPDX-License-Identifier: GPL-2.0 */
/*
 * inode.h - what an inode number names, the attributes of each kind of
 * node, and which inodes a change makes stale. The ground floor of fs/:
 * every other file builds on it, and it calls none of them.
 *
 * The inode numbers themselves (ino_make, mutable_ino, fs_node) and
 * fs_change are declared in fs.h, for fs/ops.c.
 */
#ifndef IMAGEFS_INODE_H
#define IMAGEFS_INODE_H

#include <stdint.h>
#include <time.h>

#include "fs.h"

/* The region called name, or NULL. */
const struct region *fs_region(struct fs *fs, const char *name);

/* The inode of <region>/<kind>/, and of <region>/shared/<uin>/. */
uint64_t folder_ino(const struct region *r, enum image_kind kind);
uint64_t peer_ino(const struct region *r, const char *uin);

/* Custom and shared images change; public and market ones never do. */
int kind_mutable(enum image_kind k);

/*
 * The attributes of a directory (st_nlink = 2 + subdirs) and of a file or
 * symlink (mode holds the type), owned by the mounting user, times t.
 * The entry's name is taken to stay (e->mutable = 0).
 */
void dir_entry(struct fs *fs, struct entry *e, uint64_t ino, mode_t mode,
	       int subdirs, time_t t);
void file_entry(struct fs *fs, struct entry *e, uint64_t ino, mode_t mode,
		off_t size, time_t t);

/* The entries of an image's directory, its info, a share link, a peer. */
void image_entry(struct fs *fs, const struct image *img, struct entry *e);
void info_entry(struct fs *fs, const struct image *img, struct entry *e);
void link_entry(struct fs *fs, const struct share *s, struct entry *e);
void peer_entry(struct fs *fs, const struct region *r, const struct peer *p,
		struct entry *e);

/*
 * Directory times: the newest change of what a directory holds, so that
 * they stay the same across remounts and move when the content does. A
 * folder with nothing known takes its region's time, a region the top's,
 * and an empty tree the mount time. region_summary() reads what the
 * backend has at hand (all zero when it cannot say).
 */
void region_summary(struct fs *fs, const struct region *r, struct summary *s);
time_t root_time(struct fs *fs);
time_t region_time(struct fs *fs, const struct summary *s);
time_t folder_time(struct fs *fs, const struct summary *s,
		   enum image_kind kind);

/*
 * The name of share s's link: its image's name as custom/ shows it,
 * without the suffix of a repeated name, with its id when link_needs_id().
 * 0 or -ENAMETOOLONG.
 */
int share_entry(struct fs *fs, const struct share *s, char *out,
		size_t size);

/* A share link's target, "../../custom/<entry name>": length or -errno. */
int link_target(struct fs *fs, const struct share *s, char *buf,
		size_t size);

/*
 * The errno for a change in node n, which does not take it: EPERM at the
 * top, in a region and in custom/, EROFS elsewhere.
 */
int refuse(const struct node *n);

/*
 * The image directory ino, when it is my own custom image: 0, or the
 * errno of changing it (img is filled in when the image exists).
 */
int my_image(struct fs *fs, uint64_t ino, struct image *img);

/*
 * Tell the kernel what a change made in a request makes stale: the image's
 * attributes and info, and the listings that show its name. By row: the
 * image as the backend has it now (nothing when it is gone).
 */
void image_changed(struct fs *fs, const struct image *img);
void row_changed(struct fs *fs, int64_t row);

/* Something in region changed: the times of the region and the top move. */
void times_changed(struct fs *fs, const char *region);

#endif /* IMAGEFS_INODE_H */
