// SPDX-License-Identifier: GPL-2.0
/*
 * ops.c - the libfuse low-level operations: each handler resolves its
 * arguments, calls one FUSE-free function of fs.c or write.c and replies
 * with the result. Also the thread that tells the kernel what changed
 * behind its back (never from inside a request: that can deadlock).
 */
#define FUSE_USE_VERSION 34
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fuse_lowlevel.h>

#include "../mountopts/log.h"
#include "fs.h"
#include "ops.h"

#define POLL_MS 100	/* how often other daemons' changes are looked for */
#define RESEND_MS 300	/* when an invalidation is sent a second time */
/* entry timeout of names that can change (custom/, shared/): seconds */
#define MUTABLE_ENTRY_TIMEOUT 0.5

struct inval {
	struct inval *next;
	uint64_t ino;
};

struct imagefs {
	struct fs fs;
	struct fuse_session *se;
	double timeout;
	pthread_t thread;
	int running;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct inval *head, **tail;
	struct inval *later;	/* sent once, to send again at later_due */
	int64_t later_due;
	int64_t seq;		/* the change log position seen */
};

static struct imagefs *im_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct fs *fs_of(fuse_req_t req)
{
	return &im_of(req)->fs;
}

/* Queue an invalidation for the notify thread. */
static void queue_inode(void *ctx, uint64_t ino)
{
	struct imagefs *im = ctx;
	struct inval *iv = calloc(1, sizeof(*iv));

	if (!iv)
		return;
	iv->ino = ino;
	pthread_mutex_lock(&im->lock);
	*im->tail = iv;
	im->tail = &iv->next;
	pthread_cond_signal(&im->cond);
	pthread_mutex_unlock(&im->lock);
}



static int on_change(void *ctx, const struct change *c)
{
	struct imagefs *im = ctx;

	fs_change(&im->fs, c);
	return 0;
}

/*
 * Directories: attributes and the cached listing. Files: attributes only
 * (offset -1), which takes no page lock that a reader waiting on a dead
 * daemon could hold; their pages are dropped at each open instead.
 */
static void send(struct imagefs *im, const struct inval *iv)
{
	struct node n;

	if (fs_node(&im->fs, iv->ino, &n))
		return;
	fuse_lowlevel_notify_inval_inode(im->se, iv->ino,
					 n.type == N_INFO ? -1 : 0, 0);
}

static void free_all(struct inval *iv)
{
	while (iv) {
		struct inval *next = iv->next;

		free(iv);
		iv = next;
	}
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Send a batch now and once more RESEND_MS later: a reply that was already
 * on its way when the catalog changed (read before the change, sent after
 * the first invalidation) would otherwise stay in the kernel's cache.
 */
static void send_twice(struct imagefs *im, struct inval *iv)
{
	int64_t now = now_ms();

	if (im->later && now >= im->later_due) {
		for (struct inval *p = im->later; p; p = p->next)
			send(im, p);
		free_all(im->later);
		im->later = NULL;
	}
	if (!iv)
		return;
	for (struct inval *p = iv; p; p = p->next)
		send(im, p);
	if (!im->later) {
		im->later = iv;
		im->later_due = now + RESEND_MS;
		return;
	}
	struct inval *last = im->later;

	while (last->next)
		last = last->next;
	last->next = iv;
}

static void *notify_thread(void *arg)
{
	struct imagefs *im = arg;
	struct backend *b = im->fs.b;
	int64_t seq = im->seq;

	pthread_mutex_lock(&im->lock);
	while (im->running) {
		struct timespec ts;
		struct inval *iv;

		if (!im->head) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += POLL_MS * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&im->cond, &im->lock, &ts);
		}
		iv = im->head;
		im->head = NULL;
		im->tail = &im->head;
		pthread_mutex_unlock(&im->lock);
		send_twice(im, iv);
		b->ops->changes(b, &seq, on_change, im);
		pthread_mutex_lock(&im->lock);
	}
	free_all(im->later);
	free_all(im->head);
	im->head = NULL;
	im->tail = &im->head;
	pthread_mutex_unlock(&im->lock);
	return NULL;
}

