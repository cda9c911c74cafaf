// SPDX-License-Identifier: GPL-2.0
/*
 * unit.c - unit tests of the parts of imagefs that need no mount: entry
 * names, the checks of names, the info file and what a written one asks.
 *
 * Run by `make unit`; prints the failed checks and "N passed, M failed",
 * and exits 1 when any check failed.
 */
#include <errno.h>
#include <limits.h>	/* NAME_MAX */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "../backend/local/imagefmt.h"
#include "../backend/tencentcloud/tc3.h"
#include "../backend/tencentcloud/client.h"
#include "../mountopts/config.h"
#include "../mountopts/credentials.h"
#include "../backend/backend.h"
#include "../fs/fills.h"
#include "../fs/info.h"
#include "../fs/names.h"
#include "../fs/spec.h"
#include "expect.h"

#define FF0F "\xef\xbc\x8f"	/* U+FF0F FULLWIDTH SOLIDUS */

/* 一: U+4E00, 3 bytes in UTF-8 */
#define HAN "\xe4\xb8\x80"

/* A string of n copies of unit into buf. */
static char *repeat(char *buf, size_t size, const char *unit, int n)
{
	size_t len = strlen(unit), off = 0;
	int i;

	for (i = 0; i < n && off + len < size; i++, off += len)
		memcpy(buf + off, unit, len);
	buf[off] = 0;
	return buf;
}

/* name_display then name_parse give back the name and the id. */
static void expect_round_trip(const char *name, const char *id, int dup,
			      const char *entry)
{
	char out[NAME_MAX + 1], back[256], back_id[16];

	EXPECT_EQ_INT(name_display(name, id, dup, out, sizeof(out)), 0);
	EXPECT_EQ_STR(out, entry);
	EXPECT_EQ_INT(name_parse(out, back, sizeof(back), back_id), 0);
	EXPECT_EQ_STR(back, name);
	EXPECT_EQ_STR(back_id, dup ? id : "");
}

/* fills.h: which end of a listing drops the kernel's copy of it first */
static void test_fills(void)
{
	struct fills f;

	fills_init(&f);
	/* a listing that nothing changed keeps its pages */
	fills_begin(&f, 7);
	EXPECT_EQ_INT(fills_end(&f, 7), 0);
	/* a change while it is copied drops them, once */
	fills_begin(&f, 7);
	fills_changed(&f, 8);
	fills_changed(&f, 7);
	EXPECT_EQ_INT(fills_end(&f, 7), 1);
	/* an end not remembered (seeked, given up, ended twice) drops them */
	EXPECT_EQ_INT(fills_end(&f, 7), 1);
	/* a second reader's start keeps the first one's mark */
	fills_begin(&f, 9);
	fills_changed(&f, 9);
	fills_begin(&f, 9);
	EXPECT_EQ_INT(fills_end(&f, 9), 1);
	/* more listings than slots: each one given up drops at its end */
	for (uint64_t ino = 100; ino < 100 + FILLS_MAX + 3; ino++)
		fills_begin(&f, ino);
	for (uint64_t ino = 100; ino < 103; ino++)
		EXPECT_EQ_INT(fills_end(&f, ino), 1);
	for (uint64_t ino = 103; ino < 100 + FILLS_MAX + 3; ino++)
		EXPECT_EQ_INT(fills_end(&f, ino), 0);
	fills_destroy(&f);
}

static void test_names(void)
{
	char out[NAME_MAX + 1], name[256], id[16], big[512];

	expect_round_trip("ubuntu", "img-abcd1234", 0, "ubuntu");
	expect_round_trip("a/b/c", "img-abcd1234", 0,
			  "a" FF0F "b" FF0F "c");
	expect_round_trip("web", "img-0000zzzz", 1, "web (img-0000zzzz)");
	expect_round_trip("a/b", "img-12345678", 1,
			  "a" FF0F "b (img-12345678)");
	expect_round_trip("/", "img-12345678", 0, FF0F);
	expect_round_trip("数据库 / 主机", "img-12345678", 1,
			  "数据库 " FF0F " 主机 (img-12345678)");
	expect_round_trip("café 🚀", "img-12345678", 0, "café 🚀");
	/* no name: the id alone, a name nobody may give an image */
	expect_round_trip("", "img-12345678", 1, " (img-12345678)");
	EXPECT_EQ_INT(image_name_check(" (img-12345678)"), -EINVAL);
	/* an id that is no image id is never put in an entry */
	EXPECT_EQ_INT(name_display("web", "a/b", 1, out, sizeof(out)),
		      -EINVAL);
	EXPECT_EQ_INT(name_display(".web", "img-1\n", 0, out, sizeof(out)),
		      -EINVAL);

	/* the longest name and the suffix fit NAME_MAX */
	repeat(big, sizeof(big), "🚀", NAME_MAX_CHARS);
	EXPECT_EQ_INT(name_display(big, "img-12345678", 1, out, sizeof(out)),
		      0);
	EXPECT_EQ_INT(strlen(out), NAME_MAX);

	/* too small a buffer */
	EXPECT_EQ_INT(name_display("a/b", "", 0, out, 4), -ENAMETOOLONG);
	EXPECT_EQ_INT(name_display("a/b", "", 0, out, 5), -ENAMETOOLONG);
	EXPECT_EQ_INT(name_display("a/b", "", 0, out, 6), 0);
	EXPECT_EQ_INT(name_display("", "", 0, out, 0), -ENAMETOOLONG);
	EXPECT_EQ_INT(name_display("ab", "img-12345678", 1, out, 17),
		      -ENAMETOOLONG);
	EXPECT_EQ_INT(name_display("ab", "img-12345678", 1, out, 18), 0);
	EXPECT_EQ_INT(name_parse("abc", name, 3, id), -ENAMETOOLONG);
	EXPECT_EQ_INT(name_parse("abc", name, 4, id), 0);
	EXPECT_EQ_INT(name_parse(FF0F, name, 2, id), 0);
	EXPECT_EQ_STR(name, "/");

	/* what is not an id suffix stays in the name */
	EXPECT_EQ_INT(name_parse("x (img-1234567)", name, sizeof(name), id),
		      0);
	EXPECT_EQ_STR(name, "x (img-1234567)");
	EXPECT_EQ_STR(id, "");
	EXPECT_EQ_INT(name_parse("x (img-ABCD1234)", name, sizeof(name), id),
		      0);
	EXPECT_EQ_STR(name, "x (img-ABCD1234)");
	EXPECT_EQ_STR(id, "");
	EXPECT_EQ_INT(name_parse("x(img-abcd1234)", name, sizeof(name), id),
		      0);
	EXPECT_EQ_STR(id, "");
	/* the entry of an image without a name */
	EXPECT_EQ_INT(name_parse(" (img-abcd1234)", name, sizeof(name), id),
		      0);
	EXPECT_EQ_STR(name, "");
	EXPECT_EQ_STR(id, "img-abcd1234");

	/*
	 * Known ambiguities: a name that holds U+FF0F itself reads back with
	 * '/', and a name that ends in " (img-xxxxxxxx)" reads back split.
	 * The lookup must try the whole entry name as well.
	 */
	EXPECT_EQ_INT(name_parse("a" FF0F "b", name, sizeof(name), id), 0);
	EXPECT_EQ_STR(name, "a/b");
	EXPECT_EQ_INT(name_parse("v (img-abcd1234)", name, sizeof(name), id),
		      0);
	EXPECT_EQ_STR(name, "v");
	EXPECT_EQ_STR(id, "img-abcd1234");
}

static void test_name_check(void)
{
	char buf[512];

	EXPECT_EQ_INT(name_check("ubuntu-22.04 base"), 0);
	EXPECT_EQ_INT(name_check("a/b"), 0);
	EXPECT_EQ_INT(name_check(" padded "), 0);
	EXPECT_EQ_INT(name_check(repeat(buf, sizeof(buf), "a", 60)), 0);
	EXPECT_EQ_INT(name_check(repeat(buf, sizeof(buf), "a", 61)),
		      -ENAMETOOLONG);
	EXPECT_EQ_INT(name_check(repeat(buf, sizeof(buf), HAN, 60)), 0);
	EXPECT_EQ_INT(name_check(repeat(buf, sizeof(buf), HAN, 61)),
		      -ENAMETOOLONG);
	EXPECT_EQ_INT(name_check(repeat(buf, sizeof(buf), "🚀", 60)), 0);
	EXPECT_EQ_INT(name_check("a\tb"), -EINVAL);
	EXPECT_EQ_INT(name_check("a\nb"), -EINVAL);
	EXPECT_EQ_INT(name_check("a\x1b[31m"), -EINVAL);
	EXPECT_EQ_INT(name_check("a\x7f"), -EINVAL);
	EXPECT_EQ_INT(name_check("a\xc2\x85"), -EINVAL);	/* U+0085 */
	EXPECT_EQ_INT(name_check("a\xc2\xa0"), 0);		/* U+00A0 */
	EXPECT_EQ_INT(name_check(""), -EINVAL);
	EXPECT_EQ_INT(name_check("   "), -EINVAL);
	/* Zs only: NBSP, en quad .. hair space, ideographic space */
	EXPECT_EQ_INT(name_check("\xc2\xa0\xc2\xa0"), -EINVAL);
	EXPECT_EQ_INT(name_check(" \xe2\x80\x80\xe2\x80\x8a\xe3\x80\x80 "),
		      -EINVAL);
	EXPECT_EQ_INT(name_check("\xe3\x80\x80" HAN "\xe3\x80\x80"), 0);
	/* Cf anywhere: ZWSP, ZWNJ, ZWJ, LRM, RLO, PDF, LRI, PDI, word
	 * joiner, BOM, soft hyphen, Arabic letter mark, a tag character */
	EXPECT_EQ_INT(name_check("web\xe2\x80\x8b"), -EINVAL);
	EXPECT_EQ_INT(name_check("a\xe2\x80\x8c" "b"), -EINVAL);
	EXPECT_EQ_INT(name_check("a\xe2\x80\x8d" "b"), -EINVAL);
	EXPECT_EQ_INT(name_check("a\xe2\x80\x8e" "b"), -EINVAL);
	EXPECT_EQ_INT(name_check("exe.\xe2\x80\xaetxt"), -EINVAL);
	EXPECT_EQ_INT(name_check("a\xe2\x80\xac" "b"), -EINVAL);
	EXPECT_EQ_INT(name_check("a\xe2\x81\xa6" "b"), -EINVAL);
	EXPECT_EQ_INT(name_check("a\xe2\x81\xa9" "b"), -EINVAL);
	EXPECT_EQ_INT(name_check("a\xe2\x81\xa0" "b"), -EINVAL);
	EXPECT_EQ_INT(name_check("\xef\xbb\xbfweb"), -EINVAL);
	EXPECT_EQ_INT(name_check("we\xc2\xad" "b"), -EINVAL);
	EXPECT_EQ_INT(name_check("a\xd8\x9c" "b"), -EINVAL);
	EXPECT_EQ_INT(name_check("a\xf3\xa0\x81\x81"), -EINVAL);
	/* Zl, Zp */
	EXPECT_EQ_INT(name_check("a\xe2\x80\xa8" "b"), -EINVAL);
	EXPECT_EQ_INT(name_check("a\xe2\x80\xa9" "b"), -EINVAL);
	/* what is next to them stays: narrow NBSP, en dash, U+2030 */
	EXPECT_EQ_INT(name_check("a\xe2\x80\xaf" "b\xe2\x80\x93\xe2\x80\xb0"),
		      0);
	EXPECT_EQ_INT(name_check("."), -EINVAL);
	EXPECT_EQ_INT(name_check(".."), -EINVAL);
	EXPECT_EQ_INT(name_check("..."), 0);
	EXPECT_EQ_INT(name_check("a\xff"), -EINVAL);
	EXPECT_EQ_INT(name_check("a\xe4\xb8"), -EINVAL);	/* truncated */
	EXPECT_EQ_INT(name_check("\xc0\xaf"), -EINVAL);		/* overlong */
	EXPECT_EQ_INT(name_check("\xed\xa0\x80"), -EINVAL);	/* surrogate */
	/* an invalid name is EINVAL even when also too long */
	repeat(buf, sizeof(buf), "a", 70);
	buf[0] = '\x01';
	EXPECT_EQ_INT(name_check(buf), -EINVAL);
}

