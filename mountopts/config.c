// SPDX-License-Identifier: GPL-2.0
/*
 * config.c - imagefs's -o options: one table, one help text, one struct,
 * in the same order; the SOURCE and MOUNTPOINT arguments; fstab's options
 * that are not for imagefs.
 */
#define FUSE_USE_VERSION 34
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fuse_lowlevel.h>
#include <fuse_opt.h>

#include "config.h"
#include "log.h"

#define OPT(t, p) { t, offsetof(struct config, p), 1 }

enum { KEY_DISCARD, KEY_HELP, KEY_VERSION };

static const struct fuse_opt config_opts[] = {
	OPT("backend=%s", backend),
	OPT("db=%s", db),
	OPT("account=%s", account),
	OPT("xattr", xattr),
	OPT("notify_pipe=%s", notify_pipe),
	OPT("timeout=%lf", timeout),
	OPT("import_timeout=%ld", import_timeout),
	OPT("import_dirs=%s", import_dirs),
	OPT("lock_timeout=%lf", lock_timeout),
	OPT("endpoint=%s", endpoint),
	OPT("profile=%s", profile),
	OPT("credentials=%s", credentials),
	OPT("cache=%s", cache),
	OPT("cache_ttl=%lf", cache_ttl),
	OPT("api_timeout=%lf", api_timeout),
	OPT("language=%s", language),
	/* for mount(8) and systemd only (x-* and comment= in config_key) */
	FUSE_OPT_KEY("_netdev", KEY_DISCARD),
	FUSE_OPT_KEY("auto", KEY_DISCARD),
	FUSE_OPT_KEY("noauto", KEY_DISCARD),
	FUSE_OPT_KEY("nofail", KEY_DISCARD),
	FUSE_OPT_KEY("user", KEY_DISCARD),
	FUSE_OPT_KEY("nouser", KEY_DISCARD),
	FUSE_OPT_KEY("users", KEY_DISCARD),
	FUSE_OPT_KEY("owner", KEY_DISCARD),
	FUSE_OPT_KEY("group", KEY_DISCARD),
	FUSE_OPT_KEY("defaults", KEY_DISCARD),
	FUSE_OPT_KEY("comment=", KEY_DISCARD),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_END
};

#define USAGE "usage: %s [SOURCE] MOUNTPOINT [-o opt[,opt...]] [-f] [-d]\n"

void config_usage(const char *prog)
{
	fprintf(stderr, USAGE "       %s --help\n", prog, prog);
}

void config_help(const char *prog)
{
	printf(USAGE "\n"
	       "SOURCE names the mount in mount(8) and df (default imagefs);\n"
	       "the options say what it shows.\n"
	       "\n"
	       "imagefs options:\n"
	       "    -o backend=NAME        local (default) or tencentcloud\n"
	       "    -o db=PATH             local catalog (default "
	       "$XDG_DATA_HOME/imagefs/catalog.db)\n"
	       "    -o account=UIN         account the mount acts as "
	       "(default 100000000001)\n"
	       "    -o xattr               show user.imagefs.* extended "
	       "attributes\n"
	       "    -o notify_pipe=PATH    write \"ok\" (or \"error\") to "
	       "PATH once mounted\n"
	       "    -o timeout=SECONDS     kernel entry/attribute cache "
	       "timeout (default 86400)\n"
	       "    -o import_timeout=SECONDS  an import fails after this "
	       "long without data (30)\n"
	       "    -o import_dirs=DIR[:DIR]  file:// imports may read "
	       "regular files below these\n"
	       "                           directories (default: file:// "
	       "refused)\n"
	       "    -o lock_timeout=SECONDS    a change waits this long for "
	       "the catalog\n"
	       "                           another process has locked "
	       "(10), then ENOLCK\n"
	       "tencentcloud backend:\n"
	       "    -o endpoint=URL        API endpoint (default "
	       "https://cvm.tencentcloudapi.com;\n"
	       "                           http only to a loopback address)\n"
	       "    -o profile=NAME        ~/.tccli/NAME.credential (default "
	       "$TCCLI_PROFILE or default)\n"
	       "    -o credentials=PATH    a tccli credential file\n"
	       "    -o cache=PATH          listing cache (default "
	       "$XDG_CACHE_HOME/imagefs/UIN@HOST.db)\n"
	       "    -o cache_ttl=SECONDS   listings are fetched again, in the "
	       "background, after\n"
	       "                           this long (60)\n"
	       "    -o api_timeout=SECONDS one API request gives up after "
	       "this long (30)\n"
	       "    -o language=LANG       X-TC-Language of the names the "
	       "cloud gives (en-US or zh-CN)\n"
	       "mount options:\n"
	       "    -f                     stay in the foreground; messages "
	       "to stderr, not syslog\n"
	       "    -d, -o debug           debug output (implies -f)\n"
	       "    -s                     single-threaded (imagefs always "
	       "is)\n"
	       "    -o allow_other         let every user in (needs "
	       "user_allow_other in\n"
	       "                           /etc/fuse.conf unless root)\n"
	       "    -o allow_root          let the mounting user and root "
	       "in\n"
	       "    -o auto_unmount        unmount when the daemon dies\n"
	       "    -o fsname=NAME         the name mount(8) and df show "
	       "(default SOURCE)\n"
	       "    -o ro                  refuse every change (EROFS)\n"
	       "    -h, --help             print this help\n"
	       "    -V, --version          print the version\n"
	       "fstab options for mount(8) and systemd only (_netdev, auto, "
	       "noauto, nofail,\n"
	       "user, nouser, users, owner, group, defaults, x-*, comment=) "
	       "are ignored.\n", prog);
}

