/* SPDX-License-Identifier: GPL-2.0 */
/*
 * config.h - the command line and -o options of imagefs, as one struct.
 */
#ifndef IMAGEFS_CONFIG_H
#define IMAGEFS_CONFIG_H

struct fuse_args;

#define LOCAL_LOCK_TIMEOUT 10	/* seconds, -o lock_timeout's default */

struct config {
	char *backend;		/* local */
	char *db;		/* local: the catalog file */
	char *account;		/* the uin the mount acts as */
	char *notify_pipe;	/* written "ok" or "error" once mounted */
	double timeout;		/* entry and attribute timeout, seconds */
	long import_timeout;	/* seconds without data: an import fails */
	char *import_dirs;	/* DIR[:DIR]: where file:// imports may read;
				 * NULL: file:// refused */
	double lock_timeout;	/* seconds a change waits for the catalog */
	int xattr;		/* answer user.imagefs.* attributes */
	int debug;		/* -d: log every API request (redacted) */
	/* tencentcloud */
	char *endpoint;		/* API URL, NULL: the public endpoint */
	char *profile;		/* tccli profile name */
	char *credentials;	/* a credential file */
	char *cache;		/* the listing cache file, NULL: default */
	double cache_ttl;	/* seconds a listing stays fresh */
	double api_timeout;	/* seconds one request may take */
	char *language;		/* X-TC-Language, NULL: en-US */
	int show_help;
	int show_version;
};

/*
 * Take imagefs's own options out of args (the rest is libfuse's) and fill
 * cfg with them and their defaults. Returns 0 or -EINVAL with a message on
 * stderr.
 */
int config_parse(struct fuse_args *args, struct config *cfg);

/* Print imagefs's options (before libfuse's). */
void config_help(void);

void config_free(struct config *cfg);

#endif /* IMAGEFS_CONFIG_H */