static void test_description_check(void)
{
	char buf[2048];

	EXPECT_EQ_INT(description_check(""), 0);
	EXPECT_EQ_INT(description_check("one line, $HOME `x` \\ \""), 0);
	EXPECT_EQ_INT(description_check("line one\nline two"), -EINVAL);
	EXPECT_EQ_INT(description_check("a\tb"), -EINVAL);
	EXPECT_EQ_INT(description_check("a\xe2\x80\xa8" "b"), -EINVAL);
	EXPECT_EQ_INT(description_check("a\xe2\x80\xa9" "b"), -EINVAL);
	/* format characters are text: right-to-left marks, ZWJ emoji */
	EXPECT_EQ_INT(description_check("\xd7\xa9\xe2\x80\x8f 1"), 0);
	EXPECT_EQ_INT(description_check("\xf0\x9f\x91\xa9\xe2\x80\x8d"
					"\xf0\x9f\x92\xbb"), 0);
	EXPECT_EQ_INT(text_check("Ubuntu\n"), -EINVAL);
	EXPECT_EQ_INT(text_check("Ubuntu 22.04"), 0);
	EXPECT_EQ_INT(description_check(repeat(buf, sizeof(buf), HAN, 256)),
		      0);
	EXPECT_EQ_INT(description_check(repeat(buf, sizeof(buf), HAN, 257)),
		      -EINVAL);
	EXPECT_EQ_INT(description_check("a\rb"), -EINVAL);
	EXPECT_EQ_INT(description_check("a\x1b"), -EINVAL);
	EXPECT_EQ_INT(description_check("a\x7f"), -EINVAL);
	EXPECT_EQ_INT(description_check("a\xc2\x9f"), -EINVAL);
	EXPECT_EQ_INT(description_check("a\xe4\xb8"), -EINVAL);
}

static void test_ids(void)
{
	EXPECT_EQ_INT(uin_check("1"), 0);
	EXPECT_EQ_INT(uin_check("100012345678"), 0);
	EXPECT_EQ_INT(uin_check("123456789012345"), 0);
	EXPECT_EQ_INT(uin_check("1234567890123456"), -EINVAL);
	EXPECT_EQ_INT(uin_check(""), -EINVAL);
	EXPECT_EQ_INT(uin_check("0"), -EINVAL);
	EXPECT_EQ_INT(uin_check("0123"), -EINVAL);
	EXPECT_EQ_INT(uin_check("12a"), -EINVAL);
	EXPECT_EQ_INT(uin_check("-12"), -EINVAL);
	EXPECT_EQ_INT(uin_check("12 "), -EINVAL);
	EXPECT_EQ_INT(uin_check("١٢"), -EINVAL);	/* Arabic-Indic */

	EXPECT_EQ_INT(image_id_check("img-abcd1234"), 0);
	EXPECT_EQ_INT(image_id_check("img-00000000"), 0);
	EXPECT_EQ_INT(image_id_check("img-abcd123"), -EINVAL);
	EXPECT_EQ_INT(image_id_check("img-abcd12345"), -EINVAL);
	EXPECT_EQ_INT(image_id_check("img-ABCD1234"), -EINVAL);
	EXPECT_EQ_INT(image_id_check("ins-abcd1234"), -EINVAL);
	EXPECT_EQ_INT(image_id_check("img_abcd1234"), -EINVAL);
	EXPECT_EQ_INT(image_id_check("img-abcd-234"), -EINVAL);
	EXPECT_EQ_INT(image_id_check(""), -EINVAL);
	EXPECT_EQ_INT(instance_id_check("ins-abcd1234"), 0);
	EXPECT_EQ_INT(instance_id_check("ins-abc\n1234"), -EINVAL);
	EXPECT_EQ_INT(instance_id_check("ins-\x1b[2Jabcd"), -EINVAL);
	EXPECT_EQ_INT(instance_id_check("img-abcd1234"), -EINVAL);
}

static void test_utf8(void)
{
	EXPECT_EQ_INT(utf8_length(""), 0);
	EXPECT_EQ_INT(utf8_length("abc"), 3);
	EXPECT_EQ_INT(utf8_length("café"), 4);
	EXPECT_EQ_INT(utf8_length(HAN HAN), 2);
	EXPECT_EQ_INT(utf8_length("🚀"), 1);
	EXPECT_EQ_INT(utf8_length("\xf4\x8f\xbf\xbf"), 1);	/* U+10FFFF */
	EXPECT_EQ_INT(utf8_length("\xf4\x90\x80\x80"), -1);	/* too big */
	EXPECT_EQ_INT(utf8_length("\xe0\x80\xaf"), -1);		/* overlong */
	EXPECT_EQ_INT(utf8_length("\xf0\x80\x80\xaf"), -1);	/* overlong */
	EXPECT_EQ_INT(utf8_length("\xed\xbf\xbf"), -1);		/* surrogate */
	EXPECT_EQ_INT(utf8_length("\x80"), -1);
	EXPECT_EQ_INT(utf8_length("a\xc3"), -1);
	EXPECT_EQ_INT(utf8_length("\xfe"), -1);
}

static void test_probes(void)
{
	EXPECT(name_is_probe(".Trash-1000"));
	EXPECT(name_is_probe(".hidden"));
	EXPECT(name_is_probe(".directory"));
	EXPECT(name_is_probe("."));
	EXPECT(name_is_probe("autorun.inf"));
	EXPECT(name_is_probe("AutoRun.INF"));
	EXPECT(name_is_probe("Desktop.ini"));
	EXPECT(name_is_probe("Thumbs.db"));
	EXPECT(name_is_probe("folder.jpg"));
	EXPECT(name_is_probe("Folder.gif"));
	EXPECT(name_is_probe("AlbumArt.jpg"));
	EXPECT(!name_is_probe("ubuntu"));
	EXPECT(!name_is_probe("info"));
	EXPECT(!name_is_probe("autorun.inf.bak"));
	EXPECT(!name_is_probe("a.hidden"));
}

/* A custom image with every attribute set. */
static void full_image(struct image *img)
{
	memset(img, 0, sizeof(*img));
	img->row = 7;
	img->kind = KIND_CUSTOM;
	snprintf(img->id, sizeof(img->id), "img-abcd1234");
	snprintf(img->name, sizeof(img->name), "web/base 2026");
	snprintf(img->region, sizeof(img->region), "ap-guangzhou");
	snprintf(img->owner, sizeof(img->owner), "100012345678");
	snprintf(img->os_name, sizeof(img->os_name),
		 "Ubuntu Server 22.04 LTS 64-bit");
	snprintf(img->os_type, sizeof(img->os_type), "linux");
	snprintf(img->platform, sizeof(img->platform), "Ubuntu");
	snprintf(img->arch, sizeof(img->arch), "x86_64");
	img->bits = 64;
	img->size_gb = 50;
	snprintf(img->state, sizeof(img->state), "IMPORTING");
	img->progress = 0;
	img->created = 1795766400;	/* 2026-11-27T08:00:00Z */
	snprintf(img->description, sizeof(img->description),
		 "my base image, $HOME \"quoted\"");
	snprintf(img->source, sizeof(img->source),
		 "import:https://example.com/a.qcow2");
	snprintf(img->provider, sizeof(img->provider), "Example Co.");
	snprintf(img->price, sizeof(img->price), "0.50/hour");
	snprintf(img->shared_with, sizeof(img->shared_with),
		 "200012345678,300012345678");
	snprintf(img->error, sizeof(img->error), "it's slow");
}

static const char full_text[] =
	"ID=img-abcd1234\n"
	"NAME=\"web/base 2026\"\n"
	"TYPE=custom\n"
	"REGION=ap-guangzhou\n"
	"OWNER=100012345678\n"
	"OS_NAME=\"Ubuntu Server 22.04 LTS 64-bit\"\n"
	"OS_TYPE=linux\n"
	"PLATFORM=Ubuntu\n"
	"ARCH=x86_64\n"
	"BITS=64\n"
	"SIZE_GB=50\n"
	"STATE=IMPORTING\n"
	"PROGRESS=0\n"
	"CREATED=2026-11-27T08:00:00Z\n"
	"DESCRIPTION=\"my base image, \\$HOME \\\"quoted\\\"\"\n"
	"SOURCE=import:https://example.com/a.qcow2\n"
	"PROVIDER=\"Example Co.\"\n"
	"PRICE=0.50/hour\n"
	"SHARED_WITH=200012345678,300012345678\n"
	"ERROR=\"it's slow\"\n";