static void fill_entry(struct imagefs *im, const struct entry *e,
		       struct fuse_entry_param *ep)
{
	memset(ep, 0, sizeof(*ep));
	ep->ino = e->ino;
	ep->generation = 1;
	ep->attr = e->st;
	ep->attr_timeout = im->timeout;
	ep->entry_timeout = e->mutable ? MUTABLE_ENTRY_TIMEOUT : im->timeout;
}

static void reply_entry(fuse_req_t req, int rc, const struct entry *e)
{
	struct fuse_entry_param ep;

	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fill_entry(im_of(req), e, &ep);
	fuse_reply_entry(req, &ep);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct imagefs *im = userdata;

	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	if (im->fs.xattr && (conn->capable & FUSE_CAP_POSIX_ACL))
		conn->want |= FUSE_CAP_POSIX_ACL;
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param ep;
	struct entry e;
	int rc = fs_lookup(fs_of(req), parent, name, &e);

	if (rc == -ENOENT) {
		/* a missing name is cached too: file managers probe a lot */
		memset(&ep, 0, sizeof(ep));
		ep.entry_timeout = e.mutable ? 0 : im_of(req)->timeout;
		fuse_reply_entry(req, &ep);
		return;
	}
	reply_entry(req, rc, &e);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	(void)ino;
	(void)nlookup;
	fuse_reply_none(req);	/* inode numbers are computed: nothing kept */
}

static void op_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	(void)count;
	(void)forgets;
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct entry e;
	int rc = fs_getattr(fs_of(req), ino, &e);

	(void)fi;
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &e.st, im_of(req)->timeout);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct entry e;
	int set = 0, rc;

	(void)fi;
	if (to_set & FUSE_SET_ATTR_MODE)
		set |= FS_SET_MODE;
	if (to_set & FUSE_SET_ATTR_UID)
		set |= FS_SET_UID;
	if (to_set & FUSE_SET_ATTR_GID)
		set |= FS_SET_GID;
	if (to_set & FUSE_SET_ATTR_SIZE)
		set |= FS_SET_SIZE;
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
		      FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW))
		set |= FS_SET_TIMES;
	rc = fs_setattr(fs_of(req), ino, attr, set, &e);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &e.st, im_of(req)->timeout);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[PATH_MAX];
	int rc = fs_readlink(fs_of(req), ino, buf, sizeof(buf));

	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_readlink(req, buf);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	struct entry e;

	(void)mode;
	reply_entry(req, fs_mkdir(fs_of(req), parent, name, &e), &e);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	struct entry e;

	reply_entry(req, fs_symlink(fs_of(req), link, parent, name, &e), &e);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	(void)parent;
	(void)name;
	(void)mode;
	(void)rdev;
	fuse_reply_err(req, EPERM);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent,
		    const char *name)
{
	(void)ino;
	(void)parent;
	(void)name;
	fuse_reply_err(req, EPERM);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -fs_unlink(fs_of(req), parent, name));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -fs_rmdir(fs_of(req), parent, name));
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	fuse_reply_err(req, -fs_rename(fs_of(req), parent, name, newparent,
				       newname, flags));
}

static void set_open_flags(struct fuse_file_info *fi,
			   const struct open_file *of)
{
	fi->fh = (uintptr_t)of;
	if (fs_open_cacheable(of)) {
		fi->keep_cache = 1;
		fi->noflush = 1;
	} else {
		fi->direct_io = 1;
	}
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct fuse_entry_param ep;
	struct open_file *of;
	struct entry e;
	int rc = fs_create(fs_of(req), parent, name, fi->flags, &e, &of);

	(void)mode;
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fill_entry(im_of(req), &e, &ep);
	ep.attr_timeout = 0;
	set_open_flags(fi, of);
	if (fuse_reply_create(req, &ep, fi))
		fs_release(fs_of(req), of);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct open_file *of;
	int rc = fs_open(fs_of(req), ino, fi->flags, &of);

	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	set_open_flags(fi, of);
	if (fuse_reply_open(req, fi))
		fs_release(fs_of(req), of);
}

