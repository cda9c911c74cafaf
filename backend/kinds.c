// SPDX-License-Identifier: GPL-2.0
/*
 * kinds.c - the folder names of the image kinds.
 */
#include <string.h>

#include "backend.h"

const char *const kind_names[KIND_COUNT] = {
	[KIND_PUBLIC]	= "public",
	[KIND_MARKET]	= "market",
	[KIND_CUSTOM]	= "custom",
	[KIND_SHARED]	= "shared",
};

enum image_kind kind_parse(const char *name)
{
	for (int k = 0; name && k < KIND_COUNT; k++)
		if (!strcmp(name, kind_names[k]))
			return k;
	return KIND_PUBLIC;
}
