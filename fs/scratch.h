/* SPDX-License-Identifier: GPL-2.0 */
/*
 * scratch.h - files that live only in the daemon's memory: the temporary
 * files editors and tools make next to info (vim's swap file, sed's
 * sedXXXXXX, info~, ... only the names scratch_name_ok() knows) and the
 * temporary links GNU ln -sf makes in a peer folder before renaming them
 * over a share. They are kept per holder: an image directory's row, or
 * scratch_link_holder() of a peer folder, at most SCRATCH_MAX_FILES each.
 *
 * Each has an id, which only grows; its inode is ino_make(N_SCRATCH, id).
 * A file renamed onto info becomes an alias: it stands for that image's
 * info until the kernel has dropped its inode, and is no longer listed.
 */
#ifndef IMAGEFS_SCRATCH_H
#define IMAGEFS_SCRATCH_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "fs.h"

#define SCRATCH_MAX_BYTES	(1 << 20)	/* one editor's file */
#define SCRATCH_MAX_FILES	16		/* in one directory */

struct scratch {
	struct scratch *next;
	int64_t id;
	int64_t row;		/* the holder: an image's row, or < 0 for a
				 * temporary link (scratch_link_holder) */
	char name[256];
	char *data;		/* a link's target */
	size_t len;
	time_t mtime;
	int link;		/* a symlink: data is its target */
	int alias;		/* renamed onto info: stands for info now */
};

/*
 * Whether editors and tools make a scratch file called name beside info:
 * 1 for a file, 2 for a symlink (emacs's lock .#info), else 0. The names
 * are listed in the README: vim's .info.swp (.swo, ...), .info.swpx and
 * 4913; info~ and info.~N~ of editors and of cp, mv and install --backup;
 * sed -i's sedXXXXXX; GIO's .goutputstream-XXXXXX; rsync's .info.XXXXXX;
 * patch's info.XXXXXXX; perl -i's XXXXXXXX; emacs's #info# and .#info;
 * nano's info.save and info.save.N.
 */
int scratch_name_ok(const char *name);

/* The holder of the temporary links in the peer folder of inode folder. */
static inline int64_t scratch_link_holder(uint64_t folder)
{
	return -(int64_t)folder;
}

/* By id (aliases too), or NULL. */
struct scratch *scratch_get(struct fs *fs, int64_t id);

/* The file called name of holder row, or NULL. */
struct scratch *scratch_named(struct fs *fs, int64_t row, const char *name);

/* The file of holder row with the least id above after, or NULL. */
struct scratch *scratch_next(struct fs *fs, int64_t row, int64_t after);

/*
 * Make an empty file called name in holder row: -ENOSPC when the holder
 * has SCRATCH_MAX_FILES, -ENAMETOOLONG.
 */
int scratch_new(struct fs *fs, int64_t row, const char *name,
		struct scratch **out);

/*
 * Make a symlink called name to target in holder row (ln -sf's temporary
 * link, emacs's lock): -EEXIST, or as scratch_new. e: its attributes.
 */
int scratch_symlink(struct fs *fs, int64_t row, const char *name,
		    const char *target, struct entry *e);

void scratch_remove(struct fs *fs, struct scratch *s);
void scratch_free_all(struct fs *fs);

/* The attributes of s: a regular file, or a symlink. */
void scratch_entry(struct fs *fs, const struct scratch *s, struct entry *e);

/* The target of scratch link id into buf: 0, -EINVAL, -ENAMETOOLONG. */
int scratch_readlink(struct fs *fs, int64_t id, char *buf, size_t size);

/* Write into s at off: -EFBIG past SCRATCH_MAX_BYTES. */
int scratch_write(struct scratch *s, const char *buf, size_t size, off_t off);

/* Cut s to size, or extend it with zeros: -EFBIG past SCRATCH_MAX_BYTES. */
int scratch_resize(struct scratch *s, size_t size);

/* s now stands for its image's info: its data goes, old aliases too. */
void scratch_alias(struct fs *fs, struct scratch *s);

#endif /* IMAGEFS_SCRATCH_H */
