// SPDX-License-Identifier: GPL-2.0
/*
 * imagerow.c - an image read from a row of a SQLite catalog of images.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "imagerow.h"
#include "../mountopts/log.h"

/* Column col into dst whole: -EOVERFLOW (and dst "") when it does not fit. */
static int text(char *dst, size_t size, sqlite3_stmt *st, int col)
{
	const unsigned char *s = sqlite3_column_text(st, col);
	size_t n = s ? (size_t)sqlite3_column_bytes(st, col) : 0;

	if (n >= size) {
		dst[0] = 0;
		return -EOVERFLOW;
	}
	memcpy(dst, s ? (const char *)s : "", n);
	dst[n] = 0;
	return 0;
}

int image_from_row(sqlite3_stmt *st, int col, struct image *img)
{
	int rc = 0;

	memset(img, 0, sizeof(*img));
	img->row = sqlite3_column_int64(st, col);
	rc |= text(img->id, sizeof(img->id), st, col + 1);
	rc |= text(img->region, sizeof(img->region), st, col + 2);
	img->kind = kind_parse((const char *)sqlite3_column_text(st,
								 col + 3));
	rc |= text(img->owner, sizeof(img->owner), st, col + 4);
	rc |= text(img->name, sizeof(img->name), st, col + 5);
	rc |= text(img->os_name, sizeof(img->os_name), st, col + 6);
	rc |= text(img->os_type, sizeof(img->os_type), st, col + 7);
	rc |= text(img->platform, sizeof(img->platform), st, col + 8);
	rc |= text(img->arch, sizeof(img->arch), st, col + 9);
	img->bits = sqlite3_column_int(st, col + 10);
	img->size_gb = sqlite3_column_int(st, col + 11);
	rc |= text(img->state, sizeof(img->state), st, col + 12);
	img->progress = sqlite3_column_type(st, col + 13) == SQLITE_NULL ?
			-1 : sqlite3_column_int64(st, col + 13);
	img->created = sqlite3_column_int64(st, col + 14);
	img->mtime = sqlite3_column_int64(st, col + 15);
	rc |= text(img->description, sizeof(img->description), st, col + 16);
	rc |= text(img->source, sizeof(img->source), st, col + 17);
	rc |= text(img->provider, sizeof(img->provider), st, col + 18);
	rc |= text(img->price, sizeof(img->price), st, col + 19);
	rc |= text(img->error, sizeof(img->error), st, col + 20);
	rc |= text(img->format, sizeof(img->format), st, col + 21);
	rc |= text(img->sha256, sizeof(img->sha256), st, col + 22);
	rc |= text(img->shared_with, sizeof(img->shared_with), st, col + 23);
	img->dup = sqlite3_column_int(st, col + 24);
	img->pending = !strcmp(img->state, "PENDING");
	if (img->pending)
		img->state[0] = 0;
	if (rc) {
		log_warn("image row %lld: a text is longer than imagefs shows: "
			 "left out", (long long)img->row);
		return -EOVERFLOW;
	}
	return 0;
}

void summary_from_row(sqlite3_stmt *st, struct summary *s)
{
	for (int k = 0; k < KIND_COUNT; k++)
		s->mtime[k] = sqlite3_column_int64(st, k);
	s->images = sqlite3_column_int(st, KIND_COUNT);
	s->disk_gb = sqlite3_column_int64(st, KIND_COUNT + 1);
	s->images_max = sqlite3_column_int(st, KIND_COUNT + 2);
}
