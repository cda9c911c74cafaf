// SPDX-License-Identifier: GPL-2.0
/*
 * ops.c - the libfuse low-level operations: each handler resolves its
 * arguments, calls one FUSE-free function of fs.h and replies with the
 * result. Also the thread that tells the kernel what changed
 * behind its back (never from inside a request: that can deadlock).
 */
#define FUSE_USE_VERSION 34
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fuse_lowlevel.h>

#include "../mountopts/log.h"
#include "fills.h"
#include "fs.h"
#include "ops.h"

#define POLL_MS 100	/* how often other daemons' changes are looked for */
#define RESEND_MS 300	/* when an invalidation is sent a second time */
/* entry timeout of names that can change (custom/, shared/): seconds */
#define MUTABLE_ENTRY_TIMEOUT 0.5
#define RETRY_MS 20	/* how often waiting requests are tried again */
#define TICK_MS 1000	/* how often lapsing marks are looked at, at most */

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
	/* requests waiting on the backend, oldest first (fs/ops.c only) */
	struct call *waiting, **waiting_tail;
	int kick;		/* run the waiting calls now */
	int64_t retried;	/* when they last ran, ms */
	int wake_fd;		/* an eventfd the backend's threads write */
	struct fills fills;	/* listings the kernel is copying (fills.h) */
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
	fills_changed(&im->fills, ino);
	pthread_mutex_lock(&im->lock);
	*im->tail = iv;
	im->tail = &iv->next;
	pthread_cond_signal(&im->cond);
	pthread_mutex_unlock(&im->lock);
}

/* Sent from the request under way (fs.h), then queued to send again. */
static void inval_dir_now(void *ctx, uint64_t ino)
{
	struct imagefs *im = ctx;

	fuse_lowlevel_notify_inval_inode(im->se, ino, 0, 0);
	queue_inode(ctx, ino);
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
	ep->generation = im->fs.b->generation;
	ep->attr = e->st;
	ep->attr_timeout = e->transient ? 0 : im->timeout;
	ep->entry_timeout = e->transient ? 0 :
			    e->mutable ? MUTABLE_ENTRY_TIMEOUT : im->timeout;
}

/*
 * A request and its arguments. Most are answered at once, by run(); one
 * whose backend call returned -BACKEND_WAIT is kept on im->waiting (its
 * strings and data copied) and run again later, while other requests are
 * served: see keep() and retry().
 */
struct call {
	struct call *next;
	fuse_req_t req;
	/* -BACKEND_WAIT, or it has replied; final: no more waiting */
	int (*run)(struct call *c, int final);
	fuse_ino_t ino, ino2;
	const char *name, *name2;
	const char *data;
	size_t size;
	off_t off;
	int flags;		/* rename flags, setattr's set, readdir plus */
	struct stat attr;
	struct fuse_file_info fi;
	int64_t since;		/* when it began to wait, ms */
	int interrupted;
};

static struct fs *call_fs(struct call *c)
{
	return fs_of(c->req);
}

static struct open_file *call_of(struct call *c)
{
	return (struct open_file *)(uintptr_t)c->fi.fh;
}

/* Reply an error (0: success) unless the call has to wait. */
static int reply_rc(struct call *c, int rc)
{
	if (rc == -BACKEND_WAIT)
		return rc;
	fuse_reply_err(c->req, -rc);
	return 0;
}

static void on_interrupt(fuse_req_t req, void *data)
{
	struct call *c = data;

	(void)req;
	c->interrupted = 1;	/* answered EINTR by retry(), on this thread */
	im_of(c->req)->kick = 1;
}

static char *keep_str(char **p, const char *s, size_t n)
{
	char *at = *p;

	memcpy(at, s, n);
	*p += n;
	return at;
}

/* Keep a call that has to wait: copy what it points to, queue it. */
static void keep(struct imagefs *im, const struct call *c)
{
	size_t n1 = c->name ? strlen(c->name) + 1 : 0;
	size_t n2 = c->name2 ? strlen(c->name2) + 1 : 0;
	size_t nd = c->data ? c->size : 0;
	struct call *k = malloc(sizeof(*k) + n1 + n2 + nd);
	char *p;

	if (!k) {
		fuse_reply_err(c->req, ENOMEM);
		return;
	}
	*k = *c;
	p = (char *)(k + 1);
	if (c->name)
		k->name = keep_str(&p, c->name, n1);
	if (c->name2)
		k->name2 = keep_str(&p, c->name2, n2);
	if (c->data)
		k->data = keep_str(&p, c->data, nd);
	k->next = NULL;
	k->since = now_ms();
	*im->waiting_tail = k;
	im->waiting_tail = &k->next;
	fuse_req_interrupt_func(k->req, on_interrupt, k);
}

