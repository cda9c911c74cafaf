/* SPDX-License-Identifier: GPL-2.0 */
/*
 * files.h - open files: an image's info, and scratch files. fs_create,
 * fs_open, fs_read, fs_write, fs_flush and fs_release (fs.h) are here.
 *
 * A writer of info keeps its own buffer. The text is checked at each
 * write(2) that completes a line (a shell's ">" ignores what close(2)
 * says) and committed at the first flush, once: later flushes return the
 * same result. For a pending image the commit makes the image; for a
 * committed one it applies NAME and DESCRIPTION.
 */
#ifndef IMAGEFS_FILES_H
#define IMAGEFS_FILES_H

#include <stddef.h>
#include <stdint.h>

#include "fs.h"

/* The info text of committed image row (malloc'ed, *len bytes). */
int fs_info_text(struct fs *fs, int64_t row, char **text, size_t *len);

/*
 * The attributes of img's info. A pending image has one only while a
 * writer has it open (its text so far), else -ENOENT.
 */
int info_attr(struct fs *fs, const struct image *img, struct entry *e);

/*
 * Free the open files whose RELEASE never came: the kernel sends it after
 * close(2) returned, and an unmount may end the session first.
 */
void files_free_all(struct fs *fs);

/* truncate(2) of image row's info to nothing: its writers start over. */
void files_truncate_info(struct fs *fs, int64_t row);

/*
 * rename(2) inside image row's directory. A scratch file is renamed (onto
 * another it replaces it); renamed onto info, it is a write of info,
 * committed now. info itself stays: renamed away it is copied (a backup).
 */
int files_rename(struct fs *fs, int64_t row, const char *name,
		 const char *newname, unsigned int flags);

#endif /* IMAGEFS_FILES_H */
