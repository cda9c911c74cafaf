// SPDX-License-Identifier: GPL-2.0
/*
 * main.c - imagefs [SOURCE] MOUNTPOINT [-o opt[,opt...]]: parse the
 * options, check the mountpoint, and serve (ops.c), which opens the
 * backend and mounts before the daemon leaves for the background.
 */
#define FUSE_USE_VERSION 34
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fuse_lowlevel.h>

#include "../backend/backend.h"
#include "../mountopts/config.h"
#include "../mountopts/log.h"
#include "fs.h"
#include "names.h"
#include "ops.h"

struct session {
	struct config cfg;
	struct backend *b;
	char mountpoint[PATH_MAX];
};

static int session_open(void *ctx, struct fs *fs)
{
	struct session *s = ctx;
	int rc;

	rc = backend_open(&s->cfg, &s->b);
	if (rc)
		return rc;
	rc = fs_init(fs, s->b, s->cfg.xattr);
	if (rc) {
		const char *why = s->b->ops->detail ?
				  s->b->ops->detail(s->b) : NULL;

		log_error("%s: cannot read the regions: %s",
			  strcmp(s->cfg.backend, "local") ? s->cfg.backend :
			  s->cfg.db, why ? why : strerror(-rc));
		s->b->ops->close(s->b);
		s->b = NULL;
		return rc;
	}
	snprintf(fs->mountpoint, sizeof(fs->mountpoint), "%s", s->mountpoint);
	return 0;
}

static void session_close(void *ctx, struct fs *fs)
{
	struct session *s = ctx;

	fs_destroy(fs);
	s->b->ops->close(s->b);
	s->b = NULL;
}

/* libfuse's messages go where ours go (syslog in the background). */
static void fuse_message(enum fuse_log_level level, const char *fmt,
			 va_list ap)
{
	log_vmsg((int)level, fmt, ap);	/* the same numbers as syslog's */
}

/*
 * Whether path is a mountpoint already: the root of a mount, by statx's
 * attribute, else by a device that differs from its parent's.
 */
static int is_mount_root(const char *path)
{
	char parent[PATH_MAX + 4];
	struct statx stx;
	struct stat st, up;

	if (!statx(AT_FDCWD, path, AT_NO_AUTOMOUNT, STATX_BASIC_STATS, &stx) &&
	    (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT))
		return !!(stx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
	snprintf(parent, sizeof(parent), "%s/..", path);
	if (stat(path, &st) || stat(parent, &up))
		return 0;
	return st.st_dev != up.st_dev || st.st_ino == up.st_ino;
}

/*
 * Check the mountpoint and make it absolute in out: an existing directory
 * that holds no mount yet. mount.fuse3's /dev/fd/N (drop_privileges: an
 * open /dev/fuse) is taken as it is.
 */
static int mountpoint_check(const char *path, char *out, size_t size)
{
	struct stat st;
	unsigned int fd;
	char end;

	if (sscanf(path, "/dev/fd/%u%c", &fd, &end) == 1) {
		snprintf(out, size, "%s", path);
		return 0;
	}
	if (!realpath(path, out)) {
		if (errno == ENOTCONN)
			log_error("%s: a mount whose daemon is gone; run "
				  "fusermount3 -u %s first", path, path);
		else if (errno == ENOENT)
			log_error("%s: no such directory; mkdir it first",
				  path);
		else
			log_error("%s: %s", path, strerror(errno));
		return -1;
	}
	if (stat(out, &st)) {
		log_error("%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		log_error("%s: not a directory; the mountpoint must be one",
			  path);
		return -1;
	}
	if (is_mount_root(out)) {
		log_error("%s: already a mountpoint; unmount it first "
			  "(fusermount3 -u %s, or umount %s)", path, path,
			  path);
		return -1;
	}
	return 0;
}

/*
 * Our mount options go first, so that the user's fsname= wins; SOURCE is
 * the fsname, with its commas and backslashes escaped for libfuse.
 */
static int add_mount_options(struct fuse_args *args, const char *source)
{
	static const char head[] = "-odefault_permissions,subtype=imagefs,"
				   "fsname=";
	char *opts, *p;
	int rc;

	if (!source)
		source = "imagefs";
	opts = malloc(sizeof(head) + 2 * strlen(source));
	if (!opts)
		return -1;
	memcpy(opts, head, sizeof(head) - 1);
	p = opts + sizeof(head) - 1;
	for (; *source; source++) {
		if (*source == ',' || *source == '\\')
			*p++ = '\\';
		*p++ = *source;
	}
	*p = 0;
	rc = fuse_opt_insert_arg(args, 1, opts);
	free(opts);
	return rc;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts opts = { 0 };
	struct session s = { 0 };
	struct imagefs_params p = {
		.open = session_open,
		.close = session_close,
		.ctx = &s,
	};
	int rc = 1;

	fuse_set_log_func(fuse_message);
	if (config_parse(&args, &s.cfg))
		goto out_args;
	if (s.cfg.show_help) {
		config_help(argv[0]);
		rc = 0;
		goto out_args;
	}
	if (s.cfg.show_version) {
		printf("imagefs %s\nlibfuse %s\n", IMAGEFS_VERSION,
		       fuse_pkgversion());
		rc = 0;
		goto out_args;
	}
	if (fuse_parse_cmdline(&args, &opts))
		goto out_args;
	if (!s.cfg.mountpoint) {
		log_error("no mountpoint");
		config_usage(argv[0]);
		goto out_opts;
	}
	if (uin_check(s.cfg.account)) {
		log_error("bad account: %s (digits only, at most %d)",
			  s.cfg.account, UIN_MAX_DIGITS);
		goto out_opts;
	}
	if (mountpoint_check(s.cfg.mountpoint, s.mountpoint,
			     sizeof(s.mountpoint)))
		goto out_opts;
	s.cfg.debug = opts.debug;
	if (add_mount_options(&args, s.cfg.source))
		goto out_opts;
	p.timeout = s.cfg.timeout;
	p.notify_pipe = s.cfg.notify_pipe;
	rc = imagefs_serve(&args, s.mountpoint, opts.foreground, &p);
out_opts:
	free(opts.mountpoint);
out_args:
	config_free(&s.cfg);
	fuse_opt_free_args(&args);
	return rc;
}