static void start(struct call *c)
{
	if (c->run(c, 0) == -BACKEND_WAIT)
		keep(im_of(c->req), c);
}

/*
 * Run the waiting calls again, in the order they came: those interrupted
 * are answered EINTR, those past the backend's wait_timeout its wait_errno
 * (all of them when the session ends: final).
 */
static void retry(struct imagefs *im, int final)
{
	struct backend *b = im->fs.b;
	struct call *list = im->waiting, *c;
	int64_t now = now_ms();

	im->waiting = NULL;
	im->waiting_tail = &im->waiting;
	im->kick = 0;
	while ((c = list)) {
		int expired = final || (b->wait_timeout > 0 &&
			      now - c->since > b->wait_timeout * 1000);

		list = c->next;
		c->next = NULL;
		if (c->interrupted) {
			fuse_reply_err(c->req, EINTR);
			free(c);
			continue;
		}
		if (c->run(c, expired) == -BACKEND_WAIT) {
			*im->waiting_tail = c;
			im->waiting_tail = &c->next;
			continue;
		}
		free(c);
	}
}

/* final: a call that would still wait is answered the backend's errno. */
static int give_up(struct call *c, int rc, int final)
{
	if (rc == -BACKEND_WAIT && final)
		return -fs_wait_errno(call_fs(c));
	return rc;
}

