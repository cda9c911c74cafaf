/* SPDX-License-Identifier: GPL-2.0 */
/*
 * errors.h - why the last operation on an image failed, per image row: the
 * log says it once, at once; user.imagefs.error (with -o xattr) keeps it.
 * The newest few hundred are kept.
 *
 * One line names the image, what was asked, the errno's words and why, with
 * what would make it pass:
 *
 *   ap-guangzhou/custom/one-more: commit: Resource temporarily unavailable:
 *   ap-guangzhou: 5 of 5 image operations used today; the next is possible
 *   at 00:00 UTC+8
 *
 * The why is what fs/ said with fs_why() (a text's syntax, a name), else
 * the backend's why op (the service's rule), else nothing.
 */
#ifndef IMAGEFS_ERRORS_H
#define IMAGEFS_ERRORS_H

#include <stdint.h>

#include "fs.h"

/*
 * Pass rc through; when it is an error of image row (not 0, nor a wait),
 * log it and keep it as row's last error, as above. The why is used up.
 */
int failed(struct fs *fs, int64_t row, const char *what, int rc);

/* Say why fs/ refuses what failed() will report next; returns rc. */
int fs_why(struct fs *fs, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The last error of row, or NULL. */
const char *fs_last_error(struct fs *fs, int64_t row);

void errors_free_all(struct fs *fs);

#endif /* IMAGEFS_ERRORS_H */
