// SPDX-License-Identifier: GPL-2.0
/*
 * rows.c - the image rows a request read, packed, for the requests that
 * ask for them again: a listing reads every image of a folder, then find
 * or ls -R asks for each image directory; stat looks an image up, then its
 * info; cat then opens and reads it. A hit costs a memory copy instead of
 * a query (and the 13 allocations of its text columns).
 *
 * The rows are valid while the catalog is as it was when they were read:
 * the same PRAGMA data_version in the request's read transaction (commits
 * of other connections) and the same count of this connection's write
 * transactions. Anything else empties the cache, as does a full arena.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "local.h"

#define ARENA_BYTES	(4 << 20)	/* packed rows: ~12,000 images */
#define SLOTS		16384		/* rows by number, a power of two */

/*
 * The fields of struct image as a row is packed in the arena: the numbers
 * as they are, each text up to its NUL. All of them but dup (0 in a kept
 * row, as get says): a new field goes in here too.
 */
#define NUM(f)	{ offsetof(struct image, f), sizeof(((struct image *)0)->f), 0 }
#define TEXT(f)	{ offsetof(struct image, f), sizeof(((struct image *)0)->f), 1 }
static const struct field {
	size_t off, size;
	int text;
} fields[] = {
	NUM(row), NUM(kind), NUM(pending), NUM(bits), NUM(size_gb),
	NUM(progress), NUM(created), NUM(mtime),
	TEXT(id), TEXT(name), TEXT(region), TEXT(owner), TEXT(os_name),
	TEXT(os_type), TEXT(platform), TEXT(arch), TEXT(state),
	TEXT(description), TEXT(source), TEXT(format), TEXT(sha256),
	TEXT(provider), TEXT(price), TEXT(shared_with), TEXT(error),
};

#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

/* The bytes of field f of img as packed (a text's NUL not counted). */
static size_t field_len(const struct field *f, const struct image *img)
{
	const char *src = (const char *)img + f->off;

	return f->text ? strnlen(src, f->size - 1) : f->size;
}

static void rows_clear(struct row_cache *c)
{
	if (c->count)
		memset(c->slot, 0, SLOTS * sizeof(*c->slot));
	c->count = 0;
	c->used = 0;
}

/*
 * The cache as of the request's read transaction, emptied when the catalog
 * changed since it was filled; NULL outside a request (or without memory).
 */
static struct row_cache *rows_now(struct local *l)
{
	struct row_cache *c = &l->rows;

	if (local_version(l))
		return NULL;
	if (!c->arena) {
		c->arena = malloc(ARENA_BYTES);
		c->slot = calloc(SLOTS, sizeof(*c->slot));
		if (!c->arena || !c->slot) {
			rows_free(l);
			return NULL;
		}
	} else if (c->version != l->version || c->writes != l->writes) {
		rows_clear(c);
	}
	c->version = l->version;
	c->writes = l->writes;
	return c;
}

/* The slot of row, or the empty one where it would go. */
static struct row_slot *slot_of(struct row_cache *c, int64_t row)
{
	uint64_t i = (uint64_t)row * 0x9E3779B97F4A7C15ull;

	for (i >>= 50;; i = (i + 1) & (SLOTS - 1))
		if (!c->slot[i].row || c->slot[i].row == row)
			return &c->slot[i];
}

int rows_get(struct local *l, int64_t row, struct image *out)
{
	struct row_cache *c = rows_now(l);
	struct row_slot *slot;
	const char *s;

	if (!c || !(slot = slot_of(c, row))->row)
		return 0;
	/* field by field, texts with their NUL: no need to clear 12 KiB */
	s = c->arena + slot->off;
	for (size_t i = 0; i < NFIELDS; i++) {
		const struct field *f = &fields[i];
		size_t n = f->text ? strlen(s) + 1 : f->size;

		memcpy((char *)out + f->off, s, n);
		s += n;
	}
	out->dup = 0;
	return 1;
}

void rows_keep(struct local *l, const struct image *img)
{
	struct row_cache *c = rows_now(l);
	size_t len[NFIELDS], need = 0;
	struct row_slot *slot;
	char *s;

	if (!c)
		return;
	for (size_t i = 0; i < NFIELDS; i++) {
		len[i] = field_len(&fields[i], img);
		need += len[i] + fields[i].text;
	}
	if (c->used + need > ARENA_BYTES || c->count >= SLOTS / 2)
		rows_clear(c);
	slot = slot_of(c, img->row);
	if (!slot->row)
		c->count++;
	slot->row = img->row;
	slot->off = c->used;
	s = c->arena + c->used;
	c->used += need;
	for (size_t i = 0; i < NFIELDS; i++) {
		memcpy(s, (const char *)img + fields[i].off, len[i]);
		s += len[i];
		if (fields[i].text)
			*s++ = 0;
	}
}

void rows_free(struct local *l)
{
	free(l->rows.arena);
	free(l->rows.slot);
	memset(&l->rows, 0, sizeof(l->rows));
}
