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

/* A row in the arena: the numbers, then each text with its NUL. */
struct packed {
	int64_t row, progress, created, mtime;
	int32_t kind, pending, bits, size_gb;
	char text[];
};

/*
 * The text fields of struct image, in packing order: with the numbers of
 * struct packed, every field of it (a new one goes in here too).
 */
#define TEXT(f) { offsetof(struct image, f), sizeof(((struct image *)0)->f) }
static const struct {
	size_t off, size;
} texts[] = {
	TEXT(id), TEXT(name), TEXT(region), TEXT(owner), TEXT(os_name),
	TEXT(os_type), TEXT(platform), TEXT(arch), TEXT(state),
	TEXT(description), TEXT(source), TEXT(format), TEXT(sha256),
	TEXT(provider), TEXT(price), TEXT(shared_with), TEXT(error),
};

#define NTEXTS (sizeof(texts) / sizeof(texts[0]))

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
	sqlite3_stmt *st;

	if (!l->read_tx)
		return NULL;
	if (!l->reading || !l->version_known) {
		st = local_stmt(l, Q_DATA_VERSION);
		if (!st || !l->reading || sqlite3_step(st) != SQLITE_ROW) {
			if (st)
				sqlite3_reset(st);
			return NULL;
		}
		l->version = sqlite3_column_int64(st, 0);
		l->version_known = 1;
		sqlite3_reset(st);
	}
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
	const struct packed *p;
	const char *s;
	struct row_slot *slot;

	if (!c || !(slot = slot_of(c, row))->row)
		return 0;
	p = (const struct packed *)(c->arena + slot->off);
	memset(out, 0, sizeof(*out));
	out->row = p->row;
	out->progress = p->progress;
	out->created = p->created;
	out->mtime = p->mtime;
	out->kind = p->kind;
	out->pending = p->pending;
	out->bits = p->bits;
	out->size_gb = p->size_gb;
	s = p->text;
	for (size_t i = 0; i < NTEXTS; i++) {
		size_t n = strlen(s);

		memcpy((char *)out + texts[i].off, s, n);
		s += n + 1;
	}
	return 1;
}

void rows_keep(struct local *l, const struct image *img)
{
	struct row_cache *c = rows_now(l);
	size_t len[NTEXTS], need = sizeof(struct packed);
	struct row_slot *slot;
	struct packed *p;
	char *s;

	if (!c)
		return;
	for (size_t i = 0; i < NTEXTS; i++) {
		len[i] = strnlen((const char *)img + texts[i].off,
				 texts[i].size - 1);
		need += len[i] + 1;
	}
	need = (need + 7) & ~(size_t)7;
	if (c->used + need > ARENA_BYTES || c->count >= SLOTS / 2)
		rows_clear(c);
	slot = slot_of(c, img->row);
	if (!slot->row)
		c->count++;
	slot->row = img->row;
	slot->off = c->used;
	p = (struct packed *)(c->arena + c->used);
	c->used += need;
	p->row = img->row;
	p->progress = img->progress;
	p->created = img->created;
	p->mtime = img->mtime;
	p->kind = img->kind;
	p->pending = img->pending;
	p->bits = img->bits;
	p->size_gb = img->size_gb;
	s = p->text;
	for (size_t i = 0; i < NTEXTS; i++) {
		memcpy(s, (const char *)img + texts[i].off, len[i]);
		s[len[i]] = 0;
		s += len[i] + 1;
	}
}

void rows_free(struct local *l)
{
	free(l->rows.arena);
	free(l->rows.slot);
	memset(&l->rows, 0, sizeof(l->rows));
}
