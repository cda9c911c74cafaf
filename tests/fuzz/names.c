// SPDX-License-Identifier: GPL-2.0
/*
 * names.c - libFuzzer target: image names as directory entries
 * (fs/names.c).
 *
 * The input is a flag byte (bits 0 and 1: the first and the second image
 * repeat a name of their folder, so their entries carry their ids), 16
 * bytes that make two image ids, and two names, split at a NUL. Then:
 *
 * - name_display() of any name fits NAME_MAX, holds no '/' and nothing a
 *   terminal takes for a control, or says ENAMETOOLONG; name_parse() of
 *   any entry fits the buffer it is given;
 * - no entry is a name that a lookup takes for a file manager's probe
 *   (it would answer ENOENT), and two images never share one entry (a
 *   lookup, which finds an image by the entry it shows, would find only
 *   one of them);
 * - a name that image_name_check() accepts, the one check of mkdir, mv
 *   and NAME=, is shown as it is ('/' as U+FF0F): what a user typed is
 *   what the listing shows;
 * - an entry that mkdir takes (the first name read as an entry by
 *   name_of_entry(), as mkdir and mv do) is what the new image is listed
 *   as.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../backend/backend.h"
#include "../../fs/names.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

/* name with each '/' as U+FF0F, as an entry shows a name as it is */
static void as_entry(const char *name, char *out, size_t size)
{
	size_t n = 0;

	for (; *name && n + 4 < size; name++) {
		if (*name == '/') {
			memcpy(out + n, "\xef\xbc\x8f", 3);
			n += 3;
		} else {
			out[n++] = *name;
		}
	}
	out[n] = 0;
}

/* The entry of name (0), checked as every entry must be; or an errno. */
static int entry_of(const char *name, const char *id, int dup,
		    char *entry)
{
	int rc = name_display(name, id, dup, entry, NAME_MAX + 1);

	CHECK(rc == 0 || rc == -ENAMETOOLONG);
	if (rc)
		return rc;
	CHECK(strlen(entry) <= NAME_MAX && !strchr(entry, '/'));
	CHECK(!text_check(entry));	/* nothing for a terminal */
	CHECK(!name_is_probe(entry));
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
	char id[2][16], entry[2][NAME_MAX + 1], name[1024], typed[1024];
	char small[64], small_id[16], *text[2];
	const char *nul;
	int rc[2], dup[2];
	size_t n;

	if (size < 17)
		return 0;
	for (int k = 0; k < 2; k++) {
		memcpy(id[k], "img-", 4);
		for (int i = 0; i < 8; i++)
			id[k][4 + i] = digits[data[1 + 8 * k + i] % 36];
		id[k][12] = 0;
	}
	data += 17;
	size -= 17;
	nul = memchr(data, 0, size);
	n = nul ? (size_t)(nul - (const char *)data) : size;
	text[0] = strndup((const char *)data, n);
	text[1] = strndup(nul ? nul + 1 : "", nul ? size - n - 1 : 0);
	CHECK(text[0] && text[1]);

	/* any entry parses into a buffer of any size, or says it cannot */
	n = (size_t)data[-17] % sizeof(small);
	rc[0] = name_parse(text[0], small, n, small_id);
	CHECK(rc[0] == 0 || rc[0] == -ENAMETOOLONG);
	CHECK(rc[0] || strlen(small) < n);

	/*
	 * any names: entries as every entry must be, never one for two
	 * images (two that hold one name in a folder: all but the first
	 * are repeats)
	 */
	for (int k = 0; k < 2; k++)
		dup[k] = data[-17] >> k & 1;
	for (int k = 0; k < 2; k++)
		rc[k] = entry_of(text[k], id[k], dup[k], entry[k]);
	if (!rc[0] && !rc[1] && strcmp(id[0], id[1]) &&
	    (strcmp(text[0], text[1]) || dup[0] || dup[1]))
		CHECK(strcmp(entry[0], entry[1]));

	/* a name the mount accepts is shown as it is */
	if (!image_name_check(text[0])) {
		CHECK(!entry_of(text[0], id[0], 0, entry[0]));
		as_entry(text[0], typed, sizeof(typed));
		CHECK(!strcmp(entry[0], typed));
	}

	/* an entry mkdir takes is what the new image is listed as */
	if (!strchr(text[0], '/') && strlen(text[0]) <= NAME_MAX &&
	    !name_of_entry(text[0], name, sizeof(name))) {
		CHECK(!entry_of(name, id[0], 0, entry[0]));
		CHECK(!strcmp(entry[0], text[0]));
	}
	free(text[0]);
	free(text[1]);
	return 0;
}