static struct open_file *of_of(struct fuse_file_info *fi)
{
	return (struct open_file *)(uintptr_t)fi->fh;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	char *buf = malloc(size ? size : 1);
	size_t got;
	int rc;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rc = fs_read(fs_of(req), of_of(fi), ino, buf, size, off, &got);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_buf(req, buf, got);
	free(buf);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	int rc = fs_write(fs_of(req), of_of(fi), buf, size, off);

	(void)ino;
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_write(req, size);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino,
		     struct fuse_file_info *fi)
{
	(void)ino;
	fuse_reply_err(req, -fs_flush(fs_of(req), of_of(fi)));
}

static void op_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	(void)ino;
	fs_release(fs_of(req), of_of(fi));
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	/* no OPENDIR/RELEASEDIR round trips; listings stay cached */
	fuse_reply_err(req, ENOSYS);
}

struct dir_buf {
	fuse_req_t req;
	char *buf;
	size_t size;
	size_t len;
	int plus;
};

static int dir_fill(void *ctx, const char *name, const struct entry *e,
		    uint64_t next)
{
	struct dir_buf *d = ctx;
	size_t n;

	if (d->plus) {
		struct fuse_entry_param ep;

		fill_entry(im_of(d->req), e, &ep);
		n = fuse_add_direntry_plus(d->req, d->buf + d->len,
					   d->size - d->len, name, &ep, next);
	} else {
		n = fuse_add_direntry(d->req, d->buf + d->len,
				      d->size - d->len, name, &e->st, next);
	}
	if (n > d->size - d->len)
		return 1;
	d->len += n;
	return 0;
}

static void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, int plus)
{
	struct dir_buf d = { .req = req, .size = size, .plus = plus };
	int rc;

	d.buf = malloc(size);
	if (!d.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rc = fs_readdir(fs_of(req), ino, off, dir_fill, &d);
	if (rc && !d.len)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_buf(req, d.buf, d.len);
	free(d.buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)fi;
	readdir_common(req, ino, size, off, 0);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	readdir_common(req, ino, size, off, 1);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	fs_statfs(fs_of(req), ino, &sv);
	fuse_reply_statfs(req, &sv);
}

static void reply_xattr(fuse_req_t req, size_t size, int rc, const char *buf)
{
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else if (!size)
		fuse_reply_xattr(req, rc);
	else
		fuse_reply_buf(req, buf, rc);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	char *buf;

	if (!fs_of(req)->xattr) {
		fuse_reply_err(req, ENOSYS);	/* the kernel stops asking */
		return;
	}
	buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	reply_xattr(req, size, fs_getxattr(fs_of(req), ino, name, buf, size),
		    buf);
	free(buf);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char *buf;

	if (!fs_of(req)->xattr) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	reply_xattr(req, size, fs_listxattr(fs_of(req), ino, buf, size), buf);
	free(buf);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	(void)value;
	(void)size;
	(void)flags;
	fuse_reply_err(req, -fs_setxattr(fs_of(req), ino, name));
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	int rc = fs_setxattr(fs_of(req), ino, name);

	fuse_reply_err(req, rc ? -rc : ENODATA);
}

static const struct fuse_lowlevel_ops imagefs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.create = op_create,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.statfs = op_statfs,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.setxattr = op_setxattr,
	.removexattr = op_removexattr,
};

/* Tell whoever waits (a test, a script) that the mount is ready. */
static void notify(const char *path, const char *word)
{
	int fd;

	if (!path)
		return;
	fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, word, strlen(word)) < 0)
		log_error("notify_pipe: %s", strerror(errno));
	close(fd);
}

