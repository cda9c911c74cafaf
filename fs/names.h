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
#include <stdint.h>

/*
 * Write the entry name of an image into out. dup: not the first holder of
 * its name. A name that name_shown_as_is() says no to (one from the cloud,
 * a peer or an old catalog) carries its " (<id>)" suffix whatever dup says
 * (id "": none) and is cut to fit NAME_MAX with it: shown as info_show()
 * shows it when name_check() refuses a character it holds or it is blank,
 * with a leading '.' as U+FF0E. Returns 0, -ENAMETOOLONG when out is too
 * small, or -EINVAL when the suffix would hold an id that is no image id
 * (such an image is not listed: its id could put a '/' in an entry).
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
 * Check a name for an image: -ENAMETOOLONG over NAME_MAX_CHARS characters;
 * -EINVAL for invalid UTF-8, a character name_char_refused() refuses, a
 * name made only of space separators (Zs: U+0020, U+00A0 NBSP, U+3000 ...)
 * or nothing, "." and "..".
 */
int name_check(const char *name);

/*
 * Whether name may be an image's name: the one check of mkdir, mv, NAME= in
 * info and of the names a backend lists. name_check()'s, and a name the
 * tree shows as it is and finds again by lookup: -EPERM for a dotfile or a
 * name file managers probe for (name_is_probe), -EINVAL for U+FF0F (what a
 * '/' is shown as) or an ending like a repeated name's " (img-xxxxxxxx)".
 */
int image_name_check(const char *name);

/*
 * The image name that mkdir or mv makes of an entry name (U+FF0F back to
 * '/'), checked by image_name_check(); -EINVAL for an entry that ends as a
 * repeated name's does (" (img-xxxxxxxx)": the tree's own suffix).
 */
int name_of_entry(const char *entry, char *name, size_t size);

/*
 * The rule a name broke, in words, from image_name_check's (or
 * name_check's) errno.
 */
const char *name_rule(int rc);

/*
 * Whether name_display() shows name as it is: image_name_check() takes it,
 * or finds it only too long, and it fits NAME_MAX with a suffix.
 */
int name_shown_as_is(const char *name);

/*
 * Whether the link of a share of an image called name carries the image's
 * id: when name_shown_as_is() refuses the name for how it would read back
 * (a dotfile, a probe name, U+FF0F, a suffix), not for a character it
 * holds (that one is shown escaped, and read back by the escapes).
 */
int link_needs_id(const char *name);

/* Check a free text (OS_NAME, PLATFORM ...): -EINVAL for invalid UTF-8 or
 * a character text_char_refused() refuses, else 0. */
int text_check(const char *text);

/* Check a description: text_check(), and -EINVAL over DESC_MAX_CHARS
 * characters. */
int description_check(const char *text);

/*
 * The characters a text may not hold, because a line or a terminal would
 * take them for structure: Unicode category Cc (C0 controls, newline and
 * tab included, DEL, C1 controls) and the line and paragraph separators
 * U+2028 (Zl) and U+2029 (Zp).
 */
int text_char_refused(uint32_t cp);

/*
 * The characters a name may not hold: those of text_char_refused(), and
 * Unicode category Cf (format characters, invisible: soft hyphen, zero
 * width space, joiner and non-joiner, the bidi marks, embeddings,
 * overrides and isolates U+202A-U+202E and U+2066-U+2069, word joiner,
 * BOM, tag characters ...), which let one name pass for another.
 */
int name_char_refused(uint32_t cp);

/* Whether name is made only of space separators (Zs), or is empty. */
int name_is_blank(const char *name);

/*
 * Decode the UTF-8 character at s (not at its terminating NUL) into *cp.
 * Returns its length in bytes, or -1 when it is not valid UTF-8: a stray
 * continuation byte, a truncated sequence, an overlong form, a surrogate or
 * a code point above U+10FFFF.
 */
int utf8_next(const char *s, uint32_t *cp);

/* Check an account number: digits only, 1..UIN_MAX_DIGITS. 0 or -EINVAL. */
int uin_check(const char *uin);

/* Check an image id: img- and 8 lowercase letters or digits. 0 or -EINVAL. */
int image_id_check(const char *id);

/* Check an instance id: ins- and 8 lowercase letters or digits. */
int instance_id_check(const char *id);

/* The number of UTF-8 characters of s, or -1 when s is not valid UTF-8. */
long utf8_length(const char *s);

/*
 * Names that file managers and shells probe for and that never exist here:
 * dotfiles, autorun.inf, desktop.ini, ...
 */
int name_is_probe(const char *name);

#endif /* IMAGEFS_NAMES_H */
