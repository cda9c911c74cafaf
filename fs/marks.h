/* SPDX-License-Identifier: GPL-2.0 */
/*
 * marks.h - images marked for deletion. An image is deleted only by
 * removing its directory: unlinking info marks the image (its directory
 * then shows no info), the rmdir that follows deletes it, creating info
 * again is an edit of the same image and takes the mark away. A mark is
 * this daemon's alone, in memory, and lapses MARK_SECONDS after it was
 * made: the image stays, and shows its info again.
 *
 * Tools unlink and create at once (tar -x, cp --remove-destination,
 * install) or unlink and rmdir at once (rm -r, a file manager's delete);
 * a person who runs rm info and then rmdir has a minute.
 */
#ifndef IMAGEFS_MARKS_H
#define IMAGEFS_MARKS_H

#include <stdint.h>

#include "fs.h"

#define MARK_SECONDS	60

/* Mark image row: 0 or -ENOMEM. */
int mark_set(struct fs *fs, int64_t row);

/* Whether image row is marked (a mark that lapsed is dropped first). */
int marked(struct fs *fs, int64_t row);

/* Take the mark of image row away (no mark: nothing happens). */
void mark_clear(struct fs *fs, int64_t row);

void marks_free_all(struct fs *fs);

#endif /* IMAGEFS_MARKS_H */
