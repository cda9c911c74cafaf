/* SPDX-License-Identifier: GPL-2.0 */
/*
 * spec.h - what a written info text asks for. The text of a pending image
 * says what it becomes (a struct spec, or the image it copies); the text of
 * a committed one may change only NAME and DESCRIPTION. Only checks: no
 * backend call, no state, so unit tests can call them.
 */
#ifndef IMAGEFS_SPEC_H
#define IMAGEFS_SPEC_H

#include "../backend/backend.h"
#include "info.h"

/*
 * The spec of pending image text t, whose values it points to (ID= names
 * a copy: the caller reads t->v[INFO_ID], and only DESCRIPTION counts
 * besides). complete: the text is whole (at close), so what an import text
 * lacks is an error now. 0, or -EINVAL for a key a pending image does not
 * take, a bad value or an incomplete import, with t->why saying which.
 */
int spec_of_text(struct info_text *t, struct spec *spec, int complete);

/*
 * What t asks of committed image img: a new *name and *description (NULL:
 * unchanged). -EPERM when it changes a key other than NAME and
 * DESCRIPTION, the errno of a bad NAME (image_name_check) or DESCRIPTION,
 * else 0; t->why says what is wrong. A key whose value is what the file
 * shows (edit_unchanged) is no change and is not checked. The text of the
 * image img was copied from (the ID its SOURCE names: cp -r, rsync -a or
 * tar -x of it again) is img unchanged but for its DESCRIPTION: the
 * directory names the copy, as when it was made.
 */
int edit_of_text(const struct image *img, struct info_text *t,
		 const char **name, const char **description);

/*
 * Whether v, written for key k, is what the file shows for img: a text
 * read and written back unchanged, escapes and all (info_show), is no
 * change. An empty DESCRIPTION is the absent one.
 */
int edit_unchanged(const struct image *img, enum info_key k, const char *v);

#endif /* IMAGEFS_SPEC_H */
