// SPDX-License-Identifier: GPL-2.0
/*
 * kinds.c - the folder names of the image kinds.
 */
#include "backend.h"

const char *const kind_names[KIND_COUNT] = {
	[KIND_PUBLIC]	= "public",
	[KIND_MARKET]	= "market",
	[KIND_CUSTOM]	= "custom",
	[KIND_SHARED]	= "shared",
};
