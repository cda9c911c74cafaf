// SPDX-License-Identifier: GPL-2.0
/*
 * info.c - libFuzzer target: the info file's renderer and parser
 * (fs/info.c).
 *
 * Two oracles, both on every input:
 *
 * - Render and parse back. The input, split at NUL bytes, fills the text
 *   fields of a struct image (cut to their sizes), as text from elsewhere
 *   (the cloud, a peer, an old catalog) may; the bytes after them give its
 *   numbers. info_render() of it is one key a line, valid UTF-8 with
 *   nothing a terminal takes for a control; info_parse() gives back for
 *   every key exactly what info_value() shows, a text the mount would
 *   take; a buffer of any size holds a NUL-ended prefix of the same text
 *   (snprintf's rule); and the entry name of the image's name fits
 *   NAME_MAX, holds no '/' and is safe on a terminal.
 * - Parse anything. The input read as a text a user wrote: info_parse()
 *   says 0 or EINVAL and never fails otherwise. When it says 0, the values
 *   the mount would take (names and descriptions it accepts, other values
 *   text_check() takes), written out by info_format_line() and parsed
 *   again, are the same values: writing back what was read is no change.
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

#define TEXT_MAX	65536

/* Copy the next NUL-ended field of [*p, end) into dst, cut to size. */
static void take(const uint8_t **p, const uint8_t *end, char *dst,
		 size_t size)
{
	size_t n = 0;

	while (*p < end && **p) {
		if (n + 1 < size)
			dst[n++] = (char)**p;
		(*p)++;
	}
	if (*p < end)
		(*p)++;
	dst[n] = 0;
}

/* The next 8 bytes of [*p, end) as a number (0 past the end). */
static uint64_t number(const uint8_t **p, const uint8_t *end)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | (*p < end ? *(*p)++ : 0);
	return v;
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

static void image_of(const uint8_t *data, size_t size, struct image *img)
{
	const uint8_t *p = data, *end = data + size;

	memset(img, 0, sizeof(*img));
	take(&p, end, img->id, sizeof(img->id));
	take(&p, end, img->name, sizeof(img->name));
	take(&p, end, img->region, sizeof(img->region));
	take(&p, end, img->owner, sizeof(img->owner));
	take(&p, end, img->os_name, sizeof(img->os_name));
	take(&p, end, img->os_type, sizeof(img->os_type));
	take(&p, end, img->platform, sizeof(img->platform));
	take(&p, end, img->arch, sizeof(img->arch));
	take(&p, end, img->state, sizeof(img->state));
	take(&p, end, img->description, sizeof(img->description));
	take(&p, end, img->source, sizeof(img->source));
	take(&p, end, img->format, sizeof(img->format));
	take(&p, end, img->sha256, sizeof(img->sha256));
	take(&p, end, img->provider, sizeof(img->provider));
	take(&p, end, img->price, sizeof(img->price));
	take(&p, end, img->shared_with, sizeof(img->shared_with));
	take(&p, end, img->error, sizeof(img->error));
	img->kind = (enum image_kind)(number(&p, end) % (KIND_COUNT + 1));
	img->bits = (int)number(&p, end);
	img->size_gb = (int)number(&p, end);
	img->progress = (int64_t)number(&p, end);
	img->created = (int64_t)number(&p, end);
}

static void render_and_parse(const uint8_t *data, size_t size)
{
	static char text[TEXT_MAX], cut[TEXT_MAX], shown[INFO_VALUE_MAX];
	static struct image img;
	char entry[NAME_MAX + 1];
	struct info_text t;
	size_t len, n, lines = 0, keys = 0;
	int k;

	image_of(data, size, &img);
	len = info_render(&img, text, sizeof(text));
	CHECK(len < sizeof(text) && strlen(text) == len);
	check_terminal_safe(text);
	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	n = size ? data[size - 1] * (size_t)size % (len + 2) : 0;
	CHECK(info_render(&img, cut, n) == len);
	CHECK(!n || (strlen(cut) == (n <= len ? n - 1 : len) &&
		     !memcmp(cut, text, strlen(cut))));

	CHECK(info_parse(text, len, &t) == 0);
	for (k = 0; k < INFO_NKEYS; k++) {
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
}

/* Whether the mount would take value for key (a user could write it). */
static int takes(int key, const char *value)
{
	if (key == INFO_NAME)
		return !name_check(value);
	if (key == INFO_DESCRIPTION)
		return !description_check(value);
	return !text_check(value);
}

static void parse_anything(const uint8_t *data, size_t size)
{
	static char text[TEXT_MAX];
	struct info_text t, again;
	size_t len = 0;
	int k, rc;

	rc = info_parse((const char *)data, size, &t);
	CHECK(rc == 0 || rc == -EINVAL);
	if (rc)
		return;
	for (k = 0; k < INFO_NKEYS; k++) {
		if (!t.v[k] || !takes(k, t.v[k]))
			continue;
		len += info_format_line(info_key_names[k], t.v[k], text + len,
					sizeof(text) - len);
		CHECK(len < sizeof(text));
	}
	CHECK(info_parse(text, len, &again) == 0);
	for (k = 0; k < INFO_NKEYS; k++) {
		if (!t.v[k] || !takes(k, t.v[k])) {
			CHECK(!again.v[k]);
			continue;
		}
		CHECK(again.v[k] && !strcmp(t.v[k], again.v[k]));
	}
	info_text_free(&again);
	info_text_free(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > TEXT_MAX / 8)
		return 0;
	render_and_parse(data, size);
	parse_anything(data, size);
	return 0;
}
