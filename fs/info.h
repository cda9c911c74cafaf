/* SPDX-License-Identifier: GPL-2.0 */
/*
 * info.h - the info file: render an image as KEY=VALUE lines in os-release
 * syntax, and parse a text written by a user back into keys.
 *
 * A value is written bare when made only of A-Za-z0-9._:,/+@- and otherwise
 * in double quotes with \ " $ and ` escaped, so that sourcing the file with
 * sh runs nothing and gives back every value exactly.
 *
 * A value is first made safe to show (info_show): the characters that a
 * text written through the mount may not hold (names.h) are replaced by
 * escapes, so that no value spans lines or carries a control sequence. sh,
 * grep, cut and info_parse() all read the shown text, and writing it back
 * unchanged is no change.
 */
#ifndef IMAGEFS_INFO_H
#define IMAGEFS_INFO_H

#include <stddef.h>

#include "../backend/backend.h"

/* The keys, in the order the file shows them; the last ones are write-only. */
enum info_key {
	INFO_ID,
	INFO_NAME,
	INFO_TYPE,
	INFO_REGION,
	INFO_OWNER,
	INFO_OS_NAME,
	INFO_OS_TYPE,
	INFO_PLATFORM,
	INFO_ARCH,
	INFO_BITS,
	INFO_SIZE_GB,
	INFO_STATE,
	INFO_PROGRESS,
	INFO_CREATED,
	INFO_DESCRIPTION,
	INFO_SOURCE,
	INFO_FORMAT,		/* imported images */
	INFO_SHA256,		/* imported images; may be written to check */
	INFO_PROVIDER,
	INFO_PRICE,
	INFO_SHARED_WITH,
	INFO_ERROR,
	INFO_INSTANCE,		/* write-only: what a pending image becomes */
	INFO_IMPORT_URL,	/* write-only */
	INFO_NKEYS
};

extern const char *const info_key_names[INFO_NKEYS];

/* A parsed text: v[key] is NULL when the key is absent. */
struct info_text {
	char *v[INFO_NKEYS];
	int lines;		/* lines parsed so far */
	char why[160];		/* what is wrong with the text, in words
				 * ("line 3: unknown key FOO"), when
				 * info_parse or spec.h refused it */
};

/*
 * Room for any value as shown: the longest text field of struct image
 * (SOURCE, with an import URL) with every byte escaped (6 bytes for one),
 * and its NUL. (SHARED_WITH, longer, is account numbers: never escaped.)
 */
#define INFO_VALUE_MAX	16384

/* How a value is shown. */
enum info_show {
	SHOW_TEXT,	/* escape what text_char_refused() refuses */
	SHOW_NAME,	/* a name that name_check() would refuse for what it
			 * holds: escape what name_char_refused() refuses, and
			 * backslashes; every character of a blank name */
};

/*
 * Write raw as shown into buf (as snprintf: returns the length needed). A
 * text that holds something to escape is shown with those characters
 * escaped: a byte that is not UTF-8 as \xNN, a character as \uXXXX
 * (\UXXXXXXXX above U+FFFF), hex digits in upper case.
 */
size_t info_escape(const char *raw, enum info_show how, char *buf,
		   size_t size);

/*
 * raw as shown: raw itself when it holds nothing to escape, else its
 * info_escape() in buf (INFO_VALUE_MAX bytes hold any field of an image).
 */
const char *info_show(const char *raw, enum info_show how, char *buf,
		      size_t size);

/* The key named name (exact, upper case), or -1. */
int info_key_lookup(const char *name);

/*
 * The value of key for img as the file shows it (info_show), or NULL when
 * absent. buf (INFO_VALUE_MAX bytes) holds it when it is escaped or a
 * number.
 */
const char *info_value(const struct image *img, enum info_key key,
		       char *buf, size_t size);

/*
 * Render img into buf. Returns the full length of the text (which may be
 * more than size - 1: the text is then cut, as snprintf does).
 */
size_t info_render(const struct image *img, char *buf, size_t size);

/*
 * Append "KEY=VALUE\n" with the value quoted as the file needs it.
 * Returns the full length written or needed, as snprintf.
 */
size_t info_format_line(const char *key, const char *value, char *buf,
			size_t size);

/*
 * Parse len bytes of text. Blank lines and # comments are skipped. Returns 0,
 * or -EINVAL when a line does not parse (unbalanced quotes, an unquoted $ or
 * backquote, no '='), names an unknown key, or repeats a key; out->why then
 * says which line and what.
 */
int info_parse(const char *text, size_t len, struct info_text *out);

/*
 * Parse len more bytes of a text into out, which holds the keys of the
 * lines before them (len ends at a line's end, or the text's): each byte
 * is read once, however the text comes. Errors as info_parse(); on one,
 * out keeps what it has (free it with info_text_free()).
 */
int info_parse_more(const char *text, size_t len, struct info_text *out);

void info_text_free(struct info_text *t);

#endif /* IMAGEFS_INFO_H */
