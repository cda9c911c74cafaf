/* SPDX-License-Identifier: GPL-2.0 */
/*
 * files.h - open files: an image's info, and scratch files. fs_create,
 * fs_open, fs_read, fs_write, fs_flush and fs_release (fs.h) are here.
 *
 * A reader of info reads the image's own text (a pending image has none:
 * it reads empty). A writer keeps its own text, which no other open file
 * sees; O_TRUNC empties it. The text is parsed as its lines come, each
 * byte once, and checked at each write(2) that completes a line with a
 * key (at most one check, one dry run of the backend, per write: a shell's
 * ">" ignores what close(2) says). It is committed at the first flush,
 * empty or not (touch), so that close(2) says what was stored; later
 * flushes return the same result until more is written. For a pending
 * image the commit makes the image; for a committed one it applies NAME
 * and DESCRIPTION. A text written after the flush that made the image (a
 * shell's ">" closes the fd it dup2'ed before the command writes) makes
 * it again at the next flush, as the same one operation (an amend); a
 * refused one makes it pending again. Creating info in a directory whose
 * info was unlinked (marks.h) is a writer of that image's info, with an
 * empty text.
 */
#ifndef IMAGEFS_FILES_H
#define IMAGEFS_FILES_H

#include <stddef.h>
#include <stdint.h>

#include "fs.h"

/* The info text of committed image row (malloc'ed, *len bytes). */
int fs_info_text(struct fs *fs, int64_t row, char **text, size_t *len);

/*
 * The attributes of img's info: -ENOENT while the image is marked, and for
 * a pending image unless a writer keeps it: one open, that no close(2)
 * refused (its size is then 0: the image has no text yet; the entry is
 * transient). A refused close drops the kernel's listing of the directory.
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
 * ftruncate(2) of open file of, a writer of info: its own text cut to size
 * (-EPERM to make it longer, -EBADF for a reader).
 */
int files_truncate(struct open_file *of, size_t size);

/*
 * rename(2) of a scratch file inside image row's directory (info itself is
 * never renamed: fs_rename says EPERM). Onto another it replaces it; onto
 * a name that is no scratch name, EPERM; onto info, it is a write of info,
 * committed now.
 */
int files_rename(struct fs *fs, int64_t row, const char *name,
		 const char *newname, unsigned int flags);

#endif /* IMAGEFS_FILES_H */