static void test_render(void)
{
	struct image img;
	struct info_text t;
	char buf[4096], small[16], tmp[64];
	size_t len;
	int k;

	full_image(&img);
	len = info_render(&img, buf, sizeof(buf));
	EXPECT_EQ_STR(buf, full_text);
	EXPECT_EQ_INT(len, strlen(full_text));

	/* measure, then cut as snprintf */
	EXPECT_EQ_INT(info_render(&img, NULL, 0), strlen(full_text));
	memset(small, 'x', sizeof(small));
	EXPECT_EQ_INT(info_render(&img, small, sizeof(small)),
		      strlen(full_text));
	EXPECT_EQ_INT(strlen(small), sizeof(small) - 1);
	EXPECT(!strncmp(small, full_text, sizeof(small) - 1));
	EXPECT_EQ_INT(info_render(&img, small, 1), strlen(full_text));
	EXPECT_EQ_STR(small, "");
	EXPECT_EQ_INT(info_format_line("NAME", "a b", NULL, 0),
		      strlen("NAME=\"a b\"\n"));

	/* it parses back into what info_value says */
	EXPECT_EQ_INT(info_parse(buf, len, &t), 0);
	for (k = 0; k < INFO_NKEYS; k++)
		EXPECT_EQ_STR(t.v[k], info_value(&img, k, tmp, sizeof(tmp)));
	info_text_free(&t);

	/* absent values */
	memset(&img, 0, sizeof(img));
	img.kind = KIND_PUBLIC;
	img.progress = -1;
	snprintf(img.name, sizeof(img.name), "TencentOS Server 3.1");
	len = info_render(&img, buf, sizeof(buf));
	EXPECT_EQ_STR(buf, "NAME=\"TencentOS Server 3.1\"\nTYPE=public\n");
	EXPECT_EQ_INT(len, strlen(buf));
	EXPECT_EQ_STR(info_value(&img, INFO_INSTANCE, tmp, sizeof(tmp)),
		      NULL);
	EXPECT_EQ_STR(info_value(&img, INFO_IMPORT_URL, tmp, sizeof(tmp)),
		      NULL);
	img.kind = KIND_MARKET;
	EXPECT_EQ_STR(info_value(&img, INFO_TYPE, tmp, sizeof(tmp)),
		      "market");
	img.kind = KIND_SHARED;
	EXPECT_EQ_STR(info_value(&img, INFO_TYPE, tmp, sizeof(tmp)),
		      "shared");

	EXPECT_EQ_INT(info_key_lookup("DESCRIPTION"), INFO_DESCRIPTION);
	EXPECT_EQ_INT(info_key_lookup("IMPORT_URL"), INFO_IMPORT_URL);
	EXPECT_EQ_INT(info_key_lookup("description"), -1);
	EXPECT_EQ_INT(info_key_lookup(""), -1);
}

/* Values that sh must not run and must give back byte for byte. */
static const char *const hostile[] = {
	"plain",
	"with space",
	"\"double\" quotes",
	"'single' quotes and it's",
	"$(touch /tmp/imagefs-unit-x)",
	"`touch /tmp/imagefs-unit-y`",
	"$HOME ${PATH} $1 $$ $",
	"back\\slash \\\\ \\n \\",
	"trailing backslash\\",
	"line one\nline two\n",
	"\\\nbackslash newline",
	"tab\there",
	"; rm -rf / & | < > ( ) * ? [a] ~ ~root { } ! #",
	"数据库 主机 🚀 café",
	"=",
	"-",
	"\n",
	"'\"'\"'",
};

/* Numbers and CREATED as snprintf and gmtime_r + strftime write them. */
static void test_values_as_libc_writes_them(void)
{
	static const int64_t ints[] = { 1, 9, 10, 32, 64, 100, 2147483647,
					INT64_MAX };
	char buf[INFO_VALUE_MAX], want[64];
	struct image img = { 0 };
	struct tm tm;
	time_t t;
	int fails = 0;

	for (size_t i = 0; i < sizeof(ints) / sizeof(*ints); i++) {
		img.progress = ints[i];
		snprintf(want, sizeof(want), "%lld", (long long)ints[i]);
		EXPECT_EQ_STR(info_value(&img, INFO_PROGRESS, buf,
					 sizeof(buf)), want);
	}
	img.bits = 64;
	img.size_gb = -5;
	EXPECT_EQ_STR(info_value(&img, INFO_BITS, buf, sizeof(buf)), "64");
	EXPECT_EQ_STR(info_value(&img, INFO_SIZE_GB, buf, sizeof(buf)), "-5");
	EXPECT_EQ_STR(info_value(&img, INFO_BITS, buf, 3), "64");
	/* a day a week from 1970 to 10000 at a moving second, its last
	 * second, and leap days and centuries */
	static const int64_t days[] = { 951782400, 4107542400, 4107628800,
					13574563200, 253402300799 };

	for (size_t i = 0; i < sizeof(days) / sizeof(*days); i++) {
		t = (time_t)days[i];
		img.created = days[i];
		gmtime_r(&t, &tm);
		strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%SZ", &tm);
		EXPECT_EQ_STR(info_value(&img, INFO_CREATED, buf, sizeof(buf)),
			      want);
	}
	for (int64_t s = 1; s < INT64_C(253402400000);
	     s += 7 * 86400 + 1237) {
		int64_t edge[] = { s, s - s % 86400 + 86399 };

		for (int e = 0; e < 2; e++) {
			t = (time_t)edge[e];
			img.created = edge[e];
			gmtime_r(&t, &tm);
			strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%SZ", &tm);
			if (strcmp(info_value(&img, INFO_CREATED, buf,
					      sizeof(buf)), want))
				fails++;
		}
	}
	EXPECT_EQ_INT(fails, 0);
	img.created = -1;
	EXPECT_EQ_STR(info_value(&img, INFO_CREATED, buf, sizeof(buf)),
		      "1969-12-31T23:59:59Z");
	img.created = 1796000000;
	EXPECT_EQ_STR(info_value(&img, INFO_CREATED, buf, 21),
		      "2026-11-30T00:53:20Z");
}

static void test_hostile_round_trip(void)
{
	char buf[8192], name[INFO_VALUE_MAX], desc[INFO_VALUE_MAX];
	struct image img;
	struct info_text t;
	size_t i, len;

	for (i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		memset(&img, 0, sizeof(img));
		img.kind = KIND_CUSTOM;
		img.progress = -1;
		snprintf(img.name, sizeof(img.name), "%s", hostile[i]);
		snprintf(img.description, sizeof(img.description), "%s%s",
			 hostile[i], hostile[i]);
		len = info_render(&img, buf, sizeof(buf));
		EXPECT(len < sizeof(buf));
		EXPECT_EQ_INT(info_parse(buf, len, &t), 0);
		/* what the file shows, and what a valid text keeps as is */
		EXPECT_EQ_STR(t.v[INFO_NAME], info_show(img.name, SHOW_NAME,
							name, sizeof(name)));
		EXPECT_EQ_STR(t.v[INFO_DESCRIPTION],
			      info_show(img.description, SHOW_TEXT, desc,
					sizeof(desc)));
		if (!name_check(img.name))
			EXPECT_EQ_STR(t.v[INFO_NAME], img.name);
		if (!description_check(img.description))
			EXPECT_EQ_STR(t.v[INFO_DESCRIPTION], img.description);
		EXPECT_EQ_STR(t.v[INFO_TYPE], "custom");
		EXPECT_EQ_STR(t.v[INFO_ID], NULL);
		info_text_free(&t);
	}
}

/* info_escape of raw as how says is want. */
static void expect_escape(const char *raw, enum info_show how,
			  const char *want)
{
	char buf[INFO_VALUE_MAX];

	EXPECT_EQ_INT(info_escape(raw, how, buf, sizeof(buf)), strlen(want));
	EXPECT_EQ_STR(info_show(raw, how, buf, sizeof(buf)), want);
}

