// SPDX-License-Identifier: GPL-2.0
/*
 * info.c - the info file: render an image as KEY=VALUE lines that sh can
 * source safely, and parse a text written by a user back into keys.
 *
 * The parser accepts the subset of sh syntax in which a line means the same
 * to sh as to imagefs: one bare, "double-quoted" or 'single-quoted' word a
 * key, nothing that expands ($, backquotes, a leading ~) and nothing that
 * runs (; & | < > ( )).
 *
 * Text that comes from elsewhere (the cloud, a peer account, an old
 * catalog) may hold what a text written through the mount may not: it is
 * shown with those characters escaped (info_show), so that every line is
 * one key and nothing reaches a terminal as a control sequence.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "info.h"
#include "names.h"

const char *const info_key_names[INFO_NKEYS] = {
	[INFO_ID]		= "ID",
	[INFO_NAME]		= "NAME",
	[INFO_TYPE]		= "TYPE",
	[INFO_REGION]		= "REGION",
	[INFO_OWNER]		= "OWNER",
	[INFO_OS_NAME]		= "OS_NAME",
	[INFO_OS_TYPE]		= "OS_TYPE",
	[INFO_PLATFORM]		= "PLATFORM",
	[INFO_ARCH]		= "ARCH",
	[INFO_BITS]		= "BITS",
	[INFO_SIZE_GB]		= "SIZE_GB",
	[INFO_STATE]		= "STATE",
	[INFO_PROGRESS]		= "PROGRESS",
	[INFO_CREATED]		= "CREATED",
	[INFO_DESCRIPTION]	= "DESCRIPTION",
	[INFO_SOURCE]		= "SOURCE",
	[INFO_FORMAT]		= "FORMAT",
	[INFO_SHA256]		= "SHA256",
	[INFO_PROVIDER]		= "PROVIDER",
	[INFO_PRICE]		= "PRICE",
	[INFO_SHARED_WITH]	= "SHARED_WITH",
	[INFO_ERROR]		= "ERROR",
	[INFO_INSTANCE]		= "INSTANCE",
	[INFO_IMPORT_URL]	= "IMPORT_URL",
};

/*
 * The bytes of a value written without quotes (BARE), and those escaped
 * with a backslash inside double quotes (ESCAPED): a table, as every stat
 * of an info renders it for its size.
 */
#define BARE	1
#define ESCAPED	2
static const unsigned char value_class[256] = {
	['A' ... 'Z'] = BARE, ['a' ... 'z'] = BARE, ['0' ... '9'] = BARE,
	['.'] = BARE, ['_'] = BARE, [':'] = BARE, [','] = BARE, ['/'] = BARE,
	['+'] = BARE, ['@'] = BARE, ['-'] = BARE,
	['\\'] = ESCAPED, ['"'] = ESCAPED, ['$'] = ESCAPED, ['`'] = ESCAPED,
};

/* The bytes a bare value read back may not hold: sh would treat them. */
static const char bare_reject[] = " \t\n\r\v\f\"'\\$`;&|<>()";

/* The bytes escaped with a backslash inside double quotes. */
static const char quote_escaped[] = "\\\"$`";

/* The bytes of a key name. */
static const char key_chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_";

int info_key_lookup(const char *name)
{
	int k;

	for (k = 0; k < INFO_NKEYS; k++)
		if (!strcmp(name, info_key_names[k]))
			return k;
	return -1;
}

/* A text that counts what it cannot hold, as snprintf. */
struct sink {
	char *buf;
	size_t size;
	size_t len;
};

static void sink_putc(struct sink *s, char c)
{
	if (s->len + 1 < s->size)
		s->buf[s->len] = c;
	s->len++;
}

static void sink_write(struct sink *s, const char *str, size_t n)
{
	if (s->len + 1 < s->size) {
		size_t room = s->size - 1 - s->len;

		memcpy(s->buf + s->len, str, n < room ? n : room);
	}
	s->len += n;
}

static void sink_puts(struct sink *s, const char *str)
{
	sink_write(s, str, strlen(str));
}

static void sink_end(struct sink *s)
{
	if (s->size)
		s->buf[s->len < s->size ? s->len : s->size - 1] = 0;
}

/* An escape: \xNN for a byte, \uXXXX or \UXXXXXXXX for a character. */
static void put_escape(struct sink *s, char kind, uint32_t v)
{
	char e[12];
	int digits = kind == 'x' ? 2 : kind == 'u' ? 4 : 8;

	snprintf(e, sizeof(e), "\\%c%0*X", kind, digits, (unsigned int)v);
	sink_puts(s, e);
}

