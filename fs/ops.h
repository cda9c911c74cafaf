/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ops.h - serve a mount with libfuse's low-level API.
 */
#ifndef IMAGEFS_OPS_H
#define IMAGEFS_OPS_H

struct fuse_args;
struct fs;

struct imagefs_params {
	double timeout;			/* kernel entry/attribute cache */
	const char *notify_pipe;	/* gets "ok\n" once mounted */
	/* set up fs once mounted (after daemonizing), and tear it down */
	int (*open)(void *ctx, struct fs *fs);
	void (*close)(void *ctx, struct fs *fs);
	void *ctx;
};

/* Mount at mountpoint and serve until unmounted; the exit status. */
int imagefs_serve(struct fuse_args *args, const char *mountpoint,
		  int foreground, struct imagefs_params *p);

#endif /* IMAGEFS_OPS_H */
