// SPDX-License-Identifier: GPL-2.0
/*
 * info_roundtrip.c - libFuzzer target: any text from elsewhere, rendered
 * into an info file, is one key a line with nothing a terminal takes for
 * a control, and info_parse() reads back what info_value() shows; the
 * entry name of any name fits NAME_MAX and holds no '/'.
 *
 * The input is split at NUL bytes into NAME, DESCRIPTION, OS_NAME, OWNER
 * and SOURCE. Build and run (clang's libFuzzer):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *     -o build/fuzz-info tests/fuzz/info_roundtrip.c fs/info.c \
 *     fs/names.c backend/kinds.c
 *   build/fuzz-info -max_total_time=60
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../backend/backend.h"
#include "../../fs/info.h"
#include "../../fs/names.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

/* Copy the next NUL-ended field of the input into dst (cut to size). */
static void take(const uint8_t **p, const uint8_t *end, char *dst,
		 size_t size)
{
	size_t n = 0;

	while (*p < end && **p && n + 1 < size)
		dst[n++] = (char)*(*p)++;
	while (*p < end && **p)
		(*p)++;
	if (*p < end)
		(*p)++;
	dst[n] = 0;
}

/* Valid UTF-8 with no refused character but the newlines that end lines. */
static void check_terminal_safe(const char *text)
{
	uint32_t cp;
	int n;

	for (; *text; text += n) {
		n = utf8_next(text, &cp);
		CHECK(n > 0);
		CHECK(cp == '\n' || !text_char_refused(cp));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char text[1 << 16], shown[INFO_VALUE_MAX];
	static struct image img;
	const uint8_t *p = data, *end = data + size;
	char entry[NAME_MAX + 1];
	struct info_text t;
	size_t len, lines = 0, keys = 0;

	memset(&img, 0, sizeof(img));
	img.kind = KIND_SHARED;
	img.progress = -1;
	memcpy(img.id, "img-abcd1234", 13);
	take(&p, end, img.name, sizeof(img.name));
	take(&p, end, img.description, sizeof(img.description));
	take(&p, end, img.os_name, sizeof(img.os_name));
	take(&p, end, img.owner, sizeof(img.owner));
	take(&p, end, img.source, sizeof(img.source));

	len = info_render(&img, text, sizeof(text));
	CHECK(len < sizeof(text));
	check_terminal_safe(text);
	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	CHECK(info_parse(text, len, &t) == 0);
	for (int k = 0; k < INFO_NKEYS; k++) {
		const char *v = info_value(&img, k, shown, sizeof(shown));

		CHECK(!v == !t.v[k]);
		if (!v)
			continue;
		keys++;
		CHECK(!strcmp(v, t.v[k]));
		CHECK(!text_check(v));		/* a text the mount takes */
	}
	CHECK(lines == keys);			/* one key a line */
	if (t.v[INFO_NAME] && name_check(t.v[INFO_NAME]) == -EINVAL)
		CHECK(!strcmp(img.name, ".") || !strcmp(img.name, ".."));
	info_text_free(&t);

	if (img.name[0] &&
	    !name_display(img.name, img.id, 0, entry, sizeof(entry))) {
		CHECK(strlen(entry) <= NAME_MAX);
		CHECK(!strchr(entry, '/'));
		check_terminal_safe(entry);
	}
	return 0;
}
