/* SPDX-License-Identifier: GPL-2.0 */
/*
 * source.h - the SOURCE of an image: what it was made from, as the info
 * file shows it and a catalog keeps it. One of
 *
 *	instance:<instance id>		made from an instance
 *	copy:<image id>@<region>	a copy of an image of region
 *	import:<url>			imported from url, without its user
 *					info, query and fragment
 *
 * The syntax is defined here once, for C and for SQL.
 */
#ifndef IMAGEFS_SOURCE_H
#define IMAGEFS_SOURCE_H

#include <stddef.h>

#define SOURCE_INSTANCE_PREFIX	"instance:"
#define SOURCE_COPY_PREFIX	"copy:"
#define SOURCE_COPY_AT		"@"
#define SOURCE_IMPORT_PREFIX	"import:"

enum source_kind {
	SOURCE_INSTANCE,
	SOURCE_COPY,
	SOURCE_IMPORT,
};

/*
 * Write the SOURCE of kind into buf: of is the instance id, the copied
 * image's id or the URL; region the copied image's region (else unused).
 * 0, or -ENAMETOOLONG when it does not fit.
 */
int source_format(char *buf, size_t size, enum source_kind kind,
		  const char *of, const char *region);

/*
 * The SOURCE of a copy as an SQL expression, from the SQL expressions of
 * the copied image's id and region: a catalog finds an image's copies by
 * it.
 */
#define SOURCE_COPY_SQL(id, region)					\
	"('" SOURCE_COPY_PREFIX "' || " id " || '" SOURCE_COPY_AT	\
	"' || " region ")"

#endif /* IMAGEFS_SOURCE_H */
