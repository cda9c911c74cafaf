// SPDX-License-Identifier: GPL-2.0
/*
 * imagefmt.c - libFuzzer target: the disk-format probe of imports
 * (backend/local/imagefmt.c).
 *
 * The input is 8 bytes (big endian) of file that a download did not keep,
 * then the bytes it kept: the first 64 KiB as the head, the last 512 as
 * the tail, as backend/local/import.c keeps them. Any input: no memory
 * error, 0 or -EINVAL with a reason. Accepted, the format is the one the
 * magic bytes say, the disk size is the header's exactly (never wrapped
 * around 2^64), and SIZE_GB holds the whole disk without rounding up by a
 * whole GiB (a disk too large for that is refused). size_in_gb() of any
 * size is the same rounding, or EOVERFLOW.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../backend/local/imagefmt.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

typedef unsigned __int128 u128;

/* 8 bytes at p as a number, most significant first (step 1) or last (-1) */
static u128 number(const unsigned char *p, int step)
{
	u128 v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[step > 0 ? i : 7 - i];
	return v;
}

/*
 * An accepted size: want (0: not known here) is what the header says, and
 * the SIZE_GB of the image is the size in GiB rounded up.
 */
static void check_size(uint64_t size, u128 want)
{
	u128 gb = ((u128)size + (1 << 30) - 1) >> 30;
	int got = size_in_gb(size);

	CHECK(size > 0);
	if (want)
		CHECK(want == size);
	CHECK(got > 0 && (u128)got == gb);
}

/* size_in_gb() of any number of bytes: rounded up, at least 1, or EOVERFLOW */
static void check_rounding(uint64_t bytes)
{
	u128 want = ((u128)bytes + (1 << 30) - 1) >> 30;
	int gb = size_in_gb(bytes);

	CHECK(gb == -EOVERFLOW ? want > INT_MAX :
	      (u128)gb == (want ? want : 1));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct image_kind_size ks;
	struct image_bytes b;
	char err[128];
	uint64_t extra;
	u128 want = 0;
	int rc;

	if (size < 8)
		return 0;
	extra = (uint64_t)number(data, 1);
	check_rounding(extra);
	data += 8;
	size -= 8;
	b.head = data;
	b.head_len = size < IMAGE_HEAD_BYTES ? size : IMAGE_HEAD_BYTES;
	b.tail_len = size < IMAGE_TAIL_BYTES ? size : IMAGE_TAIL_BYTES;
	b.tail = data + size - b.tail_len;
	if (extra > UINT64_MAX - size)
		return 0;	/* no file is that long */
	b.total = size + extra;

	memset(err, 'x', sizeof(err));
	rc = image_format(&b, &ks, err, sizeof(err));
	CHECK(rc == 0 || rc == -EINVAL);
	if (rc) {
		CHECK(err[0] && memchr(err, 0, sizeof(err)));
		return 0;
	}
	CHECK(ks.format);
	if (b.head_len >= 4 && !memcmp(b.head, "QFI\xfb", 4)) {
		CHECK(!strcmp(ks.format, "qcow2") && b.head_len >= 32);
		want = number(b.head + 24, 1);
	} else if (b.head_len >= 4 && !memcmp(b.head, "KDMV", 4)) {
		CHECK(!strcmp(ks.format, "vmdk") && b.head_len >= 20);
		want = number(b.head + 12, -1) * 512;
	} else if (!strcmp(ks.format, "vmdk")) {
		/* a text descriptor: the sum of its extents */
		CHECK(ks.virtual_size % 512 == 0);
	} else if (b.tail_len == 512 && !memcmp(b.tail, "conectix", 8)) {
		CHECK(!strcmp(ks.format, "vhd"));
		want = number(b.tail + 48, 1);
	} else {
		CHECK(!strcmp(ks.format, "raw"));
		want = b.total;
	}
	check_size(ks.virtual_size, want);
	return 0;
}
