// SPDX-License-Identifier: GPL-2.0
/*
 * names.c - image names as directory entries, and the checks of names,
 * descriptions, account numbers and image ids.
 *
 * The longest entry name fits NAME_MAX: 60 characters of 4 bytes and the
 * " (img-xxxxxxxx)" of a repeated name make 255 bytes.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "../backend/backend.h"
#include "names.h"

/* U+FF0F FULLWIDTH SOLIDUS, what a '/' of a name is shown as */
#define SLASH_UTF8	"\xef\xbc\x8f"
#define SLASH_LEN	3

/* " (img-xxxxxxxx)": the suffix of a repeated name */
#define ID_LEN		12
#define DUP_SUFFIX_LEN	(ID_LEN + 3)

/*
 * Decode the UTF-8 character at s (not at its terminating NUL) into *cp.
 * Returns its length in bytes, or -1 when it is not valid UTF-8: a stray
 * continuation byte, a truncated sequence, an overlong form, a surrogate or
 * a code point above U+10FFFF.
 */
static int utf8_next(const unsigned char *s, uint32_t *cp)
{
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

/* C0 controls, DEL and C1 controls */
static int is_control(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

long utf8_length(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
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

int name_display(const char *name, const char *id, int dup, char *out,
		 size_t size)
{
	size_t len = 0;
	const char *p;
	int ret;

	if (!size)
		return -ENAMETOOLONG;
	for (p = name; *p; p++) {
		if (*p == '/')
			ret = append(out, size, &len, SLASH_UTF8, SLASH_LEN);
		else
			ret = append(out, size, &len, p, 1);
		if (ret)
			goto out_fail;
	}
	if (dup) {
		ret = append(out, size, &len, " (", 2);
		if (!ret)
			ret = append(out, size, &len, id, strlen(id));
		if (!ret)
			ret = append(out, size, &len, ")", 1);
		if (ret)
			goto out_fail;
	}
	out[len] = 0;
	return 0;

out_fail:
	out[0] = 0;
	return ret;
}

/* Whether entry ends in " (img-xxxxxxxx)" after at least one byte. */
static int has_dup_suffix(const char *entry, size_t len)
{
	const char *s;
	char id[ID_LEN + 1];

	if (len <= DUP_SUFFIX_LEN)
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

int name_check(const char *name)
{
	const unsigned char *p = (const unsigned char *)name;
	long chars = 0;
	uint32_t cp;
	int n;

	while (*p) {
		n = utf8_next(p, &cp);
		if (n < 0 || is_control(cp))
			return -EINVAL;
		p += n;
		chars++;
	}
	/* empty after trimming the spaces at either end */
	if (name[strspn(name, " ")] == 0)
		return -EINVAL;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	if (chars > NAME_MAX_CHARS)
		return -ENAMETOOLONG;
	return 0;
}

#define STR_(x) #x
#define STR(x) STR_(x)

const char *name_rule(int rc)
{
	switch (rc) {
	case -ENAMETOOLONG:
		return "a name has at most " STR(NAME_MAX_CHARS) " characters";
	case -EPERM:
		return "a name may not start with a dot";
	default:
		return "a name is UTF-8 text without control characters, "
		       "not empty, . or ..";
	}
}

int description_check(const char *text)
{
	const unsigned char *p = (const unsigned char *)text;
	long chars = 0;
	uint32_t cp;
	int n;

	while (*p) {
		n = utf8_next(p, &cp);
		if (n < 0)
			return -EINVAL;
		if (is_control(cp) && cp != '\n' && cp != '\t')
			return -EINVAL;
		p += n;
		chars++;
	}
	if (chars > DESC_MAX_CHARS)
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

int image_id_check(const char *id)
{
	if (strncmp(id, "img-", 4))
		return -EINVAL;
	if (strspn(id + 4, "0123456789abcdefghijklmnopqrstuvwxyz") != 8 ||
	    id[ID_LEN])
		return -EINVAL;
	return 0;
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
