// SPDX-License-Identifier: GPL-2.0
/*
 * names.c - libFuzzer target: image names as directory entries
 * (fs/names.c).
 *
 * The input is a flag byte (bit 0: the name repeats in its folder, so its
 * entry carries the id), 8 bytes that make an image id, and a name. Then:
 *
 * - name_display() of any name fits NAME_MAX, holds no '/' and nothing a
 *   terminal takes for a control, or says ENAMETOOLONG; name_parse() of
 *   any entry fits the buffer it is given;
 * - a name that name_check() accepts has an entry, that entry is no name
 *   a lookup takes for a file manager's probe, and a lookup finds the
 *   name again from it (as fs/tree.c's find_image() does: a name that
 *   really ends in " (img-...)" first, then the name and id of a repeat);
 * - an entry that mkdir would take (the input read as an entry) is shown
 *   as that entry once the image exists.
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

/* The name a lookup of entry finds when an image holds want (id, dup). */
static int finds(const char *entry, const char *want, const char *id,
		 int dup)
{
	char name[1024], got[16], full[1100];

	if (name_parse(entry, name, sizeof(name), got))
		return 0;
	if (got[0]) {
		snprintf(full, sizeof(full), "%s (%s)", name, got);
		if (!strcmp(full, want))
			return !dup;	/* the name itself ends so */
	}
	if (dup)
		return !strcmp(got, id) && !strcmp(name, want);
	return !got[0] && !strcmp(name, want);
}

/* The image name mkdir makes of entry (fs/dirs.c): 0 or an errno. */
static int mkdir_name(const char *entry, char *name, size_t size)
{
	char id[16];
	size_t len;
	int rc = name_parse(entry, name, size, id);

	if (rc)
		return rc;
	if (id[0]) {
		len = strlen(name);
		snprintf(name + len, size - len, " (%s)", id);
	}
	if (name[0] == '.')
		return -EPERM;
	return name_check(name);
}

/*
 * Names that open defects of issue 11 (item 3) make unreachable, which this
 * target finds within seconds: a name name_check() accepts but a lookup
 * takes for a probe (".hidden", "desktop.ini"), and one holding U+FF0F,
 * shown as it is and looked up as '/'. Built with -DFUZZ_STRICT (make fuzz
 * FUZZ_STRICT=1) they are checked too; this goes when they are fixed.
 */
static int known_defect(const char *name)
{
#ifdef FUZZ_STRICT
	(void)name;
	return 0;
#else
	return name_is_probe(name) || strstr(name, "\xef\xbc\x8f");
#endif
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
	char id[16] = "img-", entry[NAME_MAX + 1], name[1024];
	char *text, small[64], small_id[16];
	int dup, rc;
	size_t n;

	if (size < 9)
		return 0;
	dup = data[0] & 1;
	for (int i = 0; i < 8; i++)
		id[4 + i] = digits[data[1 + i] % 36];
	id[12] = 0;
	text = strndup((const char *)data + 9, size - 9);
	CHECK(text);

	/* any entry parses into a buffer of any size, or says it cannot */
	n = (size_t)data[0] % sizeof(small);
	rc = name_parse(text, small, n, small_id);
	CHECK(rc == 0 || rc == -ENAMETOOLONG);
	CHECK(rc || strlen(small) < n);

	/* any name: an entry that fits NAME_MAX, or ENAMETOOLONG */
	rc = name_display(text, id, dup, entry, sizeof(entry));
	CHECK(rc == 0 || rc == -ENAMETOOLONG);
	if (!rc) {
		CHECK(strlen(entry) <= NAME_MAX && !strchr(entry, '/'));
		CHECK(!text_check(entry));	/* nothing for a terminal */
	}

	/* a name the mount accepts is listed, and found again */
	if (!name_check(text) && !known_defect(text)) {
		CHECK(!rc);
		CHECK(!name_is_probe(entry));
		CHECK(finds(entry, text, id, dup));
	}

	/* an entry mkdir takes is what the new image is listed as */
	if (!strchr(text, '/') && strlen(text) <= NAME_MAX &&
	    !mkdir_name(text, name, sizeof(name))) {
		CHECK(!name_display(name, id, 0, entry, sizeof(entry)));
		CHECK(!strcmp(entry, text));
	}
	free(text);
	return 0;
}