/* Whether raw must be escaped to be shown as how says. */
static int needs_escape(const char *raw, enum info_show how)
{
	const unsigned char *p = (const unsigned char *)raw;
	uint32_t cp;
	int n;

	/* printable ASCII, nearly every value, refuses nothing */
	while (*p >= 0x20 && *p < 0x7f)
		p++;
	if (!*p)
		return how == SHOW_NAME && name_is_blank(raw);
	if (how == SHOW_NAME && name_is_blank(raw))
		return 1;
	for (; *raw; raw += n) {
		n = utf8_next(raw, &cp);
		if (n < 0)
			return 1;
		if (how == SHOW_NAME ? name_char_refused(cp) :
		    text_char_refused(cp))
			return 1;
	}
	return 0;
}

size_t info_escape(const char *raw, enum info_show how, char *buf,
		   size_t size)
{
	struct sink s = { buf, size, 0 };
	int all = how == SHOW_NAME && name_is_blank(raw);
	int escape = needs_escape(raw, how);
	uint32_t cp;
	int n;

	for (; *raw; raw += n) {
		n = escape ? utf8_next(raw, &cp) : 1;
		if (!escape) {
			sink_putc(&s, *raw);
		} else if (n < 0) {
			n = 1;
			put_escape(&s, 'x', (unsigned char)*raw);
		} else if (all || (how == SHOW_NAME ? name_char_refused(cp) ||
				   cp == '\\' : text_char_refused(cp))) {
			put_escape(&s, cp > 0xffff ? 'U' : 'u', cp);
		} else {
			for (int i = 0; i < n; i++)
				sink_putc(&s, raw[i]);
		}
	}
	sink_end(&s);
	return s.len;
}

const char *info_show(const char *raw, enum info_show how, char *buf,
		      size_t size)
{
	if (!needs_escape(raw, how))
		return raw;
	info_escape(raw, how, buf, size);
	return buf;
}

/*
 * Numbers and times, without snprintf and strftime: every stat, listing
 * entry and read of an info renders it, and those two cost as much as the
 * rest of the text. Both need 21 bytes; a smaller buf takes the slow way.
 */
#define NUMBER_BYTES	21

/* v in decimal, at the end of buf. */
static const char *decimal(char *buf, size_t size, int64_t v)
{
	uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
	char *p = buf + NUMBER_BYTES;

	if (size < NUMBER_BYTES) {
		snprintf(buf, size, "%lld", (long long)v);
		return buf;
	}
	*--p = 0;
	do
		*--p = (char)('0' + u % 10);
	while ((u /= 10));
	if (v < 0)
		*--p = '-';
	return p;
}

/* n as width digits at p. */
static void digits(char *p, unsigned int n, int width)
{
	while (width--) {
		p[width] = (char)('0' + n % 10);
		n /= 10;
	}
}

/*
 * t as 2026-02-03T11:45:00Z: for the years 1970 to 9999 the civil date of
 * its day number (the proleptic Gregorian calendar in 400-year eras,
 * counted from 0000-03-01); gmtime_r and strftime for other times.
 */