static void test_escapes(void)
{
	char buf[INFO_VALUE_MAX], big[1024];
	struct image img;

	/* texts: controls, line separators and bytes that are not UTF-8 */
	expect_escape("a\nARCH=arm64", SHOW_TEXT, "a\\u000AARCH=arm64");
	expect_escape("\x1b[2J\x07\t", SHOW_TEXT,
		      "\\u001B[2J\\u0007\\u0009");
	expect_escape("del\x7f c1\xc2\x9b nel\xc2\x85", SHOW_TEXT,
		      "del\\u007F c1\\u009B nel\\u0085");
	expect_escape("ls\xe2\x80\xa8ps\xe2\x80\xa9", SHOW_TEXT,
		      "ls\\u2028ps\\u2029");
	expect_escape("bad\xff\xc0\xaf\xe4\xb8", SHOW_TEXT,
		      "bad\\xFF\\xC0\\xAF\\xE4\\xB8");
	/* a text keeps its format characters, backslashes and spaces */
	expect_escape("zw\xe2\x80\x8bsp \\u0041 \xc2\xa0", SHOW_TEXT,
		      "zw\xe2\x80\x8bsp \\u0041 \xc2\xa0");
	/* a valid name is shown as it is, backslashes too */
	expect_escape("web \\ 数据库", SHOW_NAME, "web \\ 数据库");
	/* a name that cannot be: Cf, Cc, backslashes, every char of a blank */
	expect_escape("web\xe2\x80\x8b", SHOW_NAME, "web\\u200B");
	expect_escape("\xe2\x80\xaetxt.exe\\", SHOW_NAME,
		      "\\u202Etxt.exe\\u005C");
	expect_escape("a\xf3\xa0\x81\x81", SHOW_NAME, "a\\U000E0041");
	expect_escape("\xc2\xa0 ", SHOW_NAME, "\\u00A0\\u0020");
	expect_escape("x\ny", SHOW_NAME, "x\\u000Ay");
	expect_escape("x\xffy", SHOW_NAME, "x\\xFFy");
	/* the longest field, every byte escaped, fits INFO_VALUE_MAX */
	memset(big, '\x01', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	EXPECT(info_escape(big, SHOW_NAME, NULL, 0) < INFO_VALUE_MAX);
	EXPECT(sizeof(img.source) * 6 < INFO_VALUE_MAX);
	EXPECT(sizeof(img.description) * 6 < INFO_VALUE_MAX);
	/* info_value shows every text field so */
	memset(&img, 0, sizeof(img));
	img.progress = -1;
	snprintf(img.os_name, sizeof(img.os_name), "x\x1b");
	snprintf(img.owner, sizeof(img.owner), "1\n2");
	snprintf(img.error, sizeof(img.error), "e\r");
	EXPECT_EQ_STR(info_value(&img, INFO_OS_NAME, buf, sizeof(buf)),
		      "x\\u001B");
	EXPECT_EQ_STR(info_value(&img, INFO_OWNER, buf, sizeof(buf)),
		      "1\\u000A2");
	EXPECT_EQ_STR(info_value(&img, INFO_ERROR, buf, sizeof(buf)),
		      "e\\u000D");
}

/* Run cmd and read what it prints into out. Returns its exit status. */
static int run(const char *cmd, char *out, size_t size)
{
	FILE *f = popen(cmd, "r");
	size_t n;

	if (!f)
		return -1;
	n = fread(out, 1, size - 1, f);
	out[n] = 0;
	return pclose(f);
}

static void test_sh_sources_safely(void)
{
	char dir[] = "/tmp/imagefs-unit-XXXXXX";
	char path[64], pwned[64], pwned2[64], shown[INFO_VALUE_MAX];
	char cmd[256], out[4096], want[4096], text[8192];
	struct image img;
	FILE *f;
	size_t len;
	int status;

	if (!mkdtemp(dir)) {
		EXPECT(!"mkdtemp");
		return;
	}
	snprintf(path, sizeof(path), "%s/info", dir);
	snprintf(pwned, sizeof(pwned), "%s/pwned", dir);
	snprintf(pwned2, sizeof(pwned2), "%s/pwned2", dir);

	memset(&img, 0, sizeof(img));
	img.kind = KIND_CUSTOM;
	img.progress = -1;
	snprintf(img.id, sizeof(img.id), "img-abcd1234");
	snprintf(img.name, sizeof(img.name), "x\"; touch %s; \"$(touch %s)",
		 pwned, pwned);
	snprintf(img.description, sizeof(img.description),
		 "$(touch %s) `touch %s` '$HOME' \\\" \\\\\n"
		 "second line\\\n\tit's ${IFS} 数据库\\",
		 pwned, pwned2);
	len = info_render(&img, text, sizeof(text));
	EXPECT(len < sizeof(text));

	f = fopen(path, "w");
	EXPECT(f != NULL);
	if (!f)
		goto out_rmdir;
	EXPECT_EQ_INT(fwrite(text, 1, len, f), len);
	EXPECT_EQ_INT(fclose(f), 0);

	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && sh -c '. ./info && printf %%s \"$DESCRIPTION\"'",
		 dir);
	status = run(cmd, out, sizeof(out));
	EXPECT_EQ_INT(status, 0);
	/* the text as shown: newline and tab escaped, the rest as it is */
	EXPECT_EQ_STR(out, info_value(&img, INFO_DESCRIPTION, shown,
				      sizeof(shown)));
	EXPECT(strstr(out, "second line\\\\u000A\\u0009it's") != NULL);

	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && sh -c '. ./info && printf \"%%s|%%s|%%s\" "
		 "\"$ID\" \"$NAME\" \"$TYPE\"'", dir);
	status = run(cmd, out, sizeof(out));
	EXPECT_EQ_INT(status, 0);
	snprintf(want, sizeof(want), "%s|%s|custom", img.id, img.name);
	EXPECT_EQ_STR(out, want);

	EXPECT(access(pwned, F_OK) != 0);
	EXPECT(access(pwned2, F_OK) != 0);
	unlink(pwned);
	unlink(pwned2);
	unlink(path);
out_rmdir:
	rmdir(dir);
}

/* Texts from a hostile peer or cloud, each one a NAME, DESCRIPTION and
 * OS_NAME of its own image. */
static const char *const from_elsewhere[] = {
	"x\nARCH=arm64\nOWNER=tencentcloud\nSOURCE=import:https://e/x",
	"\nID=img-evil0000",
	"\x1b]0;pwned\x07\x1b[2J\x1b[31mred\x1b[0m",
	"csi\xc2\x9b" "31m nel\xc2\x85 st\xc2\x9c",
	"del\x7f bell\x07 nul-ish\x01\x1f",
	"ls\xe2\x80\xa8" "ARCH=arm64\xe2\x80\xa9" "OWNER=x",
	"cr\rARCH=arm64\r\n",
	"bad\xff\xfe utf8 \xc0\xaf \xed\xa0\x80 \xe4\xb8",
	"tab\there",
	"zw\xe2\x80\x8bsp",
	"\xe2\x80\xae" "exe.txt",
	"\xc2\xa0\xc2\xa0",
	" ",
	"back\\slash \\u000A \\",
	"$(touch pwned) `touch pwned` ${HOME}",
	"\"quoted\" 'single' =",
	"\n",
	"plain",
};

/* The one line of key in the file at path, as grep and cut see it. */
static void tool_line(const char *dir, const char *key, const char *tool,
		      char *out, size_t size)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "cd '%s' && grep '^%s=' info %s", dir,
		 key, tool);
	EXPECT_EQ_INT(run(cmd, out, size), 0);
}

/* No byte reaches a terminal as a control: valid UTF-8, no Cc but the
 * newlines that end the lines, no U+2028/U+2029. */
static int terminal_safe(const char *text)
{
	uint32_t cp;
	int n;

	for (; *text; text += n) {
		n = utf8_next(text, &cp);
		if (n < 0 || (cp != '\n' && text_char_refused(cp)))
			return 0;
	}
	return 1;
}

/*
 * An image whose every text comes from elsewhere: sh (. ./info), grep,
 * cut and info_parse() read the same keys and values, one key a line.
 */
static void test_hostile_tools_agree(void)
{
	static const enum info_key keys[] = { INFO_NAME, INFO_OS_NAME,
					      INFO_DESCRIPTION };
	char dir[] = "/tmp/imagefs-unit-XXXXXX";
	char path[64], cmd[256], out[INFO_VALUE_MAX], line[INFO_VALUE_MAX];
	char shown[INFO_VALUE_MAX], text[32768], pwned[80];
	struct info_text t;
	struct image img;
	size_t i, k, len, nkeys;
	FILE *f;

	if (!mkdtemp(dir)) {
		EXPECT(!"mkdtemp");
		return;
	}
	snprintf(path, sizeof(path), "%s/info", dir);
	snprintf(pwned, sizeof(pwned), "%s/pwned", dir);
	for (i = 0; i < sizeof(from_elsewhere) / sizeof(*from_elsewhere);
	     i++) {
		memset(&img, 0, sizeof(img));
		img.kind = KIND_SHARED;
		img.progress = -1;
		snprintf(img.id, sizeof(img.id), "img-abcd1234");
		snprintf(img.owner, sizeof(img.owner), "100000000002");
		snprintf(img.arch, sizeof(img.arch), "x86_64");
		snprintf(img.name, sizeof(img.name), "%s", from_elsewhere[i]);
		snprintf(img.os_name, sizeof(img.os_name), "%s",
			 from_elsewhere[i]);
		snprintf(img.description, sizeof(img.description), "%s",
			 from_elsewhere[i]);
		len = info_render(&img, text, sizeof(text));
		EXPECT(len < sizeof(text));
		EXPECT(terminal_safe(text));
		f = fopen(path, "w");
		if (!f) {
			EXPECT(!"fopen");
			break;
		}
		fwrite(text, 1, len, f);
		fclose(f);

		/* one key a line: as many lines as keys, each key once */
		EXPECT_EQ_INT(info_parse(text, len, &t), 0);
		for (k = nkeys = 0; k < INFO_NKEYS; k++)
			nkeys += t.v[k] != NULL;
		snprintf(cmd, sizeof(cmd), "grep -c '' '%s'", path);
		EXPECT_EQ_INT(run(cmd, out, sizeof(out)), 0);
		EXPECT_EQ_INT(strtol(out, NULL, 10), nkeys);
		snprintf(cmd, sizeof(cmd), "grep -c '^[A-Z_]*=' '%s'", path);
		EXPECT_EQ_INT(run(cmd, out, sizeof(out)), 0);
		EXPECT_EQ_INT(strtol(out, NULL, 10), nkeys);
		tool_line(dir, "ID", "", out, sizeof(out));
		EXPECT_EQ_STR(out, "ID=img-abcd1234\n");
		tool_line(dir, "ARCH", "| cut -d= -f2-", out, sizeof(out));
		EXPECT_EQ_STR(out, "x86_64\n");
		tool_line(dir, "OWNER", "| cut -d= -f2-", out, sizeof(out));
		EXPECT_EQ_STR(out, "100000000002\n");

		for (k = 0; k < sizeof(keys) / sizeof(*keys); k++) {
			const char *name = info_key_names[keys[k]];
			const char *v = info_value(&img, keys[k], shown,
						   sizeof(shown));

			/* sh reads what the parser reads: the text shown */
			snprintf(cmd, sizeof(cmd), "cd '%s' && sh -c '. ./info "
				 "&& printf %%s \"$%s\"'", dir, name);
			EXPECT_EQ_INT(run(cmd, out, sizeof(out)), 0);
			EXPECT_EQ_STR(out, v);
			EXPECT_EQ_STR(t.v[keys[k]], v);
			/* grep | cut sees its one line, quoted as any value */
			info_format_line("", v, line, sizeof(line));
			tool_line(dir, name, "| cut -d= -f2-", out,
				  sizeof(out));
			EXPECT_EQ_STR(out, line + 1);
			/* and writing it back unchanged is a valid text */
			EXPECT_EQ_INT(text_check(t.v[keys[k]]), 0);
		}
		EXPECT(name_check(t.v[INFO_NAME]) != -EINVAL);
		info_text_free(&t);
	}
	EXPECT(access(pwned, F_OK) != 0);
	unlink(pwned);
	unlink(path);
	rmdir(dir);
}

/* info_parse of a C string. */
static int parse(const char *text, struct info_text *t)
{
	return info_parse(text, strlen(text), t);
}