/*
 * Leave for the background: fork, and let the parent wait until the child
 * reports (daemon_ready) and exit with the child's status, so that mount(8)
 * and systemd see 0 only once the mount serves, and every start-up error
 * on stderr with status 1. Returns 0 in the child, with *report the pipe
 * to report on, or, in the parent, the status to exit with.
 */
static int daemon_fork(int *report)
{
	int fds[2], status;
	char ok;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC)) {
		log_error("pipe: %s", strerror(errno));
		return 1;
	}
	pid = fork();
	if (pid < 0) {
		log_error("fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return 1;
	}
	if (pid) {
		close(fds[1]);
		if (read(fds[0], &ok, 1) == 1) {
			close(fds[0]);
			return 0;
		}
		close(fds[0]);
		/* it failed (and said why on stderr), or died */
		if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
		    !WEXITSTATUS(status))
			return 1;
		return WEXITSTATUS(status);
	}
	close(fds[0]);
	setsid();
	*report = fds[1];
	return -1;
}

/* The daemon serves: stdin, stdout and stderr to /dev/null, messages to
 * syslog, and the parent exits 0. */
static void daemon_ready(int report)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	char ok = 0;

	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
	log_to_syslog();
	if (write(report, &ok, 1) != 1)
		log_error("cannot tell the starting process: %s",
			  strerror(errno));
	close(report);
}

int imagefs_serve(struct fuse_args *args, const char *mountpoint,
		  int foreground, struct imagefs_params *p)
{
	struct imagefs *im;
	int report = -1;
	int rc = 1;

	if (!foreground) {
		rc = daemon_fork(&report);
		if (rc >= 0)
			return rc;	/* the parent */
		rc = 1;
	}
	im = calloc(1, sizeof(*im));
	if (!im)
		goto out_report;
	im->timeout = p->timeout;
	pthread_mutex_init(&im->lock, NULL);
	pthread_cond_init(&im->cond, NULL);
	im->tail = &im->head;
	/* everything that can fail is tried before the mount serves */
	if (p->open(p->ctx, &im->fs))
		goto out_free;
	im->fs.inval_inode = queue_inode;
	im->fs.inval_ctx = im;
	/* where the change log stands before the kernel caches anything */
	im->seq = -1;
	if (im->fs.b->ops->changes(im->fs.b, &im->seq, NULL, NULL)) {
		log_error("cannot read the change log");
		goto out_close;
	}
	im->se = fuse_session_new(args, &imagefs_ops, sizeof(imagefs_ops), im);
	if (!im->se)
		goto out_close;
	if (fuse_set_signal_handlers(im->se))
		goto out_destroy;
	if (fuse_session_mount(im->se, mountpoint))
		goto out_signals;
	if (chdir("/"))
		log_warn("chdir /: %s", strerror(errno));
	im->running = 1;
	if (pthread_create(&im->thread, NULL, notify_thread, im)) {
		im->running = 0;
		log_error("cannot start the notify thread");
		goto out_unmount;
	}
	notify(p->notify_pipe, "ok\n");
	if (report >= 0) {
		daemon_ready(report);
		report = -1;
	}
	rc = fuse_session_loop(im->se) < 0 ? 1 : 0;	/* >0: a signal */
	pthread_mutex_lock(&im->lock);
	im->running = 0;
	pthread_cond_signal(&im->cond);
	pthread_mutex_unlock(&im->lock);
	pthread_join(im->thread, NULL);
out_unmount:
	fuse_session_unmount(im->se);
out_signals:
	fuse_remove_signal_handlers(im->se);
out_destroy:
	fuse_session_destroy(im->se);
out_close:
	p->close(p->ctx, &im->fs);
out_free:
	if (rc)
		notify(p->notify_pipe, "error\n");
	pthread_cond_destroy(&im->cond);
	pthread_mutex_destroy(&im->lock);
	free(im);
out_report:
	if (report >= 0)
		close(report);	/* the parent exits with our status */
	return rc;
}
