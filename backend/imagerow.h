/* SPDX-License-Identifier: GPL-2.0 */
/*
 * imagerow.h - an image as a SQLite catalog of images gives it (the local
 * catalog, the cache's file): one order of columns, read in one place.
 */
#ifndef IMAGEFS_IMAGEROW_H
#define IMAGEFS_IMAGEROW_H

#include <sqlite3.h>

#include "backend.h"

/*
 * The columns from col on, in this order: row, id, region, kind (its folder
 * name, kind_names), owner, name, os_name, os_type, platform, arch, bits,
 * size_gb, state (PENDING: a pending image), progress (NULL: -1), created,
 * mtime, description, source, provider, price, error, format, sha256,
 * shared_with, dup. A NULL text is "". -EOVERFLOW (logged) when a text
 * does not fit whole: the caller leaves the image out.
 */
#define IMAGE_ROW_COLUMNS 25
int image_from_row(sqlite3_stmt *st, int col, struct image *img);

/*
 * A region's summary from a row of columns, in this order: the newest
 * mtime of each kind (KIND_COUNT of them), images, disk_gb, images_max.
 */
void summary_from_row(sqlite3_stmt *st, struct summary *s);

#endif /* IMAGEFS_IMAGEROW_H */