static void expect_parse_error(const char *text)
{
	struct info_text t;
	int k, set = 0;

	EXPECT_EQ_INT(parse(text, &t), -EINVAL);
	for (k = 0; k < INFO_NKEYS; k++)
		set |= t.v[k] != NULL;
	EXPECT(!set);
}

static void test_parse_errors(void)
{
	static const char nul_text[] = "NAME=a\0b\n";
	struct info_text t;

	expect_parse_error("COLOR=red\n");
	expect_parse_error("name=lower\n");
	expect_parse_error("NAME=ok\nCOLOR=red\n");
	expect_parse_error("NAME\n");
	expect_parse_error("NAME ok\n");
	expect_parse_error("NAME =x\n");
	expect_parse_error("=x\n");
	expect_parse_error("NAME=\"open\n");
	expect_parse_error("NAME=\"open\\\"\n");
	expect_parse_error("NAME='open\n");
	expect_parse_error("NAME=$HOME\n");
	expect_parse_error("NAME=a$b\n");
	expect_parse_error("NAME=\"$(touch x)\"\n");
	expect_parse_error("NAME=\"`touch x`\"\n");
	expect_parse_error("NAME=`id`\n");
	expect_parse_error("NAME=a;b\n");
	expect_parse_error("NAME=a|b\n");
	expect_parse_error("NAME=a&\n");
	expect_parse_error("NAME=a>b\n");
	expect_parse_error("NAME=(a)\n");
	expect_parse_error("NAME=a\\b\n");
	expect_parse_error("NAME=a b\n");
	expect_parse_error("NAME=~/x\n");
	expect_parse_error("NAME=a:~/x\n");
	expect_parse_error("NAME=\"a\"b\n");
	expect_parse_error("NAME=\"a\" b\n");
	expect_parse_error("NAME='a'\"b\"\n");
	expect_parse_error("NAME=a\nNAME=b\n");
	expect_parse_error("NAME=a\nNAME=a\n");
	expect_parse_error("export NAME=a\n");
	expect_parse_error("NAME=a # comment\n");
	expect_parse_error("NAME=a\rb\n");

	EXPECT_EQ_INT(info_parse(nul_text, sizeof(nul_text) - 1, &t), -EINVAL);
}

static void test_parse_accepts(void)
{
	struct info_text t;

	EXPECT_EQ_INT(parse("", &t), 0);
	EXPECT_EQ_STR(t.v[INFO_NAME], NULL);
	info_text_free(&t);

	EXPECT_EQ_INT(parse("# a comment\n\n   \n\t# another\n"
			    "  NAME=web\n\nDESCRIPTION=\"two\nlines\"  \t\n"
			    "# NAME=again\n", &t), 0);
	EXPECT_EQ_STR(t.v[INFO_NAME], "web");
	EXPECT_EQ_STR(t.v[INFO_DESCRIPTION], "two\nlines");
	EXPECT_EQ_STR(t.v[INFO_ID], NULL);
	info_text_free(&t);

	/* CRLF, and no final newline */
	EXPECT_EQ_INT(parse("ID=img-abcd1234\r\nNAME=\"a b\"\r\n\r\n"
			    "DESCRIPTION=\"x\r\ny\"\r\nARCH=arm64", &t), 0);
	EXPECT_EQ_STR(t.v[INFO_ID], "img-abcd1234");
	EXPECT_EQ_STR(t.v[INFO_NAME], "a b");
	EXPECT_EQ_STR(t.v[INFO_DESCRIPTION], "x\ny");
	EXPECT_EQ_STR(t.v[INFO_ARCH], "arm64");
	info_text_free(&t);
	EXPECT_EQ_INT(parse("ARCH=arm64\r", &t), 0);
	EXPECT_EQ_STR(t.v[INFO_ARCH], "arm64");
	info_text_free(&t);

	/* single quotes: literal, may span lines */
	EXPECT_EQ_INT(parse("NAME='$(x) `y` \\ \"z\"'\n"
			    "DESCRIPTION='one\ntwo'\n", &t), 0);
	EXPECT_EQ_STR(t.v[INFO_NAME], "$(x) `y` \\ \"z\"");
	EXPECT_EQ_STR(t.v[INFO_DESCRIPTION], "one\ntwo");
	info_text_free(&t);

	/* double quotes: escapes, continuation, other backslashes kept */
	EXPECT_EQ_INT(parse("NAME=\"a\\\\b\\\"c\\$d\\`e\\nf\\\ng\"\n", &t), 0);
	EXPECT_EQ_STR(t.v[INFO_NAME], "a\\b\"c$d`e\\nfg");
	info_text_free(&t);

	/* empty values, bare values with what sh keeps as it is */
	EXPECT_EQ_INT(parse("NAME=\nDESCRIPTION=\"\"\nOS_NAME=''\n"
			    "IMPORT_URL=http://h/~u/a.qcow2?x=1#y\n"
			    "INSTANCE=ins-abcd1234  \n"
			    "PRICE=a=b*[c]{d}!%^\n", &t), 0);
	EXPECT_EQ_STR(t.v[INFO_NAME], "");
	EXPECT_EQ_STR(t.v[INFO_DESCRIPTION], "");
	EXPECT_EQ_STR(t.v[INFO_OS_NAME], "");
	EXPECT_EQ_STR(t.v[INFO_IMPORT_URL], "http://h/~u/a.qcow2?x=1#y");
	EXPECT_EQ_STR(t.v[INFO_INSTANCE], "ins-abcd1234");
	EXPECT_EQ_STR(t.v[INFO_PRICE], "a=b*[c]{d}!%^");
	info_text_free(&t);

	/* a len shorter than the string stops there */
	EXPECT_EQ_INT(info_parse("NAME=abcdef", 7, &t), 0);
	EXPECT_EQ_STR(t.v[INFO_NAME], "ab");
	info_text_free(&t);
}

/* Disk image formats from synthetic headers (backend/local/imagefmt.c). */
static void put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = v & 0xff;
}

static void put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		p[i] = v & 0xff;
}

/* spec_of_text of text (complete or not), parsed first. */
static int spec_of(const char *text, int complete, struct spec *spec,
		   struct info_text *t)
{
	int rc = parse(text, t);

	EXPECT_EQ_INT(rc, 0);
	return rc ? rc : spec_of_text(t, spec, complete);
}

static void expect_spec(const char *text, int complete, int rc)
{
	struct info_text t;
	struct spec spec;

	EXPECT_EQ_INT(spec_of(text, complete, &spec, &t), rc);
	info_text_free(&t);
}

static void test_spec(void)
{
	static const char import[] = "IMPORT_URL=https://example.com/a.qcow2\n"
				     "OS_TYPE=linux\nARCH=arm64\n"
				     "PLATFORM=Ubuntu\n";
	struct info_text t;
	struct spec spec;

	EXPECT_EQ_INT(spec_of("", 1, &spec, &t), 0);
	EXPECT(!spec.instance && !spec.import_url && !spec.description);
	info_text_free(&t);
	EXPECT_EQ_INT(spec_of("INSTANCE=ins-abcd1234\nDESCRIPTION=\"x y\"\n",
			      1, &spec, &t), 0);
	EXPECT_EQ_STR(spec.instance, "ins-abcd1234");
	EXPECT_EQ_STR(spec.description, "x y");
	info_text_free(&t);
	EXPECT_EQ_INT(spec_of(import, 1, &spec, &t), 0);
	EXPECT_EQ_STR(spec.import_url, "https://example.com/a.qcow2");
	EXPECT_EQ_STR(spec.arch, "arm64");
	info_text_free(&t);

	/* a copy: only ID and DESCRIPTION count */
	expect_spec("ID=img-abcd1234\nOWNER=x\n", 1, 0);
	expect_spec("ID=img-ABCD1234\n", 1, -EINVAL);

	expect_spec("INSTANCE=ins-abc\n", 1, -EINVAL);
	expect_spec("OWNER=100012345678\n", 1, -EINVAL);
	expect_spec("STATE=NORMAL\n", 0, -EINVAL);
	expect_spec("OS_TYPE=beos\n", 1, -EINVAL);
	expect_spec("ARCH=sparc\n", 1, -EINVAL);
	expect_spec("SHA256=00\n", 1, -EINVAL);	/* without an import */
	/* an import says what it is, but only once it is whole */
	expect_spec("IMPORT_URL=https://example.com/a.qcow2\n", 0, 0);
	expect_spec("IMPORT_URL=https://example.com/a.qcow2\n", 1, -EINVAL);
	expect_spec("IMPORT_URL=https://example.com/a.qcow2\nARCH=x86_64\n"
		    "PLATFORM=Ubuntu\n", 1, -EINVAL);
	expect_spec("IMPORT_URL=https://example.com/a.qcow2\nSHA256=AB\n", 0,
		    -EINVAL);
	/* texts refuse controls; an instance id is ins- and 8 of [0-9a-z] */
	expect_spec("DESCRIPTION=\"a\nb\"\n", 0, -EINVAL);
	expect_spec("OS_NAME=\"Ubuntu\x1b[2J\"\n", 0, -EINVAL);
	expect_spec("PLATFORM=\"a\tb\"\n", 0, -EINVAL);
	expect_spec("INSTANCE=\"ins-ab\ncd12\"\n", 0, -EINVAL);
	expect_spec("INSTANCE=ins-ABCD1234\n", 0, -EINVAL);
}

/* edit_of_text of text on img: rc, and the name and description asked. */
static void expect_edit_of(const struct image *img, const char *text,
			   int rc, const char *name, const char *description)
{
	const char *n = "unset", *d = "unset";
	struct info_text t;

	EXPECT_EQ_INT(parse(text, &t), 0);
	EXPECT_EQ_INT(edit_of_text(img, &t, &n, &d), rc);
	if (!rc) {
		EXPECT_EQ_STR(n, name);
		EXPECT_EQ_STR(d, description);
	}
	info_text_free(&t);
}

static void expect_edit(const struct image *img, const char *text, int rc)
{
	const char *n, *d;
	struct info_text t;

	EXPECT_EQ_INT(parse(text, &t), 0);
	EXPECT_EQ_INT(edit_of_text(img, &t, &n, &d), rc);
	info_text_free(&t);
}

