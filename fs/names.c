// SPDX-License-Identifier: GPL-2.0
/*
 * names.c - image names as directory entries, and the checks of names,
 * descriptions, account numbers and image ids.
 *
 * The longest entry name fits NAME_MAX: 60 characters of 4 bytes and the
 * " (img-xxxxxxxx)" of a repeated name make 255 bytes.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "../backend/backend.h"
#include "info.h"
#include "names.h"

/* U+FF0F FULLWIDTH SOLIDUS, what a '/' of a name is shown as */
#define SLASH_UTF8	"\xef\xbc\x8f"
#define SLASH_LEN	3

/* U+FF0E FULLWIDTH FULL STOP, the leading '.' of a name not shown as is */
#define DOT_UTF8	"\xef\xbc\x8e"
#define DOT_LEN		3

/* " (img-xxxxxxxx)": the suffix of a repeated name */
#define ID_LEN		12
#define DUP_SUFFIX_LEN	(ID_LEN + 3)

int utf8_next(const char *str, uint32_t *cp)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned char c = s[0];
	unsigned char lo = 0x80, hi = 0xbf;
	int n, i;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		*cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		*cp = c & 0x0f;
		if (c == 0xe0)
			lo = 0xa0;	/* overlong */
		else if (c == 0xed)
			hi = 0x9f;	/* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		*cp = c & 0x07;
		if (c == 0xf0)
			lo = 0x90;	/* overlong */
		else if (c == 0xf4)
			hi = 0x8f;	/* above U+10FFFF */
	} else {
		return -1;
	}
	/* a NUL is no continuation byte: this never reads past the string */
	for (i = 1; i < n; i++) {
		if (s[i] < lo || s[i] > hi)
			return -1;
		*cp = (*cp << 6) | (s[i] & 0x3f);
		lo = 0x80;
		hi = 0xbf;
	}
	return n;
}

struct range {
	uint32_t lo, hi;
};

static int in_ranges(uint32_t cp, const struct range *r, size_t n)
{
	for (size_t i = 0; i < n && r[i].lo <= cp; i++)
		if (cp <= r[i].hi)
			return 1;
	return 0;
}

/* Unicode general category Cf (format), as of Unicode 15, in order. */
static const struct range format_chars[] = {
	{ 0x00ad, 0x00ad }, { 0x0600, 0x0605 }, { 0x061c, 0x061c },
	{ 0x06dd, 0x06dd }, { 0x070f, 0x070f }, { 0x0890, 0x0891 },
	{ 0x08e2, 0x08e2 }, { 0x180e, 0x180e }, { 0x200b, 0x200f },
	{ 0x202a, 0x202e }, { 0x2060, 0x2064 }, { 0x2066, 0x206f },
	{ 0xfeff, 0xfeff }, { 0xfff9, 0xfffb }, { 0x110bd, 0x110bd },
	{ 0x110cd, 0x110cd }, { 0x13430, 0x1343f }, { 0x1bca0, 0x1bca3 },
	{ 0x1d173, 0x1d17a }, { 0xe0001, 0xe0001 }, { 0xe0020, 0xe007f },
};

/* Unicode general category Zs (space separators), in order. */
static const struct range space_chars[] = {
	{ 0x0020, 0x0020 }, { 0x00a0, 0x00a0 }, { 0x1680, 0x1680 },
	{ 0x2000, 0x200a }, { 0x202f, 0x202f }, { 0x205f, 0x205f },
	{ 0x3000, 0x3000 },
};

#define NRANGES(r) (sizeof(r) / sizeof(r[0]))

int text_char_refused(uint32_t cp)
{
	/* Cc: C0 controls, DEL, C1 controls; Zl and Zp: U+2028, U+2029 */
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) ||
	       cp == 0x2028 || cp == 0x2029;
}

int name_char_refused(uint32_t cp)
{
	return text_char_refused(cp) ||
	       in_ranges(cp, format_chars, NRANGES(format_chars));
}

int name_is_blank(const char *name)
{
	uint32_t cp;
	int n;

	for (; *name; name += n) {
		n = utf8_next(name, &cp);
		if (n < 0 || !in_ranges(cp, space_chars, NRANGES(space_chars)))
			return 0;
	}
	return 1;
}

long utf8_length(const char *s)
{
	const char *p = s;
	uint32_t cp;
	long chars = 0;
	int n;

	while (*p) {
		n = utf8_next(p, &cp);
		if (n < 0)
			return -1;
		p += n;
		chars++;
	}
	return chars;
}

