/* SPDX-License-Identifier: GPL-2.0 */
/*
 * config.h - the command line and -o options of imagefs, as one struct.
 *
 * imagefs [SOURCE] MOUNTPOINT [-o opt[,opt...]]: the form mount.fuse3
 * runs for "mount -t fuse.imagefs SOURCE MOUNTPOINT" and fstab lines.
 * SOURCE only names the mount (mount(8), df); the options say what it
 * shows.
 */
#ifndef IMAGEFS_CONFIG_H
#define IMAGEFS_CONFIG_H

struct fuse_args;

#define LOCAL_LOCK_TIMEOUT 10	/* seconds, -o lock_timeout's default */

/* In the order of config_opts[] and of the help text (config.c). */
struct config {
	char *backend;		/* local or tencentcloud */
	char *db;		/* local: the catalog file */
	char *account;		/* the uin the mount acts as */
	int xattr;		/* answer user.imagefs.* attributes */
	char *notify_pipe;	/* written "ok" or "error" once mounted */
	double timeout;		/* entry and attribute timeout, seconds */
	long import_timeout;	/* seconds without data: an import fails */
	char *import_dirs;	/* DIR[:DIR]: where file:// imports may read;
				 * NULL: file:// refused */
	double lock_timeout;	/* seconds a change waits for the catalog */
	/* tencentcloud */
	char *endpoint;		/* API URL, NULL: the public endpoint */
	char *profile;		/* tccli profile name */
	char *credentials;	/* a credential file */
	char *cache;		/* the listing cache file, NULL: default */
	double cache_ttl;	/* seconds a listing stays fresh */
	double api_timeout;	/* seconds one request may take */
	char *language;		/* X-TC-Language, NULL: en-US */
	/* not -o options */
	char *source;		/* SOURCE, NULL when not given */
	char *mountpoint;	/* MOUNTPOINT, NULL when not given */
	int debug;		/* -d: log every API request (redacted) */
	int show_help;
	int show_version;
};

/*
 * Take imagefs's own options and the SOURCE and MOUNTPOINT arguments out
 * of args (what is left is libfuse's: -f, -d, -s, mount options), drop
 * fstab's options that only mount(8) and systemd read, and fill cfg with
 * the rest and the defaults. Returns 0 or -EINVAL with a message logged.
 */
int config_parse(struct fuse_args *args, struct config *cfg);

/* Print the usage line and every option imagefs honours, to stdout. */
void config_help(const char *prog);

/* Print the usage line to stderr, after a message on what was wrong. */
void config_usage(const char *prog);

void config_free(struct config *cfg);

#endif /* IMAGEFS_CONFIG_H */
