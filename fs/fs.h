/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fs.h - the filesystem without FUSE, as fs/ops.c calls it: inode numbers,
 * attributes, lookups, listings, changes, open files. fs/ops.c puts these
 * behind libfuse's low-level API; unit tests can call them directly.
 *
 * Each group of calls below says which file it is in. Those files share
 * more among themselves through their own headers, from the ground up:
 * inode.h (inode numbers, entries, invalidation), errors.h (the last error
 * of an image), scratch.h (in-memory scratch files), marks.h (images marked
 * for deletion), spec.h (what a written text asks for), files.h (open files
 * and commits), tree.h (finding names), share.h (share links).
 *
 * Inode numbers are computed, not stored: the low 3 bits say what a node
 * is, bit 3 whether an image can change (custom and shared ones), and the
 * rest which one (an image's catalog row, a region's row, a share's row, a
 * peer's account number). They are stable while mounted and need no table,
 * so FORGET has nothing to free.
 */
#ifndef IMAGEFS_FS_H
#define IMAGEFS_FS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include "../backend/backend.h"

#define FS_ROOT_INO	1
#define FS_MAX_REGIONS	64
#define INO_MUTABLE	8	/* the image of this inode can change */
#define INO_SHIFT	4

enum node_type {
	N_IMAGE,	/* <region>/<kind>/<image>/ (row) */
	N_INFO,		/* .../<image>/info (row) */
	N_LINK,		/* <region>/shared/<uin>/<image> symlink (share row) */
	N_PEER,		/* <region>/shared/<uin>/ (uin << 8 | region row) */
	N_REGION,	/* <region>/ (region row) */
	N_FOLDER,	/* <region>/<kind>/ (region row << 2 | kind) */
	N_SCRATCH,	/* an editor's temporary file (scratch id) */
	N_ROOT,
};

/* What an inode number names, decoded. */
struct node {
	enum node_type type;
	const struct region *region;	/* all but the root */
	enum image_kind kind;		/* N_FOLDER: which folder */
	int64_t id;			/* row, share row, scratch id */
	int mutable;			/* N_IMAGE, N_INFO: a custom or shared
					 * image, which can change */
	char peer[24];			/* N_PEER */
};

struct scratch;			/* scratch.h */
struct open_file;		/* files.c */
struct last_error;		/* errors.c */
struct mark;			/* marks.c */

struct fs {
	struct backend *b;
	struct region regions[FS_MAX_REGIONS];
	int nregions;
	/* the times the kernel was last given of the top and each region */
	int64_t told_root;
	int64_t told_region[FS_MAX_REGIONS];
	uid_t uid;
	gid_t gid;
	time_t mounted;
	int xattr;
	char mountpoint[4096];		/* absolute, for symlink targets */
	struct scratch *scratch;	/* editors' temporary files */
	struct open_file *open_files;	/* open info and scratch files */
	struct last_error *errors;	/* of image dirs, newest first */
	struct mark *marks;		/* images whose info was unlinked */
	char why[256];			/* why fs/ refused, for failed() */
	int64_t next_scratch;
	/*
	 * Called when the catalog changed behind the kernel (may be NULL).
	 * Only inodes are invalidated, never entries: the kernel takes the
	 * parent's lock for that, which a request of a daemon that dies can
	 * hold forever. Names that can change have short entry timeouts.
	 */
	void (*inval_inode)(void *ctx, uint64_t ino);
	/*
	 * Drop the kernel's listing of directory ino before the request
	 * under way replies, and once more later (may be NULL): for a change
	 * the kernel cannot see and its caller's next call must not miss.
	 * Directories only: their pages are locked only while a listing is
	 * copied out, never across a request.
	 */
	void (*inval_dir_now)(void *ctx, uint64_t ino);
	void *inval_ctx;
};

/* A directory entry with its attributes. */
struct entry {
	uint64_t ino;
	struct stat st;
	int mutable;	/* the name can change: a short entry timeout */
	/*
	 * It exists only while an open file keeps it (a pending image's
	 * info): neither its name nor its attributes are cached.
	 */
	int transient;
};

/* Called per listed entry; return non-zero when no more fit. */
typedef int (*fill_cb)(void *ctx, const char *name, const struct entry *e,
		       uint64_t next);

/* Inode numbers: inode.c */
uint64_t ino_make(enum node_type type, int64_t id);
/* The inode of a custom or shared image's directory or info. */
uint64_t mutable_ino(enum node_type type, int64_t row);
/* What inode number ino names: 0, or -ENOENT for no such region. */
int fs_node(struct fs *fs, uint64_t ino, struct node *n);

/* Invalidate what the kernel caches of a change made by another daemon. */
int fs_change(struct fs *fs, const struct change *c);

/* The tree: tree.c */
/* Start on backend b: its regions are read once. */
int fs_init(struct fs *fs, struct backend *b, int xattr);
/* Free what the daemon keeps in memory (scratch files, errors). */
void fs_destroy(struct fs *fs);
/* The errno of a request that waited too long (backend.h), never 0. */
int fs_wait_errno(const struct fs *fs);

int fs_lookup(struct fs *fs, uint64_t parent, const char *name,
	      struct entry *e);
int fs_getattr(struct fs *fs, uint64_t ino, struct entry *e);
/* List dir from cookie off (0 = start): ".", "..", then the children. */
int fs_readdir(struct fs *fs, uint64_t ino, uint64_t off, fill_cb cb,
	       void *ctx);
int fs_readlink(struct fs *fs, uint64_t ino, char *buf, size_t size);
int fs_statfs(struct fs *fs, uint64_t ino, struct statvfs *sv);

/* What fs_setattr is asked to set. */
#define FS_SET_MODE	(1 << 0)
#define FS_SET_UID	(1 << 1)
#define FS_SET_GID	(1 << 2)
#define FS_SET_SIZE	(1 << 3)
#define FS_SET_TIMES	(1 << 4)

/*
 * Owners can be set only to the mounting user; modes and times are taken
 * and dropped; a size cuts or extends a scratch file, cuts the text of of
 * (ftruncate of a writer of info), and 0 empties the text of info's open
 * writers (truncate by path, of NULL). e: the attributes after.
 */
int fs_setattr(struct fs *fs, uint64_t ino, struct open_file *of,
	       const struct stat *st, int set, struct entry *e);

/*
 * Extended attributes: xattr.c. getxattr answers the value's length when
 * size is 0, -ERANGE when it does not fit; listxattr likewise with the
 * names.
 */
int fs_getxattr(struct fs *fs, uint64_t ino, const char *name, char *buf,
		size_t size);
int fs_listxattr(struct fs *fs, uint64_t ino, char *buf, size_t size);
int fs_setxattr(struct fs *fs, uint64_t ino, const char *name);

/*
 * Marks of deletion that lapsed (marks.c): drop them and tell the kernel.
 * Returns the milliseconds until the next one lapses, or -1 for none.
 */
int fs_tick(struct fs *fs);

/* Changing directories: dirs.c */
int fs_mkdir(struct fs *fs, uint64_t parent, const char *name,
	     struct entry *e);
int fs_rmdir(struct fs *fs, uint64_t parent, const char *name);
int fs_unlink(struct fs *fs, uint64_t parent, const char *name);
int fs_rename(struct fs *fs, uint64_t parent, const char *name,
	      uint64_t newparent, const char *newname, unsigned int flags);

/* Sharing by symlink in a peer folder: share.c */
int fs_symlink(struct fs *fs, const char *target, uint64_t parent,
	       const char *name, struct entry *e);

/* Opening, writing and committing a file: files.c */
int fs_create(struct fs *fs, uint64_t parent, const char *name, int flags,
	      struct entry *e, struct open_file **of);
int fs_open(struct fs *fs, uint64_t ino, int flags, struct open_file **of);
int fs_read(struct fs *fs, struct open_file *of, uint64_t ino, char *buf,
	    size_t size, off_t off, size_t *got);
int fs_write(struct fs *fs, struct open_file *of, const char *buf,
	     size_t size, off_t off);
int fs_flush(struct fs *fs, struct open_file *of);
/* Release an open file: nothing is committed there (flush commits). */
void fs_release(struct fs *fs, struct open_file *of);
/* whether reads of an open file may come from the page cache */
int fs_open_cacheable(const struct open_file *of);

#endif /* IMAGEFS_FS_H */
