/* SPDX-License-Identifier: GPL-2.0 */
/*
 * names.h - image names as directory entries, and the checks of names.
 *
 * A '/' in an image name is shown as U+FF0F (fullwidth solidus); a name that
 * repeats within one folder is shown as "<name> (<image id>)" for every
 * holder after the first by id order.
 */
#ifndef IMAGEFS_NAMES_H
#define IMAGEFS_NAMES_H

#include <stddef.h>

/*
 * Write the entry name of an image into out. dup: not the first holder of
 * its name. Returns 0, or -ENAMETOOLONG when out is too small.
 */
int name_display(const char *name, const char *id, int dup, char *out,
		 size_t size);

/*
 * Split an entry name into the image name (U+FF0F back to '/') and, when it
 * ends in " (img-xxxxxxxx)", the id (else id[0] = 0). id holds 16 bytes.
 * Returns 0, or -ENAMETOOLONG when name is too small.
 */
int name_parse(const char *entry, char *name, size_t size, char *id);

/*
 * Check a name for an image: -ENAMETOOLONG over NAME_MAX_CHARS characters,
 * -EINVAL with control characters, invalid UTF-8, or empty after trimming.
 */
int name_check(const char *name);

/* Check a description: -EINVAL over DESC_MAX_CHARS characters, or bad UTF-8. */
int description_check(const char *text);

/*
 * The rule a name broke, in words, from name_check's errno (or -EPERM: a
 * dotfile, which no folder takes).
 */
const char *name_rule(int rc);

/* Check an account number: digits only, 1..UIN_MAX_DIGITS. 0 or -EINVAL. */
int uin_check(const char *uin);

/* Check an image id: img- and 8 lowercase letters or digits. 0 or -EINVAL. */
int image_id_check(const char *id);

/* The number of UTF-8 characters of s, or -1 when s is not valid UTF-8. */
long utf8_length(const char *s);

/*
 * Names that file managers and shells probe for and that never exist here:
 * dotfiles, autorun.inf, desktop.ini, ...
 */
int name_is_probe(const char *name);

#endif /* IMAGEFS_NAMES_H */
