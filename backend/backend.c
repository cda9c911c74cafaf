// SPDX-License-Identifier: GPL-2.0
/*
 * backend.c - open the backend the configuration names: local, or
 * tencentcloud wrapped in the cache.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "../mountopts/config.h"
#include "../mountopts/log.h"

/* The host of an endpoint URL, for the cache's file name. */
static void endpoint_host(const char *endpoint, char *out, size_t size)
{
	const char *p = endpoint ? strstr(endpoint, "://") : NULL;
	size_t n;

	p = p ? p + 3 : "cvm.tencentcloudapi.com";
	n = strcspn(p, "/?#");
	snprintf(out, size, "%.*s", (int)(n < size ? n : size - 1), p);
	for (char *q = out; *q; q++)
		if (*q == '/' || *q == '@')
			*q = '_';
}

/* -o cache=PATH, else $XDG_CACHE_HOME/imagefs/<account>@<host>.db */
static int cache_path(const struct config *cfg, char *out, size_t size)
{
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	char host[256];
	int n;

	endpoint_host(cfg->endpoint, host, sizeof(host));
	if (cfg->cache)
		n = snprintf(out, size, "%s", cfg->cache);
	else if (xdg && xdg[0] == '/')
		n = snprintf(out, size, "%s/imagefs/%s@%s.db", xdg,
			     cfg->account, host);
	else
		n = snprintf(out, size, "%s/.cache/imagefs/%s@%s.db",
			     home ? home : "", cfg->account, host);
	return n < (int)size ? 0 : -ENAMETOOLONG;
}

int backend_open(const struct config *cfg, struct backend **out)
{
	struct backend *cloud;
	char path[PATH_MAX];
	int rc;

	if (!strcmp(cfg->backend, "local"))
		return local_open(cfg, out);
	if (strcmp(cfg->backend, "tencentcloud")) {
		log_error("unknown backend: %s (local or tencentcloud)",
			  cfg->backend);
		return -EINVAL;
	}
	rc = cache_path(cfg, path, sizeof(path));
	if (!rc)
		rc = tencent_open(cfg, &cloud);
	if (!rc)
		rc = cache_open(cloud, path, cfg->cache_ttl, out);
	return rc;
}
