// SPDX-License-Identifier: GPL-2.0
/*
 * source.c - the SOURCE of an image, written out.
 */
#include <errno.h>
#include <stdio.h>

#include "source.h"

int source_format(char *buf, size_t size, enum source_kind kind,
		  const char *of, const char *region)
{
	static const char *const prefix[] = {
		[SOURCE_INSTANCE] = SOURCE_INSTANCE_PREFIX,
		[SOURCE_COPY] = SOURCE_COPY_PREFIX,
		[SOURCE_IMPORT] = SOURCE_IMPORT_PREFIX,
	};
	int n;

	if (kind == SOURCE_COPY)
		n = snprintf(buf, size, "%s%s" SOURCE_COPY_AT "%s",
			     prefix[kind], of, region);
	else
		n = snprintf(buf, size, "%s%s", prefix[kind], of);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}
