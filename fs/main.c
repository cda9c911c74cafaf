// SPDX-License-Identifier: GPL-2.0
/*
 * main.c - imagefs [-o opt[,opt...]] <mountpoint>: parse the options, check
 * the backend opens, mount and serve.
 */
#define FUSE_USE_VERSION 34
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

	if (!s->b) {
		rc = backend_open(&s->cfg, &s->b);
		if (rc)
			return rc;
	}
	rc = fs_init(fs, s->b, s->cfg.xattr);
	if (rc) {
		log_error("cannot read the regions: %s", strerror(-rc));
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

static void usage(const char *prog)
{
	printf("usage: %s [-o opt[,opt...]] <mountpoint>\n\n", prog);
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

	if (config_parse(&args, &s.cfg))
		goto out_args;
	if (fuse_parse_cmdline(&args, &opts))
		goto out_args;
	if (s.cfg.show_help || opts.show_help) {
		usage(argv[0]);
		config_help();
		printf("FUSE options:\n");
		fuse_cmdline_help();
		fuse_lowlevel_help();
		rc = 0;
		goto out_opts;
	}
	if (s.cfg.show_version || opts.show_version) {
		printf("imagefs version %s\n", IMAGEFS_VERSION);
		fuse_lowlevel_version();
		rc = 0;
		goto out_opts;
	}
	if (!opts.mountpoint) {
		log_error("no mountpoint");
		fprintf(stderr, "usage: %s [-o opt[,opt...]] <mountpoint>\n"
			"       %s --help\n", argv[0], argv[0]);
		goto out_opts;
	}
	if (uin_check(s.cfg.account)) {
		log_error("bad account: %s (digits only)", s.cfg.account);
		goto out_opts;
	}
	if (!realpath(opts.mountpoint, s.mountpoint)) {
		log_error("bad mountpoint %s: %s", opts.mountpoint,
			  strerror(errno));
		goto out_opts;
	}
	s.cfg.debug = opts.debug;
	/* fail before mounting when the catalog cannot be used */
	if (backend_open(&s.cfg, &s.b))
		goto out_opts;
	if (!opts.foreground) {
		/* SQLite connections must not cross fork(): open again */
		s.b->ops->close(s.b);
		s.b = NULL;
	}
	fuse_opt_add_arg(&args, "-odefault_permissions,subtype=imagefs,"
			 "fsname=imagefs");
	p.timeout = s.cfg.timeout;
	p.notify_pipe = s.cfg.notify_pipe;
	rc = imagefs_serve(&args, s.mountpoint, opts.foreground, &p);
	if (s.b)
		s.b->ops->close(s.b);
out_opts:
	free(opts.mountpoint);
out_args:
	config_free(&s.cfg);
	fuse_opt_free_args(&args);
	return rc;
}