static int config_key(void *data, const char *arg, int key,
		      struct fuse_args *outargs)
{
	struct config *cfg = data;

	(void)outargs;
	switch (key) {
	case KEY_DISCARD:
		return 0;
	case KEY_HELP:
		cfg->show_help = 1;
		return 0;
	case KEY_VERSION:
		cfg->show_version = 1;
		return 0;
	case FUSE_OPT_KEY_OPT:
		/* x-systemd.automount, x-gvfs-show, ...: systemd's, not ours */
		return strncmp(arg, "x-", 2) ? 1 : 0;
	case FUSE_OPT_KEY_NONOPT:
		/* SOURCE MOUNTPOINT, or MOUNTPOINT alone */
		if (cfg->mountpoint && cfg->source) {
			log_error("too many arguments: %s (at most SOURCE "
				  "MOUNTPOINT)", arg);
			return -1;
		}
		if (cfg->mountpoint)
			cfg->source = cfg->mountpoint;
		cfg->mountpoint = strdup(arg);
		return cfg->mountpoint ? 0 : -1;
	}
	return 1;
}

static char *default_db(void)
{
	const char *xdg = getenv("XDG_DATA_HOME");
	const char *home = getenv("HOME");
	char *path;

	if (xdg && xdg[0] == '/') {
		if (asprintf(&path, "%s/imagefs/catalog.db", xdg) < 0)
			return NULL;
	} else {
		if (asprintf(&path, "%s/.local/share/imagefs/catalog.db",
			     home ? home : "/") < 0)
			return NULL;
	}
	return path;
}

/*
 * Make a relative path absolute: the daemon works from / (it must not
 * hold the directory it was started in), and reopens files by path.
 */
static int absolute(char **path)
{
	char cwd[4096], *abs;

	if (!*path || (*path)[0] == '/')
		return 0;
	if (!getcwd(cwd, sizeof(cwd)))
		return -errno;
	if (asprintf(&abs, "%s/%s", cwd, *path) < 0)
		return -ENOMEM;
	free(*path);
	*path = abs;
	return 0;
}

/* Each of DIR[:DIR] an absolute path to a directory. 0 or -EINVAL. */
static int check_dirs(const char *dirs)
{
	char dir[PATH_MAX];
	struct stat st;

	for (const char *d = dirs; ; d++) {
		size_t len = strcspn(d, ":");

		if (d[0] != '/' || len >= sizeof(dir)) {
			log_error("bad import_dirs: %.*s: not an absolute "
				  "path", (int)len, d);
			return -EINVAL;
		}
		memcpy(dir, d, len);
		dir[len] = 0;
		errno = 0;
		if (stat(dir, &st) || !S_ISDIR(st.st_mode)) {
			log_error("bad import_dirs: %s: %s", dir,
				  errno ? strerror(errno) : "not a directory");
			return -EINVAL;
		}
		d += len;
		if (!*d)
			return 0;
	}
}

int config_parse(struct fuse_args *args, struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->timeout = 86400;
	cfg->import_timeout = 30;
	cfg->lock_timeout = LOCAL_LOCK_TIMEOUT;
	cfg->cache_ttl = 60;
	cfg->api_timeout = 30;
	if (fuse_opt_parse(args, cfg, config_opts, config_key) == -1)
		return -EINVAL;
	if (!cfg->backend)
		cfg->backend = strdup("local");
	if (!cfg->account)
		cfg->account = strdup("100000000001");
	if (!cfg->db)
		cfg->db = default_db();
	if (!cfg->backend || !cfg->account || !cfg->db)
		return -ENOMEM;
	if (absolute(&cfg->db) || absolute(&cfg->cache) ||
	    absolute(&cfg->credentials) || absolute(&cfg->notify_pipe)) {
		log_error("cannot tell the current directory: %s",
			  strerror(errno));
		return -EINVAL;
	}
	if (cfg->import_timeout <= 0) {
		log_error("bad import_timeout: %ld (seconds, more than 0)",
			  cfg->import_timeout);
		return -EINVAL;
	}
	if (cfg->lock_timeout <= 0) {
		log_error("bad lock_timeout: %g (seconds, more than 0)",
			  cfg->lock_timeout);
		return -EINVAL;
	}
	if (cfg->cache_ttl < 0) {
		log_error("bad cache_ttl: %g (seconds, 0 or more)",
			  cfg->cache_ttl);
		return -EINVAL;
	}
	if (cfg->api_timeout <= 0) {
		log_error("bad api_timeout: %g (seconds, more than 0)",
			  cfg->api_timeout);
		return -EINVAL;
	}
	if (cfg->language && strcmp(cfg->language, "en-US") &&
	    strcmp(cfg->language, "zh-CN")) {
		log_error("bad language: %s (en-US or zh-CN)", cfg->language);
		return -EINVAL;
	}
	if (cfg->timeout < 0) {
		log_error("bad timeout: %g (seconds, 0 or more)", cfg->timeout);
		return -EINVAL;
	}
	return cfg->import_dirs ? check_dirs(cfg->import_dirs) : 0;
}

void config_free(struct config *cfg)
{
	free(cfg->backend);
	free(cfg->db);
	free(cfg->account);
	free(cfg->notify_pipe);
	free(cfg->endpoint);
	free(cfg->profile);
	free(cfg->credentials);
	free(cfg->cache);
	free(cfg->language);
	free(cfg->import_dirs);
	free(cfg->source);
	free(cfg->mountpoint);
}