/* Append n bytes to out, keeping room for the NUL. */
static int append(char *out, size_t size, size_t *len, const char *s,
		  size_t n)
{
	if (*len + n >= size)
		return -ENAMETOOLONG;
	memcpy(out + *len, s, n);
	*len += n;
	return 0;
}

/*
 * The bytes of the escape (escaped: a name as info_show() shows it) or of
 * the character at s of a name.
 */
static size_t token_len(const char *s, int escaped)
{
	uint32_t cp;
	int n;

	if (escaped && s[0] == '\\')
		return s[1] == 'x' ? 4 : s[1] == 'u' ? 6 : 10;
	n = utf8_next(s, &cp);
	return n < 0 ? 1 : n;
}

/*
 * Append the entry form of name ('/' as U+FF0F). A name not shown as it
 * is (cut) is cut, character by character or escape by escape, where it
 * would leave less than room bytes of out; any other must fit whole.
 */
static int append_name(char *out, size_t size, size_t *len, const char *name,
		       int cut, int escaped, size_t room)
{
	size_t n;
	int ret;

	for (const char *p = name; *p; p += n) {
		n = cut ? token_len(p, escaped) : 1;
		if (cut && *len + (*p == '/' ? SLASH_LEN : n) + room >= size)
			break;
		if (*p == '/')
			ret = append(out, size, len, SLASH_UTF8, SLASH_LEN);
		else
			ret = append(out, size, len, p, n);
		if (ret)
			return ret;
	}
	return 0;
}

int name_display(const char *name, const char *id, int dup, char *out,
		 size_t size)
{
	char shown[INFO_VALUE_MAX];
	const char *text = info_show(name, SHOW_NAME, shown, sizeof(shown));
	int escaped = text != name;
	int as_is = !escaped && name_shown_as_is(name);
	size_t len = 0;
	int ret = 0;

	if (!size)
		return -ENAMETOOLONG;
	if (!as_is) {
		/* not shown as it is: always with its id, cut to fit */
		dup = id[0] != 0;
		if (size > NAME_MAX + 1)
			size = NAME_MAX + 1;
		if (*text == '.') {
			ret = append(out, size, &len, DOT_UTF8, DOT_LEN);
			text++;
		}
	}
	if (!ret)
		ret = append_name(out, size, &len, text, !as_is, escaped,
				  dup ? strlen(id) + 3 : 0);
	/* an id from elsewhere goes in an entry only as an image id */
	if (!ret && dup && image_id_check(id))
		ret = -EINVAL;
	if (!ret && dup) {
		ret = append(out, size, &len, " (", 2);
		if (!ret)
			ret = append(out, size, &len, id, strlen(id));
		if (!ret)
			ret = append(out, size, &len, ")", 1);
	}
	if (ret) {
		out[0] = 0;
		return ret;
	}
	out[len] = 0;
	return 0;
}

/*
 * Whether entry ends in " (img-xxxxxxxx)": the whole entry of an image
 * without a name, too.
 */
static int has_dup_suffix(const char *entry, size_t len)
{
	const char *s;
	char id[ID_LEN + 1];

	if (len < DUP_SUFFIX_LEN)
		return 0;
	s = entry + len - DUP_SUFFIX_LEN;
	if (s[0] != ' ' || s[1] != '(' || s[DUP_SUFFIX_LEN - 1] != ')')
		return 0;
	memcpy(id, s + 2, ID_LEN);
	id[ID_LEN] = 0;
	return image_id_check(id) == 0;
}

int name_parse(const char *entry, char *name, size_t size, char *id)
{
	size_t len = strlen(entry);
	size_t i, n = 0;

	id[0] = 0;
	if (has_dup_suffix(entry, len)) {
		len -= DUP_SUFFIX_LEN;
		memcpy(id, entry + len + 2, ID_LEN);
		id[ID_LEN] = 0;
	}
	for (i = 0; i < len; n++) {
		if (n + 1 >= size)
			goto out_toolong;
		if (len - i >= SLASH_LEN &&
		    !memcmp(entry + i, SLASH_UTF8, SLASH_LEN)) {
			name[n] = '/';
			i += SLASH_LEN;
		} else {
			name[n] = entry[i++];
		}
	}
	if (!size)
		goto out_toolong;
	name[n] = 0;
	return 0;

out_toolong:
	if (size)
		name[0] = 0;
	id[0] = 0;
	return -ENAMETOOLONG;
}