static int reply_entry(struct call *c, int rc, const struct entry *e)
{
	struct fuse_entry_param ep;

	if (rc == -BACKEND_WAIT)
		return rc;
	if (rc) {
		fuse_reply_err(c->req, -rc);
		return 0;
	}
	fill_entry(im_of(c->req), e, &ep);
	fuse_reply_entry(c->req, &ep);
	return 0;
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

static int run_lookup(struct call *c, int final)
{
	struct fuse_entry_param ep;
	struct entry e;
	int rc = give_up(c, fs_lookup(call_fs(c), c->ino, c->name, &e),
			 final);

	if (rc == -ENOENT) {
		/* a missing name is cached too: file managers probe a lot */
		memset(&ep, 0, sizeof(ep));
		ep.entry_timeout = e.mutable ? 0 : im_of(c->req)->timeout;
		fuse_reply_entry(c->req, &ep);
		return 0;
	}
	return reply_entry(c, rc, &e);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct call c = { .req = req, .run = run_lookup, .ino = parent,
			  .name = name };

	start(&c);
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

static int reply_attr(struct call *c, int rc, const struct entry *e)
{
	if (rc == -BACKEND_WAIT)
		return rc;
	if (rc)
		fuse_reply_err(c->req, -rc);
	else
		fuse_reply_attr(c->req, &e->st,
				e->transient ? 0 : im_of(c->req)->timeout);
	return 0;
}

static int run_getattr(struct call *c, int final)
{
	struct entry e;

	return reply_attr(c, give_up(c, fs_getattr(call_fs(c), c->ino, &e),
				     final), &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct call c = { .req = req, .run = run_getattr, .ino = ino };

	(void)fi;
	start(&c);
}

static int run_setattr(struct call *c, int final)
{
	struct entry e;
	struct open_file *of = c->fi.fh ? call_of(c) : NULL;
	int rc = fs_setattr(call_fs(c), c->ino, of, &c->attr, c->flags, &e);

	return reply_attr(c, give_up(c, rc, final), &e);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct call c = { .req = req, .run = run_setattr, .ino = ino,
			  .attr = *attr };

	if (fi)
		c.fi = *fi;	/* ftruncate: the open file */
	if (to_set & FUSE_SET_ATTR_MODE)
		c.flags |= FS_SET_MODE;
	if (to_set & FUSE_SET_ATTR_UID)
		c.flags |= FS_SET_UID;
	if (to_set & FUSE_SET_ATTR_GID)
		c.flags |= FS_SET_GID;
	if (to_set & FUSE_SET_ATTR_SIZE)
		c.flags |= FS_SET_SIZE;
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
		      FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW))
		c.flags |= FS_SET_TIMES;
	start(&c);
}

static int run_readlink(struct call *c, int final)
{
	char buf[PATH_MAX];
	int rc = give_up(c, fs_readlink(call_fs(c), c->ino, buf,
					sizeof(buf)), final);

	if (rc)
		return reply_rc(c, rc);
	fuse_reply_readlink(c->req, buf);
	return 0;
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct call c = { .req = req, .run = run_readlink, .ino = ino };

	start(&c);
}

/*
 * A change the kernel asked for: it notes it in its own cache, but a
 * listing another reader is still copying does not (fills.h). rc, as is.
 */
static int changed(struct call *c, int rc)
{
	struct imagefs *im = im_of(c->req);

	if (!rc) {
		fills_changed(&im->fills, c->ino);
		fills_changed(&im->fills, c->ino2);
	}
	return rc;
}

static int run_mkdir(struct call *c, int final)
{
	struct entry e;
	int rc = fs_mkdir(call_fs(c), c->ino, c->name, &e);

	return reply_entry(c, changed(c, give_up(c, rc, final)), &e);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	struct call c = { .req = req, .run = run_mkdir, .ino = parent,
			  .name = name };

	(void)mode;
	start(&c);
}

static int run_symlink(struct call *c, int final)
{
	struct entry e;
	int rc = fs_symlink(call_fs(c), c->name2, c->ino, c->name, &e);

	return reply_entry(c, changed(c, give_up(c, rc, final)), &e);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	struct call c = { .req = req, .run = run_symlink, .ino = parent,
			  .name = name, .name2 = link };

	start(&c);
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

static int run_unlink(struct call *c, int final)
{
	int rc = fs_unlink(call_fs(c), c->ino, c->name);

	return reply_rc(c, changed(c, give_up(c, rc, final)));
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct call c = { .req = req, .run = run_unlink, .ino = parent,
			  .name = name };

	start(&c);
}

static int run_rmdir(struct call *c, int final)
{
	int rc = fs_rmdir(call_fs(c), c->ino, c->name);

	return reply_rc(c, changed(c, give_up(c, rc, final)));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct call c = { .req = req, .run = run_rmdir, .ino = parent,
			  .name = name };

	start(&c);
}

static int run_rename(struct call *c, int final)
{
	int rc = fs_rename(call_fs(c), c->ino, c->name, c->ino2, c->name2,
			   c->flags);

	return reply_rc(c, changed(c, give_up(c, rc, final)));
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	struct call c = { .req = req, .run = run_rename, .ino = parent,
			  .name = name, .ino2 = newparent, .name2 = newname,
			  .flags = flags };

	start(&c);
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

static int run_create(struct call *c, int final)
{
	struct fuse_entry_param ep;
	struct open_file *of;
	struct entry e;
	int rc = fs_create(call_fs(c), c->ino, c->name, c->fi.flags, &e,
			   &of);

	rc = changed(c, give_up(c, rc, final));
	if (rc)
		return reply_rc(c, rc);
	fill_entry(im_of(c->req), &e, &ep);
	ep.attr_timeout = 0;
	set_open_flags(&c->fi, of);
	if (fuse_reply_create(c->req, &ep, &c->fi))
		fs_release(call_fs(c), of);
	return 0;
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct call c = { .req = req, .run = run_create, .ino = parent,
			  .name = name, .fi = *fi };

	(void)mode;
	start(&c);
}

static int run_open(struct call *c, int final)
{
	struct open_file *of;
	int rc = give_up(c, fs_open(call_fs(c), c->ino, c->fi.flags, &of),
			 final);

	if (rc)
		return reply_rc(c, rc);
	set_open_flags(&c->fi, of);
	if (fuse_reply_open(c->req, &c->fi))
		fs_release(call_fs(c), of);
	return 0;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct call c = { .req = req, .run = run_open, .ino = ino,
			  .fi = *fi };

	start(&c);
}

static int run_read(struct call *c, int final)
{
	char *buf = malloc(c->size ? c->size : 1);
	size_t got;
	int rc;

	if (!buf)
		return reply_rc(c, -ENOMEM);
	rc = fs_read(call_fs(c), call_of(c), c->ino, buf, c->size, c->off,
		     &got);
	rc = give_up(c, rc, final);
	if (!rc)
		fuse_reply_buf(c->req, buf, got);
	free(buf);
	return rc ? reply_rc(c, rc) : 0;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct call c = { .req = req, .run = run_read, .ino = ino,
			  .size = size, .off = off, .fi = *fi };

	start(&c);
}

static int run_write(struct call *c, int final)
{
	int rc = fs_write(call_fs(c), call_of(c), c->data, c->size, c->off);

	rc = give_up(c, rc, final);
	if (rc)
		return reply_rc(c, rc);
	fuse_reply_write(c->req, c->size);
	return 0;
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct call c = { .req = req, .run = run_write, .ino = ino,
			  .data = buf, .size = size, .off = off, .fi = *fi };

	start(&c);
}

static int run_flush(struct call *c, int final)
{
	return reply_rc(c, give_up(c, fs_flush(call_fs(c), call_of(c)),
				   final));
}

static void op_flush(fuse_req_t req, fuse_ino_t ino,
		     struct fuse_file_info *fi)
{
	struct call c = { .req = req, .run = run_flush, .ino = ino,
			  .fi = *fi };

	start(&c);
}

static int run_release(struct call *c, int final)
{
	(void)final;
	fs_release(call_fs(c), call_of(c));
	return reply_rc(c, 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct call c = { .req = req, .run = run_release, .ino = ino,
			  .fi = *fi };

	start(&c);
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

/*
 * A listing that had to wait part-way answers what it has so far. The
 * answer that ends a listing first drops what the kernel copied of it when
 * the directory changed meanwhile (fills.h).
 */
static int run_readdir(struct call *c, int final)
{
	struct dir_buf d = { .req = c->req, .size = c->size,
			     .plus = c->flags };
	struct imagefs *im = im_of(c->req);
	int rc;

	d.buf = malloc(c->size);
	if (!d.buf)
		return reply_rc(c, -ENOMEM);
	rc = fs_readdir(call_fs(c), c->ino, c->off, dir_fill, &d);
	rc = give_up(c, rc, final);
	if (rc && !d.len) {
		free(d.buf);
		return reply_rc(c, rc);
	}
	if (!c->off)
		fills_begin(&im->fills, c->ino);
	if (!d.len && fills_end(&im->fills, c->ino))
		fuse_lowlevel_notify_inval_inode(im->se, c->ino, 0, 0);
	fuse_reply_buf(c->req, d.buf, d.len);
	free(d.buf);
	return 0;
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct call c = { .req = req, .run = run_readdir, .ino = ino,
			  .size = size, .off = off };

	(void)fi;
	start(&c);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	struct call c = { .req = req, .run = run_readdir, .ino = ino,
			  .size = size, .off = off, .flags = 1 };

	(void)fi;
	start(&c);
}

static int run_statfs(struct call *c, int final)
{
	struct statvfs sv;
	int rc = give_up(c, fs_statfs(call_fs(c), c->ino, &sv), final);

	if (rc == -BACKEND_WAIT)
		return rc;
	fuse_reply_statfs(c->req, &sv);
	return 0;
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct call c = { .req = req, .run = run_statfs, .ino = ino };

	start(&c);
}

/* getxattr (name set) and listxattr: the value's length when size is 0 */
static int run_xattr(struct call *c, int final)
{
	char *buf = malloc(c->size ? c->size : 1);
	int rc;

	if (!buf)
		return reply_rc(c, -ENOMEM);
	rc = c->name ? fs_getxattr(call_fs(c), c->ino, c->name, buf, c->size)
		     : fs_listxattr(call_fs(c), c->ino, buf, c->size);
	rc = give_up(c, rc, final);
	if (rc < 0) {
		free(buf);
		return reply_rc(c, rc);
	}
	if (!c->size)
		fuse_reply_xattr(c->req, rc);
	else
		fuse_reply_buf(c->req, buf, rc);
	free(buf);
	return 0;
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	struct call c = { .req = req, .run = run_xattr, .ino = ino,
			  .name = name, .size = size };

	if (!fs_of(req)->xattr) {
		fuse_reply_err(req, ENOSYS);	/* the kernel stops asking */
		return;
	}
	start(&c);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct call c = { .req = req, .run = run_xattr, .ino = ino,
			  .size = size };

	if (!fs_of(req)->xattr) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	start(&c);
}

/* setxattr, and removexattr (flags set): accepted, nothing kept */
static int run_setxattr(struct call *c, int final)
{
	int rc = give_up(c, fs_setxattr(call_fs(c), c->ino, c->name), final);

	if (!rc && c->flags)
		rc = -ENODATA;
	return reply_rc(c, rc);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	struct call c = { .req = req, .run = run_setxattr, .ino = ino,
			  .name = name };

	(void)value;
	(void)size;
	(void)flags;
	start(&c);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct call c = { .req = req, .run = run_setxattr, .ino = ino,
			  .name = name, .flags = 1 };

	start(&c);
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

/*
 * The FUSE thread is done with the requests it ran, answered or set aside:
 * the backend ends what it kept open for them.
 */
static void request_end(struct imagefs *im)
{
	struct backend *b = im->fs.b;

	if (b->ops->request_end)
		b->ops->request_end(b);
}

/* Called by the backend, from any thread: something it waited for. */
static void wake(void *ctx)
{
	struct imagefs *im = ctx;
	uint64_t one = 1;

	if (write(im->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_error("wake: %s", strerror(errno));
}

/*
 * The request loop: one thread reads and answers requests, and runs the
 * waiting ones again when the backend wakes it or every RETRY_MS, so that
 * a request that waits (on the network, on a lock) holds up only itself;
 * it also lets marks of deletion lapse when their time comes (fs_tick).
 */
static int serve_loop(struct imagefs *im)
{
	struct fuse_buf fbuf = { .mem = NULL };
	struct pollfd pfd[2] = {
		{ .fd = fuse_session_fd(im->se), .events = POLLIN },
		{ .fd = im->wake_fd, .events = POLLIN },
	};
	int rc = 0;

	while (!fuse_session_exited(im->se)) {
		int due = fs_tick(&im->fs);	/* marks that lapse */
		int n = 1, ms = im->waiting ? RETRY_MS : -1;
		uint64_t v;

		if (due >= 0 && (ms < 0 || due < ms))
			ms = due < TICK_MS ? due : TICK_MS;
		/* nothing waits or lapses: read(2) blocks, no poll(2) per
		 * request */
		pfd[0].revents = POLLIN;
		pfd[1].revents = 0;
		if (ms >= 0)
			n = poll(pfd, 2, ms);

		if (n < 0 && errno != EINTR) {
			rc = -errno;
			break;
		}
		if (n > 0 && (pfd[0].revents & (POLLIN | POLLERR | POLLHUP))) {
			n = fuse_session_receive_buf(im->se, &fbuf);
			if (n == 0)
				break;	/* unmounted */
			if (n < 0 && n != -EINTR) {
				rc = n;
				break;
			}
			if (n > 0) {
				fuse_session_process_buf(im->se, &fbuf);
				request_end(im);
			}
		}
		if ((pfd[1].revents & POLLIN) &&
		    read(im->wake_fd, &v, sizeof(v)) > 0)
			im->kick = 1;
		if (im->waiting && (im->kick ||
				    now_ms() - im->retried >= RETRY_MS)) {
			im->retried = now_ms();
			retry(im, 0);
			request_end(im);
		}
	}
	retry(im, 1);
	request_end(im);
	free(fbuf.mem);
	fuse_session_reset(im->se);
	return rc;
}

/* The session that SIGTERM, SIGINT and SIGHUP end. */
static struct imagefs *signalled;

/*
 * End the session, and wake the request loop: a signal that comes between
 * its check of the session and its poll() would otherwise leave it asleep
 * (libfuse's handler only sets the flag). When nothing waits the loop
 * read(2)s /dev/fuse without a poll(), and a signal that comes just before
 * that read starts cannot end it (under valgrind, which runs a handler and
 * then starts the syscall, every early SIGTERM was lost so): SIGALRM, a
 * second later, ends that read with EINTR.
 */
static void on_signal(int sig)
{
	uint64_t one = 1;
	int saved = errno;

	(void)sig;
	if (signalled) {
		fuse_session_exit(signalled->se);
		if (write(signalled->wake_fd, &one, sizeof(one)) < 0)
			(void)0;	/* full: it is awake already */
		alarm(1);
	}
	errno = saved;
}

/*
 * Take (set 1) or give back (set 0) the signals that end the daemon; the
 * SIGALRM of on_signal() is ignored from then on, and cancelled.
 */
static int end_signals(struct imagefs *im, int set)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGALRM };
	struct sigaction sa = { 0 };
	int rc = 0;

	sigemptyset(&sa.sa_mask);
	sa.sa_handler = set ? on_signal : SIG_DFL;
	signalled = set ? im : NULL;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(*sigs); i++) {
		if (!set && sigs[i] == SIGALRM)
			sa.sa_handler = SIG_IGN;
		if (sigaction(sigs[i], &sa, NULL))
			rc = -1;
	}
	if (!set)
		alarm(0);
	sa.sa_handler = set ? SIG_IGN : SIG_DFL;
	if (sigaction(SIGPIPE, &sa, NULL))
		rc = -1;
	return rc;
}

/*
 * Block (or restore) the signals that end the daemon around the creation
 * of threads, which keep the mask: SIGTERM and Ctrl-C must come to the
 * FUSE thread, whose poll they end, not to a worker that waits on a
 * condition (under valgrind they did, and the daemon never exited).
 */
static void thread_signals(int block, sigset_t *old)
{
	sigset_t set;

	if (!block) {
		pthread_sigmask(SIG_SETMASK, old, NULL);
		return;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &set, old);
}

int imagefs_serve(struct fuse_args *args, const char *mountpoint,
		  int foreground, struct imagefs_params *p)
{
	struct imagefs *im;
	sigset_t sigs;
	int report = -1;
	int rc = 1, err;

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
	fills_init(&im->fills);
	im->tail = &im->head;
	im->waiting_tail = &im->waiting;
	im->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (im->wake_fd < 0) {
		log_error("eventfd: %s", strerror(errno));
		goto out_free;
	}
	/* everything that can fail is tried before the mount serves */
	thread_signals(1, &sigs);
	err = p->open(p->ctx, &im->fs);
	thread_signals(0, &sigs);
	if (err)
		goto out_free;
	im->fs.inval_inode = queue_inode;
	im->fs.inval_dir_now = inval_dir_now;
	im->fs.inval_ctx = im;
	im->fs.b->wake = wake;
	im->fs.b->wake_ctx = im;
	/* where the change log stands before the kernel caches anything */
	im->seq = -1;
	err = im->fs.b->ops->changes(im->fs.b, &im->seq, NULL, NULL);
	if (err) {
		log_error("cannot read the change log: %s", strerror(-err));
		goto out_close;
	}
	im->se = fuse_session_new(args, &imagefs_ops, sizeof(imagefs_ops), im);
	if (!im->se)
		goto out_close;
	if (end_signals(im, 1))
		goto out_destroy;
	if (fuse_session_mount(im->se, mountpoint))
		goto out_signals;
	if (chdir("/"))
		log_warn("chdir /: %s", strerror(errno));
	im->running = 1;
	thread_signals(1, &sigs);
	err = pthread_create(&im->thread, NULL, notify_thread, im);
	thread_signals(0, &sigs);
	if (err) {
		im->running = 0;
		log_error("cannot start a thread: %s", strerror(err));
		goto out_unmount;
	}
	notify(p->notify_pipe, "ok\n");
	if (report >= 0) {
		daemon_ready(report);
		report = -1;
	}
	rc = serve_loop(im) < 0 ? 1 : 0;
	pthread_mutex_lock(&im->lock);
	im->running = 0;
	pthread_cond_signal(&im->cond);
	pthread_mutex_unlock(&im->lock);
	pthread_join(im->thread, NULL);
out_unmount:
	fuse_session_unmount(im->se);
out_signals:
	end_signals(im, 0);
out_destroy:
	fuse_session_destroy(im->se);
out_close:
	p->close(p->ctx, &im->fs);
out_free:
	if (rc)
		notify(p->notify_pipe, "error\n");
	if (im->wake_fd >= 0)
		close(im->wake_fd);
	fills_destroy(&im->fills);
	pthread_cond_destroy(&im->cond);
	pthread_mutex_destroy(&im->lock);
	free(im);
out_report:
	if (report >= 0)
		close(report);	/* the parent exits with our status */
	return rc;
}
