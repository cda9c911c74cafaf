// SPDX-License-Identifier: GPL-2.0
/*
 * imagefmt.c - what a downloaded disk image is, from its own bytes: qcow2,
 * VMDK (sparse or a text descriptor), VHD (fixed or dynamic) or raw, and
 * the size of the disk it holds.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imagefmt.h"

static uint64_t be64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static uint64_t le64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* sectors of 512 bytes in bytes; 0 when that overflows */
static uint64_t sectors_bytes(uint64_t sectors)
{
	return sectors > UINT64_MAX / 512 ? 0 : sectors * 512;
}

/*
 * The sum of the extents of a VMDK text descriptor, in bytes; 0: none, or
 * more than 64 bits hold.
 */
static uint64_t vmdk_descriptor_size(const char *text, size_t len)
{
	uint64_t total = 0;
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', end - p);
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		char line[256], access[16];
		unsigned long long sectors;

		if (n < sizeof(line)) {
			memcpy(line, p, n);
			line[n] = 0;
			if (sscanf(line, "%15s %llu", access, &sectors) == 2 &&
			    (!strcmp(access, "RW") ||
			     !strcmp(access, "RDONLY") ||
			     !strcmp(access, "NOACCESS"))) {
				uint64_t bytes = sectors_bytes(sectors);

				if (!bytes || bytes > UINT64_MAX - total)
					return 0;
				total += bytes;
			}
		}
		p += n + 1;
	}
	return total;
}

/* The format's size, checked: a disk of more GiB than SIZE_GB holds is a
 * corrupt header. */
static int sized(struct image_kind_size *out, char *err, size_t err_size)
{
	if (size_in_gb(out->virtual_size) > 0)
		return 0;
	snprintf(err, err_size, "corrupt %s header: a disk of %llu bytes",
		 out->format, (unsigned long long)out->virtual_size);
	return -EINVAL;
}

static int format_of(const struct image_bytes *b, struct image_kind_size *out,
		     char *err, size_t err_size)
{
	static const char vmdk_text[] = "# Disk DescriptorFile";

	memset(out, 0, sizeof(*out));
	if (b->head_len >= 4 && !memcmp(b->head, "QFI\xfb", 4)) {
		out->format = "qcow2";
		/* version, backing file, cluster bits, then the size at 24 */
		if (b->head_len < 72 || b->total < 72 ||
		    !(out->virtual_size = be64(b->head + 24))) {
			snprintf(err, err_size, "corrupt qcow2 header");
			return -EINVAL;
		}
		return 0;
	}
	if (b->head_len >= 4 && !memcmp(b->head, "KDMV", 4)) {
		out->format = "vmdk";
		if (b->head_len < 20 ||
		    !(out->virtual_size = sectors_bytes(le64(b->head + 12)))) {
			snprintf(err, err_size, "corrupt vmdk header");
			return -EINVAL;
		}
		return 0;
	}
	if (b->head_len >= sizeof(vmdk_text) - 1 &&
	    !memcmp(b->head, vmdk_text, sizeof(vmdk_text) - 1)) {
		out->format = "vmdk";
		out->virtual_size = vmdk_descriptor_size((const char *)b->head,
							 b->head_len);
		if (!out->virtual_size) {
			snprintf(err, err_size, "vmdk descriptor without "
				 "extents, or too large");
			return -EINVAL;
		}
		return 0;
	}
	/* VHD: a 512-byte footer at the end (a copy at the start if dynamic) */
	if (b->tail_len == 512 && !memcmp(b->tail, "conectix", 8)) {
		out->format = "vhd";
		out->virtual_size = be64(b->tail + 48);
		if (!out->virtual_size) {
			snprintf(err, err_size, "corrupt vhd footer");
			return -EINVAL;
		}
		return 0;
	}
	out->format = "raw";
	out->virtual_size = b->total;
	if (!b->total) {
		snprintf(err, err_size, "empty file");
		return -EINVAL;
	}
	return 0;
}

int image_format(const struct image_bytes *b, struct image_kind_size *out,
		 char *err, size_t err_size)
{
	int rc = format_of(b, out, err, err_size);

	return rc ? rc : sized(out, err, err_size);
}

int size_in_gb(uint64_t bytes)
{
	/* rounded up without bytes + 2^30 - 1, which can wrap */
	uint64_t gb = (bytes >> 30) + !!(bytes & ((UINT64_C(1) << 30) - 1));

	if (gb > INT_MAX)
		return -EOVERFLOW;
	return gb ? (int)gb : 1;
}