/*
 * Check a text character by character: valid UTF-8 with none of the
 * characters refused says 0 and counts them in *chars, else -EINVAL.
 */
static int check_chars(const char *text, int (*refused)(uint32_t),
		       long *chars)
{
	const char *p = text;
	uint32_t cp;
	int n;

	*chars = 0;
	for (; *p; p += n) {
		n = utf8_next(p, &cp);
		if (n < 0 || refused(cp))
			return -EINVAL;
		++*chars;
	}
	return 0;
}

int name_check(const char *name)
{
	long chars;

	if (check_chars(name, name_char_refused, &chars) ||
	    name_is_blank(name))
		return -EINVAL;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	if (chars > NAME_MAX_CHARS)
		return -ENAMETOOLONG;
	return 0;
}

/* Why name cannot be an entry name as it is: 0, -EPERM or -EINVAL. */
static int entry_check(const char *name)
{
	if (name[0] == '.' || name_is_probe(name))
		return -EPERM;
	if (strstr(name, SLASH_UTF8) || has_dup_suffix(name, strlen(name)))
		return -EINVAL;
	return 0;
}

int image_name_check(const char *name)
{
	int rc = name_check(name);

	if (rc && rc != -ENAMETOOLONG)
		return rc;
	return entry_check(name) ? entry_check(name) : rc;
}

int name_of_entry(const char *entry, char *name, size_t size)
{
	char id[16];
	int rc = name_parse(entry, name, size, id);

	if (rc)
		return rc;
	if (id[0])
		return -EINVAL;	/* " (img-...)" is the tree's own suffix */
	return image_name_check(name);
}

#define STR_(x) #x
#define STR(x) STR_(x)

const char *name_rule(int rc)
{
	switch (rc) {
	case -ENAMETOOLONG:
		return "a name has at most " STR(NAME_MAX_CHARS) " characters";
	case -EPERM:
		return "a name may not start with a dot, nor be one that file "
		       "managers probe for";
	default:
		return "a name is UTF-8 text without control or invisible "
		       "characters, not blank, . or .., without U+FF0F or an "
		       "ending like \" (img-xxxxxxxx)\"";
	}
}

int name_shown_as_is(const char *name)
{
	int rc = image_name_check(name);
	size_t bytes = strlen(name);

	for (const char *p = strchr(name, '/'); p; p = strchr(p + 1, '/'))
		bytes += SLASH_LEN - 1;
	/* room for a repeated name's suffix, as any name that passes has */
	return (!rc || rc == -ENAMETOOLONG) &&
	       bytes <= NAME_MAX - DUP_SUFFIX_LEN;
}

int link_needs_id(const char *name)
{
	int rc = name_check(name);

	/* shown escaped (a character it holds), a link needs no id */
	return (!rc || rc == -ENAMETOOLONG) && !name_shown_as_is(name);
}

int text_check(const char *text)
{
	long chars;

	return check_chars(text, text_char_refused, &chars);
}

int description_check(const char *text)
{
	long chars;

	if (check_chars(text, text_char_refused, &chars) ||
	    chars > DESC_MAX_CHARS)
		return -EINVAL;
	return 0;
}

int uin_check(const char *uin)
{
	size_t n = strspn(uin, "0123456789");

	if (n == 0 || n > UIN_MAX_DIGITS || uin[n] || uin[0] == '0')
		return -EINVAL;
	return 0;
}

/* prefix and 8 lowercase letters or digits, as the ids of the cloud. */
static int id_check(const char *id, const char *prefix)
{
	size_t n = strlen(prefix);

	if (strncmp(id, prefix, n) || strlen(id) != n + 8 ||
	    strspn(id + n, "0123456789abcdefghijklmnopqrstuvwxyz") != 8)
		return -EINVAL;
	return 0;
}

int image_id_check(const char *id)
{
	return id_check(id, "img-");
}

int instance_id_check(const char *id)
{
	return id_check(id, "ins-");
}

int name_is_probe(const char *name)
{
	static const char *const probes[] = {
		"autorun.inf", "desktop.ini", "thumbs.db",
		"folder.jpg", "folder.gif", "albumart.jpg",
	};
	size_t i;

	if (name[0] == '.')
		return 1;
	for (i = 0; i < sizeof(probes) / sizeof(probes[0]); i++)
		if (!strcasecmp(name, probes[i]))
			return 1;
	return 0;
}