static const char *utc_time(char *buf, size_t size, int64_t t)
{
	uint64_t days = (uint64_t)t / 86400 + 719468;
	unsigned int secs = (unsigned int)((uint64_t)t % 86400);
	unsigned int era_day, year, day, month, mar;
	time_t tt = (time_t)t;
	struct tm tm;

	if (t < 0 || t >= INT64_C(253402300800) || size < NUMBER_BYTES) {
		if (!gmtime_r(&tt, &tm) ||
		    !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
			return NULL;
		return buf;
	}
	era_day = (unsigned int)(days % 146097);
	year = (era_day - era_day / 1460 + era_day / 36524 -
		era_day / 146096) / 365;
	day = era_day - (365 * year + year / 4 - year / 100);
	mar = (5 * day + 2) / 153;		/* months since March */
	month = mar < 10 ? mar + 3 : mar - 9;
	year += (unsigned int)(days / 146097) * 400 + (month <= 2);
	digits(buf, year, 4);
	buf[4] = '-';
	digits(buf + 5, month, 2);
	buf[7] = '-';
	digits(buf + 8, day - (153 * mar + 2) / 5 + 1, 2);
	buf[10] = 'T';
	digits(buf + 11, secs / 3600, 2);
	buf[13] = ':';
	digits(buf + 14, secs / 60 % 60, 2);
	buf[16] = ':';
	digits(buf + 17, secs % 60, 2);
	buf[19] = 'Z';
	buf[20] = 0;
	return buf;
}

/* A text field as shown: absent when empty. */
static const char *str_value(const char *s, char *buf, size_t size)
{
	return s[0] ? info_show(s, SHOW_TEXT, buf, size) : NULL;
}

const char *info_value(const struct image *img, enum info_key key,
		       char *buf, size_t size)
{
	switch (key) {
	case INFO_ID:
		return str_value(img->id, buf, size);
	case INFO_NAME:
		if (!img->name[0])
			return NULL;
		return info_show(img->name, SHOW_NAME, buf, size);
	case INFO_TYPE:
		if ((unsigned int)img->kind >= KIND_COUNT)
			return NULL;
		return kind_names[img->kind];
	case INFO_REGION:
		return str_value(img->region, buf, size);
	case INFO_OWNER:
		return str_value(img->owner, buf, size);
	case INFO_OS_NAME:
		return str_value(img->os_name, buf, size);
	case INFO_OS_TYPE:
		return str_value(img->os_type, buf, size);
	case INFO_PLATFORM:
		return str_value(img->platform, buf, size);
	case INFO_ARCH:
		return str_value(img->arch, buf, size);
	case INFO_BITS:
		return img->bits ? decimal(buf, size, img->bits) : NULL;
	case INFO_SIZE_GB:
		return img->size_gb ? decimal(buf, size, img->size_gb) : NULL;
	case INFO_STATE:
		return str_value(img->state, buf, size);
	case INFO_PROGRESS:
		if (img->progress < 0)
			return NULL;
		return decimal(buf, size, img->progress);
	case INFO_CREATED:
		return img->created ? utc_time(buf, size, img->created) : NULL;
	case INFO_DESCRIPTION:
		return str_value(img->description, buf, size);
	case INFO_SOURCE:
		return str_value(img->source, buf, size);
	case INFO_FORMAT:
		return str_value(img->format, buf, size);
	case INFO_SHA256:
		return str_value(img->sha256, buf, size);
	case INFO_PROVIDER:
		return str_value(img->provider, buf, size);
	case INFO_PRICE:
		return str_value(img->price, buf, size);
	case INFO_SHARED_WITH:
		return str_value(img->shared_with, buf, size);
	case INFO_ERROR:
		return str_value(img->error, buf, size);
	case INFO_INSTANCE:
	case INFO_IMPORT_URL:
	case INFO_NKEYS:
		break;
	}
	return NULL;
}

size_t info_format_line(const char *key, const char *value, char *buf,
			size_t size)
{
	struct sink s = { buf, size, 0 };
	const unsigned char *p = (const unsigned char *)value;
	const char *run;

	sink_puts(&s, key);
	sink_putc(&s, '=');
	while (value_class[*p] & BARE)
		p++;
	if (value[0] && !*p) {
		sink_write(&s, value, (const char *)p - value);
	} else {
		/* the value in runs, a backslash before each escaped byte */
		sink_putc(&s, '"');
		run = value;
		for (p = (const unsigned char *)value; *p; p++) {
			if (!(value_class[*p] & ESCAPED))
				continue;
			sink_write(&s, run, (const char *)p - run);
			sink_putc(&s, '\\');
			run = (const char *)p;
		}
		sink_write(&s, run, (const char *)p - run);
		sink_putc(&s, '"');
	}
	sink_putc(&s, '\n');
	sink_end(&s);
	return s.len;
}

size_t info_render(const struct image *img, char *buf, size_t size)
{
	char tmp[INFO_VALUE_MAX];
	const char *v;
	size_t len = 0;
	int k;

	if (size)
		buf[0] = 0;
	for (k = 0; k < INFO_NKEYS; k++) {
		v = info_value(img, k, tmp, sizeof(tmp));
		if (!v)
			continue;
		if (len < size)
			len += info_format_line(info_key_names[k], v,
						buf + len, size - len);
		else
			len += info_format_line(info_key_names[k], v, NULL, 0);
	}
	return len;
}

/*
 * A bare value, up to a blank or the end of the line. sh expands a ~ at the
 * start of an assignment's value and after each ':', so those are refused.
 */
static int parse_bare(const char **pp, char *val, size_t *vlen)
{
	const char *p = *pp;

	for (; *p && *p != '\n' && *p != ' ' && *p != '\t'; p++) {
		if (strchr(bare_reject, *p))
			return -EINVAL;
		if (*p == '~' && (p == *pp || p[-1] == ':'))
			return -EINVAL;
		val[(*vlen)++] = *p;
	}
	*pp = p;
	return 0;
}

/* A "double-quoted" value, as sh reads it; $ and ` must be escaped. */
static int parse_double(const char **pp, char *val, size_t *vlen)
{
	const char *p = *pp + 1;

	for (;;) {
		switch (*p) {
		case 0:
			return -EINVAL;		/* unterminated */
		case '"':
			*pp = p + 1;
			return 0;
		case '$':
		case '`':
			return -EINVAL;		/* sh would expand it */
		case '\\':
			if (p[1] == '\n') {	/* a line continuation */
				p += 2;
				continue;
			}
			if (p[1] && strchr(quote_escaped, p[1])) {
				val[(*vlen)++] = p[1];
				p += 2;
				continue;
			}
			/* before any other byte the backslash stays */
			val[(*vlen)++] = *p++;
			continue;
		default:
			val[(*vlen)++] = *p++;
		}
	}
}

/* A 'single-quoted' value: every byte up to the next ' as it is. */
static int parse_single(const char **pp, char *val, size_t *vlen)
{
	const char *p = *pp + 1;
	const char *end = strchr(p, '\'');

	if (!end)
		return -EINVAL;		/* unterminated */
	memcpy(val + *vlen, p, end - p);
	*vlen += end - p;
	*pp = end + 1;
	return 0;
}

/*
 * Parse the line at *pp (a NUL-terminated text) into out, using val as room
 * for the value, and move *pp to the next line.
 */
/* Say what is wrong with a text in t->why; -EINVAL. */
static int __attribute__((format(printf, 2, 3)))
text_error(struct info_text *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->why, sizeof(t->why), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* The number of lines that end between from and to. */
static int lines_in(const char *from, const char *to)
{
	int n = 0;

	for (; from < to; from++)
		n += *from == '\n';
	return n;
}

static int parse_line(const char **pp, char *val, struct info_text *out)
{
	const char *p = *pp;
	const char *key;
	char name[32];
	size_t klen, vlen = 0;
	int k, ret;

	p += strspn(p, " \t");
	if (*p == '#')
		p += strcspn(p, "\n");
	if (*p == '\n' || *p == 0) {
		*pp = *p ? p + 1 : p;
		return 0;
	}

	key = p;
	klen = strspn(p, key_chars);
	p += klen;
	if (*p != '=' || klen == 0 || klen >= sizeof(name))
		return text_error(out, "not KEY=VALUE");
	memcpy(name, key, klen);
	name[klen] = 0;
	k = info_key_lookup(name);
	if (k < 0)
		return text_error(out, "unknown key %s", name);
	if (out->v[k])
		return text_error(out, "%s a second time", name);
	p++;

	if (*p == '"')
		ret = parse_double(&p, val, &vlen);
	else if (*p == '\'')
		ret = parse_single(&p, val, &vlen);
	else
		ret = parse_bare(&p, val, &vlen);
	if (ret)
		return text_error(out, "%s: %s", name, *p == '"' ?
				  "a \"value\" ends with a \" and escapes $ "
				  "and `" : *p == '\'' ?
				  "a 'value' ends with a '" :
				  "quote a value with more than "
				  "A-Za-z0-9._:,/+@-");
	p += strspn(p, " \t");
	if (*p == '\n')
		p++;
	else if (*p)
		return text_error(out, "%s: more after the value", name);

	val[vlen] = 0;
	out->v[k] = strdup(val);
	if (!out->v[k])
		return -ENOMEM;
	*pp = p;
	return 0;
}

int info_parse_more(const char *text, size_t len, struct info_text *out)
{
	const char *p;
	char *t = NULL, *val = NULL;
	size_t i, n = 0;
	int ret;

	if (len && memchr(text, 0, len))
		return text_error(out, "a NUL byte: info is text");
	/* no value is longer than the text */
	t = malloc(len + 1);
	val = malloc(len + 1);
	if (!t || !val) {
		ret = -ENOMEM;
		goto out_free;
	}
	/* CRLF line ends: drop a \r before \n or at the end of the text */
	for (i = 0; i < len; i++) {
		if (text[i] == '\r' && (i + 1 == len || text[i + 1] == '\n'))
			continue;
		t[n++] = text[i];
	}
	t[n] = 0;

	ret = 0;
	for (p = t; *p && !ret; ) {
		const char *line = p;

		ret = parse_line(&p, val, out);
		if (ret == -EINVAL) {
			char reason[sizeof(out->why)];

			snprintf(reason, sizeof(reason), "%s", out->why);
			snprintf(out->why, sizeof(out->why), "line %d: %.140s",
				 out->lines + 1 + lines_in(t, line), reason);
		}
	}
	if (!ret)
		out->lines += lines_in(t, p);

out_free:
	free(val);
	free(t);
	return ret;
}

int info_parse(const char *text, size_t len, struct info_text *out)
{
	int ret;

	memset(out, 0, sizeof(*out));
	ret = info_parse_more(text, len, out);
	if (ret)
		info_text_free(out);
	return ret;
}

void info_text_free(struct info_text *t)
{
	int k;

	for (k = 0; k < INFO_NKEYS; k++) {
		free(t->v[k]);
		t->v[k] = NULL;
	}
}
