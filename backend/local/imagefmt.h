/* SPDX-License-Identifier: GPL-2.0 */
/*
 * imagefmt.h - recognise a disk image from its first and last bytes.
 */
#ifndef IMAGEFS_IMAGEFMT_H
#define IMAGEFS_IMAGEFMT_H

#include <stddef.h>
#include <stdint.h>

#define IMAGE_HEAD_BYTES 65536	/* kept from the start of a download */
#define IMAGE_TAIL_BYTES 512	/* kept from its end (a VHD footer) */

/* What a download kept of a file. */
struct image_bytes {
	const unsigned char *head;	/* the first head_len bytes */
	size_t head_len;
	const unsigned char *tail;	/* the last tail_len bytes */
	size_t tail_len;
	uint64_t total;			/* the file's length */
};

struct image_kind_size {
	const char *format;		/* qcow2, vmdk, vhd or raw */
	uint64_t virtual_size;		/* of the disk, in bytes */
};

/*
 * Recognise the format and disk size. Returns 0, or -EINVAL with the
 * reason in err when the header of a known format is corrupt (a size
 * whose arithmetic would overflow, or a disk of more GiB than an int
 * holds, is corrupt too).
 */
int image_format(const struct image_bytes *b, struct image_kind_size *out,
		 char *err, size_t err_size);

/* Bytes to whole GiB, rounded up, at least 1; -EOVERFLOW beyond INT_MAX. */
int size_in_gb(uint64_t bytes);

#endif /* IMAGEFS_IMAGEFMT_H */
