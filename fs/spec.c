// SPDX-License-Identifier: GPL-2.0
/*
 * spec.c - a written info text, checked: what a pending image becomes, and
 * which edits a committed image takes.
 */
#include <errno.h>
#include <string.h>

#include "names.h"
#include "spec.h"

int edit_check(const struct image *img, const struct info_text *t)
{
	char buf[64];
	int rc;

	for (int k = 0; k < INFO_NKEYS; k++) {
		const char *now;

		if (!t->v[k] || k == INFO_NAME || k == INFO_DESCRIPTION)
			continue;
		now = k < INFO_INSTANCE ? info_value(img, k, buf, sizeof(buf))
					: NULL;
		if (!now || strcmp(now, t->v[k]))
			return -EPERM;
	}
	if (t->v[INFO_NAME]) {
		rc = name_check(t->v[INFO_NAME]);
		if (rc)
			return rc;
	}
	if (t->v[INFO_DESCRIPTION])
		return description_check(t->v[INFO_DESCRIPTION]);
	return 0;
}

/*
 * An import text says what the image is: OS_TYPE, OS_NAME or PLATFORM,
 * and ARCH; SHA256 is 64 lowercase hex digits. (Which URLs the service
 * takes is the backend's rule.) A text written line by line is complete
 * only at close: what is missing is said then.
 */
static int import_check(const struct spec *spec, int complete)
{
	if (complete && (!spec->os_type || !spec->arch ||
			 (!spec->os_name && !spec->platform)))
		return -EINVAL;
	if (spec->sha256 && (strlen(spec->sha256) != 64 ||
			     strspn(spec->sha256, "0123456789abcdef") != 64))
		return -EINVAL;
	return 0;
}

int spec_of_text(const struct info_text *t, struct spec *spec, int complete)
{
	static const enum info_key allowed[] = {
		INFO_ID, INFO_NAME, INFO_DESCRIPTION, INFO_OS_NAME,
		INFO_OS_TYPE, INFO_PLATFORM, INFO_ARCH, INFO_INSTANCE,
		INFO_IMPORT_URL, INFO_SHA256,
	};
	const char *id = t->v[INFO_ID];
	int rc;

	memset(spec, 0, sizeof(*spec));
	if (t->v[INFO_DESCRIPTION]) {
		rc = description_check(t->v[INFO_DESCRIPTION]);
		if (rc)
			return rc;
	}
	spec->description = t->v[INFO_DESCRIPTION];
	if (id)
		return image_id_check(id);	/* a copy: other keys ignored */
	for (int k = 0; k < INFO_NKEYS; k++) {
		int ok = 0;

		for (size_t i = 0; i < sizeof(allowed) / sizeof(*allowed); i++)
			ok |= allowed[i] == (enum info_key)k;
		if (t->v[k] && !ok)
			return -EINVAL;
	}
	spec->instance = t->v[INFO_INSTANCE];
	if (spec->instance && (strncmp(spec->instance, "ins-", 4) ||
			       strlen(spec->instance) != 12))
		return -EINVAL;
	spec->import_url = t->v[INFO_IMPORT_URL];
	spec->os_name = t->v[INFO_OS_NAME];
	spec->os_type = t->v[INFO_OS_TYPE];
	spec->platform = t->v[INFO_PLATFORM];
	spec->arch = t->v[INFO_ARCH];
	if (spec->os_type && strcmp(spec->os_type, "linux") &&
	    strcmp(spec->os_type, "windows"))
		return -EINVAL;
	if (spec->arch && strcmp(spec->arch, "x86_64") &&
	    strcmp(spec->arch, "i386") && strcmp(spec->arch, "arm64"))
		return -EINVAL;
	spec->sha256 = t->v[INFO_SHA256];
	if (spec->import_url)
		return import_check(spec, complete);
	return spec->sha256 ? -EINVAL : 0;	/* SHA256 checks an import */
}
