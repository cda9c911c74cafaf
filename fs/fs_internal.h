/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fs_internal.h - what the files of fs/ share among themselves.
 */
#ifndef IMAGEFS_FS_INTERNAL_H
#define IMAGEFS_FS_INTERNAL_H

#include "fs.h"

const struct region *fs_region(struct fs *fs, const char *name);
uint64_t folder_ino(const struct region *r, enum image_kind kind);
uint64_t peer_ino(const struct region *r, const char *uin);
void image_entry(struct fs *fs, const struct image *img, struct entry *e);
void info_entry(struct fs *fs, const struct image *img, struct entry *e);
/* "../../custom/<entry name>", its length or -errno */
int link_target(const char *name, char *buf, size_t size);
int find_image(struct fs *fs, const struct folder *f, const char *entry,
	       struct image *out);
int find_peer(struct fs *fs, const struct region *r, const char *uin,
	      struct peer *out);
int find_share(struct fs *fs, const struct region *r, const char *peer,
	       const char *entry, struct share *out);
int count_peers(struct fs *fs, const struct region *r);
/* Something in region changed: the times of the region and the top move. */
void times_changed(struct fs *fs, const char *region);

/* fs_write.c: scratch files of editors, inside custom image dirs */
int scratch_getattr(struct fs *fs, int64_t id, struct entry *e);
int scratch_lookup(struct fs *fs, int64_t row, const char *name,
		   struct entry *e);
int image_children(struct fs *fs, int64_t row, uint64_t off, fill_cb cb,
		   void *ctx);
void scratch_free_all(struct fs *fs);
void errors_free_all(struct fs *fs);
/* temporary links of ln -sf in a peer folder */
int scratch_readlink(struct fs *fs, int64_t id, char *buf, size_t size);
int scratch_link_lookup(struct fs *fs, uint64_t folder, const char *name,
			struct entry *e);
/* the info of a pending image while a writer has it open */
int pending_info_attr(struct fs *fs, int64_t row, struct entry *e);

#endif /* IMAGEFS_FS_INTERNAL_H */
