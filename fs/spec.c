// SPDX-License-Identifier: GPL-2.0
/*
 * spec.c - a written info text, checked: what a pending image becomes, and
 * which edits a committed image takes. Each refusal says why in t->why.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../backend/source.h"
#include "names.h"
#include "spec.h"

/* Say what is wrong with text t in t->why; returns rc. */
static int __attribute__((format(printf, 3, 4)))
refuse_text(struct info_text *t, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->why, sizeof(t->why), fmt, ap);
	va_end(ap);
	return rc;
}

static int bad_description(struct info_text *t)
{
	return refuse_text(t, -EINVAL, "DESCRIPTION: at most %d characters "
			   "of UTF-8 text, without control characters",
			   DESC_MAX_CHARS);
}

/*
 * Whether t is the text of the image img was copied from: its ID is the one
 * img's SOURCE names (cp -r, rsync -a, tar -x of that image again).
 */
static int copy_source_text(const struct image *img,
			    const struct info_text *t)
{
	const char *id = t->v[INFO_ID];
	size_t p = strlen(SOURCE_COPY_PREFIX), n;

	if (!id || !strcmp(id, img->id) ||
	    strncmp(img->source, SOURCE_COPY_PREFIX, p))
		return 0;
	n = strlen(id);
	return !strncmp(img->source + p, id, n) &&
	       !strncmp(img->source + p + n, SOURCE_COPY_AT,
			strlen(SOURCE_COPY_AT));
}

int edit_unchanged(const struct image *img, enum info_key k, const char *v)
{
	char buf[INFO_VALUE_MAX];
	const char *now = k < INFO_INSTANCE ? info_value(img, k, buf,
							 sizeof(buf)) : NULL;

	return now ? !strcmp(now, v) : !v[0] && k == INFO_DESCRIPTION;
}

int edit_of_text(const struct image *img, struct info_text *t,
		 const char **name, const char **description)
{
	/* the directory names a copy, as when it was made */
	int copy = copy_source_text(img, t);
	int rc = 0;

	*name = *description = NULL;
	for (int k = 0; k < INFO_NKEYS && !rc; k++) {
		const char *v = t->v[k];

		if (!v || edit_unchanged(img, k, v))
			continue;
		if (k == INFO_NAME && !copy) {
			rc = image_name_check(v);
			if (rc)
				refuse_text(t, rc, "NAME: %s", name_rule(rc));
			*name = v;
		} else if (k == INFO_DESCRIPTION) {
			rc = description_check(v);
			if (rc)
				bad_description(t);
			*description = v;
		} else if (!copy) {
			rc = refuse_text(t, -EPERM, "%s is %s: only NAME and "
					 "DESCRIPTION can change",
					 info_key_names[k],
					 k < INFO_INSTANCE ? "read-only" :
					 "not for a made image");
		}
	}
	return rc;
}

/*
 * An import text says what the image is: OS_TYPE, OS_NAME or PLATFORM,
 * and ARCH; SHA256 is 64 lowercase hex digits. (Which URLs the service
 * takes is the backend's rule.) A text written line by line is complete
 * only at close: what is missing is said then.
 */
static int import_check(struct info_text *t, const struct spec *spec,
			int complete)
{
	if (complete && (!spec->os_type || !spec->arch ||
			 (!spec->os_name && !spec->platform)))
		return refuse_text(t, -EINVAL, "an import needs OS_TYPE, "
				   "OS_NAME or PLATFORM, and ARCH");
	if (spec->sha256 && (strlen(spec->sha256) != 64 ||
			     strspn(spec->sha256, "0123456789abcdef") != 64))
		return refuse_text(t, -EINVAL, "SHA256 is 64 lowercase hex "
				   "digits");
	return 0;
}

int spec_of_text(struct info_text *t, struct spec *spec, int complete)
{
	static const enum info_key allowed[] = {
		INFO_ID, INFO_NAME, INFO_DESCRIPTION, INFO_OS_NAME,
		INFO_OS_TYPE, INFO_PLATFORM, INFO_ARCH, INFO_INSTANCE,
		INFO_IMPORT_URL, INFO_SHA256,
	};
	const char *id = t->v[INFO_ID];

	memset(spec, 0, sizeof(*spec));
	if (t->v[INFO_DESCRIPTION] &&
	    description_check(t->v[INFO_DESCRIPTION]))
		return bad_description(t);
	spec->description = t->v[INFO_DESCRIPTION];
	if (id) {
		/* a copy: other keys ignored */
		if (image_id_check(id))
			return refuse_text(t, -EINVAL, "ID is img- and 8 "
					   "lowercase letters or digits");
		return 0;
	}
	for (int k = 0; k < INFO_NKEYS; k++) {
		int ok = 0;

		for (size_t i = 0; i < sizeof(allowed) / sizeof(*allowed); i++)
			ok |= allowed[i] == (enum info_key)k;
		if (t->v[k] && !ok)
			return refuse_text(t, -EINVAL, "%s is not for a new "
					   "image: it takes ID, INSTANCE, "
					   "IMPORT_URL, DESCRIPTION and the OS "
					   "keys", info_key_names[k]);
	}
	spec->instance = t->v[INFO_INSTANCE];
	if (spec->instance && instance_id_check(spec->instance))
		return refuse_text(t, -EINVAL, "INSTANCE is ins- and 8 "
				   "letters or digits");
	spec->import_url = t->v[INFO_IMPORT_URL];
	spec->os_name = t->v[INFO_OS_NAME];
	spec->os_type = t->v[INFO_OS_TYPE];
	spec->platform = t->v[INFO_PLATFORM];
	spec->arch = t->v[INFO_ARCH];
	if ((spec->os_name && text_check(spec->os_name)) ||
	    (spec->platform && text_check(spec->platform)))
		return refuse_text(t, -EINVAL, "OS_NAME and PLATFORM are UTF-8 "
				   "text without control characters");
	if (spec->os_type && strcmp(spec->os_type, "linux") &&
	    strcmp(spec->os_type, "windows"))
		return refuse_text(t, -EINVAL, "OS_TYPE is linux or windows");
	if (spec->arch && strcmp(spec->arch, "x86_64") &&
	    strcmp(spec->arch, "i386") && strcmp(spec->arch, "arm64"))
		return refuse_text(t, -EINVAL, "ARCH is x86_64, i386 or "
				   "arm64");
	spec->sha256 = t->v[INFO_SHA256];
	if (spec->import_url)
		return import_check(t, spec, complete);
	if (spec->sha256)
		return refuse_text(t, -EINVAL, "SHA256 checks an import: it "
				   "needs IMPORT_URL");
	return 0;
}