static void test_edit_of_text(void)
{
	struct image img, copy;
	char text[4096], src[4096];

	full_image(&img);
	/* the whole text back, unchanged: no change asked */
	info_render(&img, text, sizeof(text));
	expect_edit_of(&img, text, 0, NULL, NULL);
	expect_edit_of(&img, "NAME=new\nDESCRIPTION=\"new text\"\n", 0,
		       "new", "new text");
	expect_edit(&img, "ID=img-abcd1234\nREGION=ap-guangzhou\n", 0);
	expect_edit(&img, "ID=img-00000000\n", -EPERM);
	expect_edit(&img, "OS_TYPE=windows\n", -EPERM);
	expect_edit(&img, "INSTANCE=ins-abcd1234\n", -EPERM);
	expect_edit(&img, "NAME=\"\"\n", -EINVAL);
	/* NAME= takes what mkdir takes: no dotfile, probe name or U+FF0F */
	expect_edit(&img, "NAME=.hidden\n", -EPERM);
	expect_edit(&img, "NAME=desktop.ini\n", -EPERM);
	expect_edit(&img, "NAME=\"a" FF0F "b\"\n", -EINVAL);
	expect_edit(&img, "NAME=\"v (img-abcd1234)\"\n", -EINVAL);
	expect_edit_of(&img, "NAME=a/b\n", 0, "a/b", NULL);

	/* a copy of img, given img's text: only its description counts */
	copy = img;
	snprintf(copy.id, sizeof(copy.id), "img-0000copy");
	snprintf(copy.name, sizeof(copy.name), "the-copy");
	snprintf(copy.region, sizeof(copy.region), "ap-beijing");
	snprintf(copy.description, sizeof(copy.description), "mine");
	snprintf(copy.source, sizeof(copy.source), "copy:%s@%s", img.id,
		 img.region);
	info_render(&img, src, sizeof(src));
	expect_edit_of(&copy, src, 0, NULL, img.description);
	/* not its source: the ID is a read-only key */
	snprintf(copy.source, sizeof(copy.source), "copy:img-abcd12345@x");
	expect_edit(&copy, src, -EPERM);
	snprintf(copy.source, sizeof(copy.source), "instance:ins-abcd1234");
	expect_edit(&copy, src, -EPERM);
	expect_edit(&img, "NAME=\"a\xe2\x80\x8b\"\n", -EINVAL);
	expect_edit(&img, "DESCRIPTION=\"two\nlines\"\n", -EINVAL);

	/* texts from elsewhere: written back as shown, they are no change */
	snprintf(img.name, sizeof(img.name), "old\x1b[0m\xe2\x80\x8bname");
	snprintf(img.description, sizeof(img.description), "a\nb\tc");
	snprintf(img.os_name, sizeof(img.os_name), "x\x7f");
	info_render(&img, text, sizeof(text));
	expect_edit(&img, text, 0);
	EXPECT(edit_unchanged(&img, INFO_NAME,
			      "old\\u001B[0m\\u200Bname"));
	EXPECT(edit_unchanged(&img, INFO_DESCRIPTION, "a\\u000Ab\\u0009c"));
	EXPECT(!edit_unchanged(&img, INFO_DESCRIPTION, "a\nb\tc"));
	EXPECT(!edit_unchanged(&img, INFO_NAME, img.name));
	expect_edit(&img, "OS_NAME=\"x\\u007F\"\n", 0);
	expect_edit(&img, "OS_NAME=\"x\x7f\"\n", -EPERM);
	/* a new value is checked as any */
	expect_edit(&img, "DESCRIPTION=\"a\nb\tc\"\n", -EINVAL);
	expect_edit(&img, "DESCRIPTION=\"clean\"\n", 0);
}

static void test_image_name_check(void)
{
	char out[NAME_MAX + 1], buf[512];

	EXPECT_EQ_INT(image_name_check("ubuntu base"), 0);
	EXPECT_EQ_INT(image_name_check("a/b"), 0);
	EXPECT_EQ_INT(image_name_check("..."), -EPERM);
	EXPECT_EQ_INT(image_name_check(".hidden"), -EPERM);
	EXPECT_EQ_INT(image_name_check("Desktop.ini"), -EPERM);
	EXPECT_EQ_INT(image_name_check("autorun.inf"), -EPERM);
	EXPECT_EQ_INT(image_name_check("thumbs.db"), -EPERM);
	EXPECT_EQ_INT(image_name_check("a" FF0F "b"), -EINVAL);
	EXPECT_EQ_INT(image_name_check("x (img-abcd1234)"), -EINVAL);
	EXPECT_EQ_INT(image_name_check("x (img-abcd123)"), 0);
	EXPECT_EQ_INT(image_name_check("a\tb"), -EINVAL);
	EXPECT_EQ_INT(image_name_check(repeat(buf, sizeof(buf), "a", 61)),
		      -ENAMETOOLONG);
	EXPECT_EQ_INT(image_name_check("autorun.inf.bak"), 0);

	/* every accepted name round-trips through its entry name */
	expect_round_trip("a/b", "img-12345678", 0, "a" FF0F "b");
	/* names the tree cannot show as they are: with their id */
	EXPECT_EQ_INT(name_display(".hidden", "img-12345678", 0, out,
				   sizeof(out)), 0);
	EXPECT_EQ_STR(out, "\xef\xbc\x8ehidden (img-12345678)");
	EXPECT(!name_is_probe(out));
	EXPECT_EQ_INT(name_display("desktop.ini", "img-12345678", 0, out,
				   sizeof(out)), 0);
	EXPECT_EQ_STR(out, "desktop.ini (img-12345678)");
	EXPECT_EQ_INT(name_display("a" FF0F "b", "img-12345678", 0, out,
				   sizeof(out)), 0);
	EXPECT_EQ_STR(out, "a" FF0F "b (img-12345678)");
	EXPECT_EQ_INT(name_display("..", "img-12345678", 1, out,
				   sizeof(out)), 0);
	EXPECT_EQ_STR(out, "\xef\xbc\x8e. (img-12345678)");
	/* too long for NAME_MAX: cut at a character, with the id */
	repeat(buf, sizeof(buf), HAN, 100);
	EXPECT_EQ_INT(name_display(buf, "img-12345678", 0, out, sizeof(out)),
		      0);
	EXPECT(strlen(out) <= NAME_MAX);
	EXPECT(utf8_length(out) > 0);
	EXPECT_EQ_STR(out + strlen(out) - 15, " (img-12345678)");
	/* longer than 60 characters but shown whole: as it is */
	repeat(buf, sizeof(buf), "n", 70);
	EXPECT(name_shown_as_is(buf));
	EXPECT_EQ_INT(name_display(buf, "img-12345678", 0, out, sizeof(out)),
		      0);
	EXPECT_EQ_STR(out, buf);
}

static void test_image_formats(void)
{
	static unsigned char head[1024], tail[512];
	struct image_bytes b = { head, 0, tail, 0, 0 };
	struct image_kind_size ks;
	char err[128];
	const char *vmdk = "# Disk DescriptorFile\nversion=1\n"
			   "RW 4194304 FLAT \"d-flat.vmdk\" 0\n"
			   "RW 2048 FLAT \"e-flat.vmdk\" 0\n";

	memset(head, 0, sizeof(head));
	memcpy(head, "QFI\xfb", 4);
	put_be64(head + 24, UINT64_C(3) << 30);
	b.head_len = b.total = 512;
	EXPECT_EQ_INT(image_format(&b, &ks, err, sizeof(err)), 0);
	EXPECT_EQ_STR(ks.format, "qcow2");
	EXPECT(ks.virtual_size == UINT64_C(3) << 30);
	EXPECT_EQ_INT(size_in_gb(ks.virtual_size), 3);
	b.head_len = b.total = 20;	/* a qcow2 header cut short */
	EXPECT_EQ_INT(image_format(&b, &ks, err, sizeof(err)), -EINVAL);
	EXPECT(strstr(err, "qcow2") != NULL);

	memset(head, 0, sizeof(head));
	memcpy(head, "KDMV", 4);
	put_le64(head + 12, 4194304);	/* sectors: 2 GiB */
	b.head_len = b.total = 512;
	EXPECT_EQ_INT(image_format(&b, &ks, err, sizeof(err)), 0);
	EXPECT_EQ_STR(ks.format, "vmdk");
	EXPECT_EQ_INT(size_in_gb(ks.virtual_size), 2);

	memset(head, 0, sizeof(head));
	memcpy(head, vmdk, strlen(vmdk));
	b.head_len = b.total = strlen(vmdk);
	EXPECT_EQ_INT(image_format(&b, &ks, err, sizeof(err)), 0);
	EXPECT_EQ_STR(ks.format, "vmdk");
	EXPECT(ks.virtual_size == (UINT64_C(4194304) + 2048) * 512);
	EXPECT_EQ_INT(size_in_gb(ks.virtual_size), 3);

	memset(head, 0, sizeof(head));
	memset(tail, 0, sizeof(tail));
	memcpy(tail, "conectix", 8);
	put_be64(tail + 48, UINT64_C(1073995776));
	b.head_len = 512;
	b.tail_len = 512;
	b.total = 1073995776 + 512;
	EXPECT_EQ_INT(image_format(&b, &ks, err, sizeof(err)), 0);
	EXPECT_EQ_STR(ks.format, "vhd");
	EXPECT_EQ_INT(size_in_gb(ks.virtual_size), 2);	/* rounded up */

	memset(tail, 0, sizeof(tail));
	b.total = 5 << 20;
	EXPECT_EQ_INT(image_format(&b, &ks, err, sizeof(err)), 0);
	EXPECT_EQ_STR(ks.format, "raw");
	EXPECT_EQ_INT(size_in_gb(ks.virtual_size), 1);
	b.total = 0;
	EXPECT_EQ_INT(image_format(&b, &ks, err, sizeof(err)), -EINVAL);
}

/*
 * Sizes whose arithmetic would wrap (issue 11): a qcow2 of 2^64 - 1 bytes
 * once showed SIZE_GB=1. A disk of more GiB than SIZE_GB holds is a
 * corrupt header; sizes up to that round up exactly.
 */
