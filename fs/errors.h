/* SPDX-License-Identifier: GPL-2.0 */
/*
 * errors.h - why the last operation on an image failed, per image row: the
 * log says it at once, user.imagefs.error (with -o xattr) keeps it. The
 * newest few hundred are kept.
 */
#ifndef IMAGEFS_ERRORS_H
#define IMAGEFS_ERRORS_H

#include <stdint.h>

#include "fs.h"

/*
 * Pass rc through; when it is an error of image row (not 0, nor a wait),
 * log it and keep "<what>: <strerror> (<the backend's detail>)" as row's
 * last error.
 */
int failed(struct fs *fs, int64_t row, const char *what, int rc);

/* Keep msg as the last error of row. */
void fs_set_error(struct fs *fs, int64_t row, const char *msg);

/* The last error of row, or NULL. */
const char *fs_last_error(struct fs *fs, int64_t row);

void errors_free_all(struct fs *fs);

#endif /* IMAGEFS_ERRORS_H */