static void test_image_size_overflow(void)
{
	static unsigned char head[1024], tail[512];
	struct image_bytes b = { head, 512, tail, 0, 512 };
	struct image_kind_size ks;
	char err[128], vmdk[256];
	const uint64_t max = (uint64_t)INT_MAX << 30;

	EXPECT_EQ_INT(size_in_gb(UINT64_MAX), -EOVERFLOW);
	EXPECT_EQ_INT(size_in_gb(UINT64_MAX - (UINT64_C(1) << 30) + 2),
		      -EOVERFLOW);
	EXPECT_EQ_INT(size_in_gb(max), INT_MAX);
	EXPECT_EQ_INT(size_in_gb(max + 1), -EOVERFLOW);
	EXPECT_EQ_INT(size_in_gb((UINT64_C(1) << 30) + 1), 2);
	EXPECT_EQ_INT(size_in_gb(1), 1);
	EXPECT_EQ_INT(size_in_gb(0), 1);

	memset(head, 0, sizeof(head));
	memcpy(head, "QFI\xfb", 4);
	put_be64(head + 24, UINT64_MAX);
	EXPECT_EQ_INT(image_format(&b, &ks, err, sizeof(err)), -EINVAL);
	EXPECT(strstr(err, "qcow2") != NULL);
	put_be64(head + 24, max);
	EXPECT_EQ_INT(image_format(&b, &ks, err, sizeof(err)), 0);
	EXPECT_EQ_INT(size_in_gb(ks.virtual_size), INT_MAX);

	/* sparse VMDK: sectors * 512 would wrap to a small number */
	memset(head, 0, sizeof(head));
	memcpy(head, "KDMV", 4);
	put_le64(head + 12, (UINT64_C(1) << 55) + 1);
	EXPECT_EQ_INT(image_format(&b, &ks, err, sizeof(err)), -EINVAL);

	/* a descriptor whose extents add up past 2^64 */
	snprintf(vmdk, sizeof(vmdk), "# Disk DescriptorFile\n"
		 "RW %llu FLAT \"a.vmdk\" 0\nRW %llu FLAT \"b.vmdk\" 0\n",
		 (unsigned long long)(UINT64_C(1) << 54),
		 (unsigned long long)(UINT64_C(1) << 54));
	memset(head, 0, sizeof(head));
	memcpy(head, vmdk, strlen(vmdk));
	b.head_len = b.total = strlen(vmdk);
	EXPECT_EQ_INT(image_format(&b, &ks, err, sizeof(err)), -EINVAL);

	/* a VHD footer of 2^64 - 1 bytes */
	memset(head, 0, sizeof(head));
	memset(tail, 0, sizeof(tail));
	memcpy(tail, "conectix", 8);
	put_be64(tail + 48, UINT64_MAX);
	b.head_len = b.tail_len = 512;
	b.total = 1024;
	EXPECT_EQ_INT(image_format(&b, &ks, err, sizeof(err)), -EINVAL);
}

/* Tencent's published worked example of the v3 signature. */
static struct tc3_request tc3_example(void)
{
	static const char body[] = "{\"Limit\": 1, \"Filters\": [{\"Values\": "
		"[\"\\u672a\\u547d\\u540d\"], \"Name\": \"instance-name\"}]}";
	struct tc3_request r = {
		.secret_id = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
		.secret_key = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
		.service = "cvm",
		.host = "cvm.tencentcloudapi.com",
		.content_type = "application/json; charset=utf-8",
		.payload = body,
		.payload_len = sizeof(body) - 1,
		.timestamp = 1551113065,
	};

	return r;
}

/* The worked example, byte for byte. */
static void test_tc3_sign(void)
{
	struct tc3_request r = tc3_example();
	char auth[512], hash[65], small[16];

	EXPECT_EQ_INT((int)r.payload_len, 86);
	EXPECT_EQ_INT(tc3_sign(&r, auth, sizeof(auth), hash), 0);
	EXPECT_EQ_STR(hash, "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e27"
		      "49d62a09ca18d7031");
	EXPECT_EQ_STR(auth, "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74"
		      "WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, "
		      "SignedHeaders=content-type;host, Signature=72e494ea809"
		      "ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168");
	EXPECT_EQ_INT(tc3_sign(&r, small, sizeof(small), NULL),
		      -ENAMETOOLONG);
}

/* A stack of our own for a signing thread, to look at once it is over. */
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#else
#define VALGRIND_MAKE_MEM_DEFINED(addr, len) ((void)(addr), (void)(len))
#endif

#define SIGN_STACK	(1 << 20)

static void *sign_on_own_stack(void *arg)
{
	char auth[512];

	return (void *)(long)tc3_sign(arg, auth, sizeof(auth), NULL);
}

/* Whether mem holds needle; byte by byte, blind to sanitizer redzones. */
__attribute__((no_sanitize_address, noinline))
static int holds(const unsigned char *mem, size_t len,
		 const unsigned char *needle, size_t n)
{
	for (size_t i = 0; i + n <= len; i++) {
		size_t k = 0;

		while (k < n && mem[i + k] == needle[k])
			k++;
		if (k == n)
			return 1;
	}
	return 0;
}

/* The keys TC3 derives from the secret key are wiped from the stack. */
static void test_tc3_wipes(void)
{
	struct tc3_request r = tc3_example();
	static const char secret[] = "TC3Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";
	unsigned char k_date[32], k_service[32], k_signing[32];
	unsigned int n = 0;
	pthread_attr_t attr;
	unsigned char *stack = malloc(SIGN_STACK);
	pthread_t t;
	void *rc = (void *)1L;

	if (!stack) {
		EXPECT(!"malloc");
		return;
	}
	HMAC(EVP_sha256(), secret, sizeof(secret) - 1,
	     (const unsigned char *)"2019-02-25", 10, k_date, &n);
	HMAC(EVP_sha256(), k_date, 32, (const unsigned char *)"cvm", 3,
	     k_service, &n);
	HMAC(EVP_sha256(), k_service, 32,
	     (const unsigned char *)"tc3_request", 11, k_signing, &n);
	memset(stack, 0x5a, SIGN_STACK);
	pthread_attr_init(&attr);
	pthread_attr_setstack(&attr, stack, SIGN_STACK);
	EXPECT_EQ_INT(pthread_create(&t, &attr, sign_on_own_stack, &r), 0);
	pthread_join(t, &rc);
	pthread_attr_destroy(&attr);
	/* valgrind calls a finished thread's stack unaddressable: look */
	VALGRIND_MAKE_MEM_DEFINED(stack, SIGN_STACK);
	EXPECT(rc == NULL);
	EXPECT(!holds(stack, SIGN_STACK, k_date, 32));
	EXPECT(!holds(stack, SIGN_STACK, k_service, 32));
	EXPECT(!holds(stack, SIGN_STACK, k_signing, 32));
	EXPECT(!holds(stack, SIGN_STACK, (const unsigned char *)secret,
		      sizeof(secret) - 1));
	free(stack);
}

/* The cloud's error codes, one by one, in DESIGN.md's errno. */
static void test_tc_errno(void)
{
	static const struct {
		const char *action, *code;
		int err;
	} cases[] = {
		{ "CreateImage", "ImageQuotaLimitExceeded", EDQUOT },
		{ "SyncImages", "ImageQuotaLimitExceeded", EDQUOT },
		{ "ImportImage", "ImageQuotaLimitExceeded", EDQUOT },
		{ NULL, "RequestLimitExceeded", EAGAIN },
		{ NULL, "RequestLimitExceeded.UinLimitExceeded", EAGAIN },
		{ NULL, "RequestLimitExceeded.GlobalRegionUinLimitExceeded",
		  EAGAIN },
		{ NULL, "RequestLimitExceeded.IPLimitExceeded", EAGAIN },
		{ "SyncImages", "InvalidRegion.Unavailable", EOPNOTSUPP },
		{ "SyncImages", "UnsupportedOperation.Region", EOPNOTSUPP },
		{ "SyncImages", "InvalidRegion.NotFound", EOPNOTSUPP },
		{ "SyncImages", "InvalidParameterValue.InvalidRegion",
		  EOPNOTSUPP },
		{ NULL, "UnsupportedRegion", EOPNOTSUPP },
		{ "ImportImage", "RegionAbilityLimit.UnsupportedToImportImage",
		  EOPNOTSUPP },
		{ NULL, "UnsupportedOperation.EncryptedImagesNotSupported",
		  EOPNOTSUPP },
		{ NULL, "UnsupportedOperation.LocationImageNotSupported",
		  EOPNOTSUPP },
		{ NULL, "UnsupportedOperation.SyncEncryptImageNotSupport",
		  EOPNOTSUPP },
		{ NULL, "InvalidParameter.InstanceImageNotSupport",
		  EOPNOTSUPP },
		{ NULL, "FailedOperation.BYOLImageShareFailed", EOPNOTSUPP },
		{ NULL, "UnsupportedOperation", EOPNOTSUPP },
		{ NULL, "UnsupportedOperation.PublicImageExportUnsupported",
		  EOPNOTSUPP },
		{ NULL, "UnauthorizedOperation.ImageNotBelongToAccount",
		  EPERM },
		{ "SyncImages", "InvalidParameterValue.InvalidImageId", EPERM },
		{ "DeleteImages",
		  "InvalidParameterValue.InvalidImageIdIsShared", EPERM },
		{ "ModifyImageAttribute",
		  "UnsupportedOperation.SharedImageModifyUnsupported", EPERM },
		{ "ModifyImageSharePermission", "OverQuota", EMLINK },
		{ "ModifyImageSharePermission",
		  "FailedOperation.AccountAlreadyExists", EEXIST },
		{ "CreateImage", "InvalidImageName.Duplicate", EEXIST },
		{ "DeleteImages", "InvalidImageId.InShared", EBUSY },
		{ "DeleteImages", "InvalidImageId.IncorrectState", EBUSY },
		{ "ModifyImageSharePermission",
		  "InvalidParameterValue.InvalidImageState", EBUSY },
		{ "SyncImages", "FailedOperation.InvalidImageState", EBUSY },
		{ "DeleteImages", "MutexOperation.TaskRunning", EBUSY },
		{ "CreateImage", "OperationDenied.InstanceOperationInProgress",
		  EBUSY },
		{ "CreateImage", "UnsupportedOperation.InstanceStateStarting",
		  EBUSY },
		{ "CreateImage", "ResourceUnavailable.SnapshotCreating",
		  EBUSY },
		{ "CreateImage", "ResourceInUse", EBUSY },
		{ "ModifyImageAttribute", "InvalidParameterValue.TooLong",
		  ENAMETOOLONG },
		{ "ModifyImageAttribute", "InvalidParameterValue.TooLarge",
		  ENAMETOOLONG },
		{ "CreateImage", "InvalidParameter.ValueTooLarge",
		  ENAMETOOLONG },
		{ "SyncImages", "InvalidImageId.TooLarge", EFBIG },
		{ "SyncImages", "InvalidImageId.NotFound", EINVAL },
		{ "DeleteImages", "InvalidImageId.NotFound", ENOENT },
		{ "ModifyImageAttribute", "InvalidImageId.NotFound", ENOENT },
		{ NULL, "InvalidImageId.NotFound", ENOENT },
		{ "ModifyImageSharePermission", "InvalidAccountIs.YourSelf",
		  EINVAL },
		{ "ModifyImageSharePermission",
		  "FailedOperation.AccountIsYourSelf", EINVAL },
		{ "ModifyImageSharePermission",
		  "FailedOperation.NotMasterAccount", EINVAL },
		{ "ModifyImageSharePermission", "InvalidAccountId.NotFound",
		  EINVAL },
		{ "SyncImages", "InvalidImageId.Malformed", EINVAL },
		{ "CreateImage", "InvalidInstanceId.NotFound", EINVAL },
		{ "CreateImage", "InvalidInstanceId.Malformed", EINVAL },
		{ "CreateImage", "InvalidInstance.NotSupported", EINVAL },
		{ "ImportImage", "InvalidImageOsType.Unsupported", EINVAL },
		{ "ImportImage", "InvalidImageOsVersion.Unsupported", EINVAL },
		{ "ImportImage", "InvalidParameter.InvalidParameterUrlError",
		  EINVAL },
		{ "ImportImage", "InvalidParameterValue.ISOMustImportByForce",
		  EINVAL },
		{ NULL, "InvalidParameter", EINVAL },
		{ NULL, "InvalidParameterValue", EINVAL },
		{ "DescribeImages", "InvalidParameter."
		  "InvalidParameterCoexistImageIdsFilters", EINVAL },
		{ "DescribeImages", "InvalidFilter", EINVAL },
		{ "DescribeImages", "InvalidFilterValue.LimitExceeded",
		  EINVAL },
		{ "DescribeImages", "InvalidParameterValue.LimitExceeded",
		  EINVAL },
		{ NULL, "MissingParameter", EINVAL },
		{ NULL, "UnknownParameter", EINVAL },
		{ "DescribeImages", "InvalidRegion.NotFound", EINVAL },
		{ NULL, "AuthFailure.SignatureFailure", EACCES },
		{ NULL, "AuthFailure.SignatureExpire", EACCES },
		{ NULL, "AuthFailure.SecretIdNotFound", EACCES },
		{ NULL, "AuthFailure.TokenFailure", EACCES },
		{ NULL, "UnauthorizedOperation", EACCES },
		{ NULL, "UnauthorizedOperation.PermissionDenied", EACCES },
		{ NULL, "UnauthorizedOperation.InvalidToken", EACCES },
		{ NULL, "OperationDenied.InnerUserProhibitAction", EACCES },
		{ NULL, "InvalidAccount.InsufficientBalance", EACCES },
		{ NULL, "InvalidAccount.UnpaidOrder", EACCES },
		{ NULL, "AccountQualificationRestrictions", EACCES },
		{ NULL, "IpInBlacklist", EACCES },
		{ NULL, "IpNotInWhitelist", EACCES },
		{ NULL, "InternalError", EIO },
		{ NULL, "InternalServerError", EIO },
		{ NULL, "ServiceUnavailable", EIO },
		{ NULL, "ResourceInsufficient", EIO },
		{ NULL, "SomethingNew.Unheard", EIO },
		{ NULL, "", EIO },
		/* codes the old table had, which no action documents */
		{ NULL, "LimitExceeded.ImageOperation", EIO },
		{ NULL, "LimitExceeded.ImageQuota", EIO },
		{ NULL, "InvalidImageState.Busy", EIO },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got = tc_errno(cases[i].action, cases[i].code);

		if (got != -cases[i].err)
			fprintf(stderr, "tc_errno(%s, %s)\n",
				cases[i].action ? cases[i].action : "-",
				cases[i].code);
		EXPECT_EQ_INT(got, -cases[i].err);
	}
	EXPECT_EQ_INT(tc_errno("CreateImage", "DryRunOperation"), 0);
}

/* The endpoint: the Host that is signed is the Host that is sent. */
static void test_tc_conf(void)
{
	static const struct {
		const char *endpoint, *host;
		int rc;
	} cases[] = {
		{ NULL, "cvm.tencentcloudapi.com", 0 },
		{ "https://cvm.tencentcloudapi.com:443",
		  "cvm.tencentcloudapi.com", 0 },
		{ "https://CVM.TencentCloudAPI.com/", "cvm.tencentcloudapi.com",
		  0 },
		{ "https://cvm.ap-guangzhou.tencentcloudapi.com:8443",
		  "cvm.ap-guangzhou.tencentcloudapi.com:8443", 0 },
		{ "http://127.0.0.1:8080/", "127.0.0.1:8080", 0 },
		{ "http://127.0.0.1:80", "127.0.0.1", 0 },
		{ "http://localhost:8080", "localhost:8080", 0 },
		{ "http://[::1]:8080", "[::1]:8080", 0 },
		{ "http://127.9.8.7", "127.9.8.7", 0 },
		{ "http://cvm.tencentcloudapi.com", NULL, -EINVAL },
		{ "http://10.0.0.1:8080", NULL, -EINVAL },
		{ "ftp://127.0.0.1/", NULL, -EINVAL },
		{ "::not a url", NULL, -EINVAL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tc_conf c = { 0 };

		EXPECT_EQ_INT(tc_conf_init(&c, cases[i].endpoint, NULL),
			      cases[i].rc);
		if (cases[i].host)
			EXPECT_EQ_STR(c.host, cases[i].host);
		EXPECT_EQ_STR(c.language, "en-US");
		tc_conf_free(&c);
	}
}

static void write_text(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	EXPECT(f != NULL);
	if (!f)
		return;
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

/* Credentials from a file (mode checked), a profile and the environment. */
static void test_credentials(void)
{
	char dir[] = "/tmp/imagefs-unit-XXXXXX", path[320], tccli[64];
	struct config cfg = { 0 };
	struct credentials c;

	EXPECT(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/key.json", dir);
	write_text(path, "{\"secretId\": \"AKIDx\", \"secretKey\": \"k\", "
		   "\"token\": \"t\"}", 0664);
	cfg.credentials = path;
	EXPECT_EQ_INT(credentials_load(&cfg, &c), -EACCES);	/* writable */
	chmod(path, 0602);
	EXPECT_EQ_INT(credentials_load(&cfg, &c), -EACCES);
	chmod(path, 0644);	/* as tccli writes it: taken, with a warning */
	EXPECT_EQ_INT(credentials_load(&cfg, &c), 0);
	EXPECT_EQ_STR(c.id, "AKIDx");
	chmod(path, 0600);
	EXPECT_EQ_INT(credentials_load(&cfg, &c), 0);
	EXPECT_EQ_STR(c.id, "AKIDx");
	EXPECT_EQ_STR(c.key, "k");
	EXPECT_EQ_STR(c.token, "t");
	credentials_clear(&c);
	EXPECT_EQ_STR(c.key, "");
	write_text(path, "{\"secretId\": \"AKIDx\"}", 0600);
	EXPECT_EQ_INT(credentials_load(&cfg, &c), -EACCES);

	/* ~/.tccli/<profile>.credential, the profile from TCCLI_PROFILE */
	cfg.credentials = NULL;
	snprintf(tccli, sizeof(tccli), "%s/.tccli", dir);
	EXPECT_EQ_INT(mkdir(tccli, 0700), 0);
	snprintf(path, sizeof(path), "%s/work.credential", tccli);
	write_text(path, "{\"secretId\": \"AKIDw\", \"secretKey\": \"w\"}",
		   0600);
	setenv("HOME", dir, 1);
	unsetenv("TENCENTCLOUD_SECRET_ID");
	setenv("TCCLI_PROFILE", "work", 1);
	EXPECT_EQ_INT(credentials_load(&cfg, &c), 0);
	EXPECT_EQ_STR(c.id, "AKIDw");
	EXPECT_EQ_STR(c.token, "");
	unsetenv("TCCLI_PROFILE");
	EXPECT_EQ_INT(credentials_load(&cfg, &c), -EACCES);	/* default */
	cfg.profile = "../work";
	EXPECT_EQ_INT(credentials_load(&cfg, &c), -EACCES);
	cfg.profile = NULL;

	/* the environment, with either name of the token */
	setenv("TENCENTCLOUD_SECRET_ID", "AKIDe", 1);
	EXPECT_EQ_INT(credentials_load(&cfg, &c), -EACCES);
	setenv("TENCENTCLOUD_SECRET_KEY", "e", 1);
	setenv("TENCENTCLOUD_SECURITY_TOKEN", "st", 1);
	EXPECT_EQ_INT(credentials_load(&cfg, &c), 0);
	EXPECT_EQ_STR(c.id, "AKIDe");
	EXPECT_EQ_STR(c.token, "st");
	cfg.profile = "work";	/* an explicit option wins */
	EXPECT_EQ_INT(credentials_load(&cfg, &c), 0);
	EXPECT_EQ_STR(c.id, "AKIDw");
	unsetenv("TENCENTCLOUD_SECRET_ID");
	unsetenv("TENCENTCLOUD_SECRET_KEY");
	unsetenv("TENCENTCLOUD_SECURITY_TOKEN");
	unlink(path);
	rmdir(tccli);
	snprintf(path, sizeof(path), "%s/key.json", dir);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	test_fills();
	test_names();
	test_name_check();
	test_description_check();
	test_ids();
	test_utf8();
	test_probes();
	test_render();
	test_values_as_libc_writes_them();
	test_hostile_round_trip();
	test_escapes();
	test_sh_sources_safely();
	test_hostile_tools_agree();
	test_parse_errors();
	test_parse_accepts();
	test_spec();
	test_edit_of_text();
	test_image_name_check();
	test_image_formats();
	test_image_size_overflow();
	test_tc3_sign();
	test_tc3_wipes();
	test_tc_errno();
	test_tc_conf();
	test_credentials();
	return expect_summary() ? 1 : 0;
}
