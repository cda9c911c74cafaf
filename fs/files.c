// SPDX-License-Identifier: GPL-2.0
/*
 * files.c - open files of info and scratch files: their buffers, reads,
 * writes, and the commit of an info text at flush.
 *
 * A reader of info reads the image's own text, rendered from the backend
 * at its first read (a pending image's is empty); a writer's text is its
 * own open file's alone, parsed line by line as it comes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errors.h"
#include "files.h"
#include "info.h"
#include "inode.h"
#include "marks.h"
#include "scratch.h"
#include "spec.h"

struct open_file {
	struct open_file *next;
	int64_t row;		/* the image */
	int64_t scratch;	/* a scratch file's id, or 0 for info */
	int writable;
	int pending;		/* info of a pending image: commit makes it */
	int dirty;
	int error;		/* a refused write: nothing is committed */
	int made;		/* its commit made the image: what it writes
				 * next makes the image again (an amend) */
	int refused;		/* a close refused its text: no info kept */
	int lazy;		/* read-only info: render at the first read */
	int mutable;		/* of an image that can change: no page cache
				 * kept from one open to the next */
	int flushed;
	int result;		/* of the commit, for every later flush */
	int reported;		/* the errno already logged for this file */
	char *buf;
	size_t len;
	size_t cap;
	/* a writer's complete lines, parsed once each as they come */
	struct info_text parsed;
	size_t parsed_len;	/* the bytes of buf parsed into it */
	int check_due;		/* it holds keys not checked yet */
};

/* Bytes that hold the info text of nearly every image. */
#define INFO_TEXT_USUAL	2048

int fs_info_text(struct fs *fs, int64_t row, char **text, size_t *len)
{
	struct image img;
	int rc = fs->b->ops->get(fs->b, row, &img);

	if (rc)
		return rc;
	if (img.pending)
		return -ENOENT;
	/* one pass for the usual text, a second one for a longer one */
	*text = malloc(INFO_TEXT_USUAL);
	if (!*text)
		return -ENOMEM;
	*len = info_render(&img, *text, INFO_TEXT_USUAL);
	if (*len < INFO_TEXT_USUAL)
		return 0;
	free(*text);
	*text = malloc(*len + 1);
	if (!*text)
		return -ENOMEM;
	info_render(&img, *text, *len + 1);
	return 0;
}

/*
 * Whether open file of keeps its pending image's info: a writer of it
 * that no close(2) has refused (nothing is kept then, though the release
 * comes after close returned).
 */
static int keeps_info(const struct open_file *of)
{
	return of->pending && of->writable && !of->scratch && !of->refused;
}

/* The info of a pending image exists while a writer keeps it. */
static struct open_file *pending_writer(struct fs *fs, int64_t row)
{
	for (struct open_file *of = fs->open_files; of; of = of->next)
		if (of->row == row && keeps_info(of))
			return of;
	return NULL;
}

/*
 * A writer that kept pending image row's info stopped (refused, or gone):
 * when no other writer keeps it, info is gone, and the kernel's listing of
 * the directory, which showed it, is dropped before the reply, for the
 * caller's next listing (rm -r unlinks what it lists).
 */
static void info_dropped(struct fs *fs, int64_t row)
{
	if (pending_writer(fs, row))
		return;
	if (fs->inval_dir_now)
		fs->inval_dir_now(fs->inval_ctx, mutable_ino(N_IMAGE, row));
	if (fs->inval_inode)
		fs->inval_inode(fs->inval_ctx, mutable_ino(N_INFO, row));
}

int info_attr(struct fs *fs, const struct image *img, struct entry *e)
{
	if (!img->pending) {
		if (marked(fs, img->row))
			return -ENOENT;
		info_entry(fs, img, e);
		return 0;
	}
	if (!pending_writer(fs, img->row))
		return -ENOENT;
	/* the image's own info: nothing yet, the text is the writer's */
	file_entry(fs, e, mutable_ino(N_INFO, img->row), S_IFREG | 0644, 0,
		   time(NULL));
	e->mutable = 1;
	/* gone with the writer: a name the kernel kept would outlive it */
	e->transient = 1;
	return 0;
}

/* Forget what was parsed of of's text: it is read again from the start. */
static void parse_reset(struct open_file *of)
{
	info_text_free(&of->parsed);
	of->parsed.lines = 0;
	of->parsed_len = 0;
	of->check_due = 1;
}

/* Cut the text of writer of to size (no longer than it is). */
static void text_cut(struct open_file *of, size_t size)
{
	of->len = size;
	of->dirty = 1;
	of->flushed = 0;
	if (size < of->parsed_len)
		parse_reset(of);
}

void files_truncate_info(struct fs *fs, int64_t row)
{
	for (struct open_file *of = fs->open_files; of; of = of->next)
		if (of->row == row && of->writable && !of->scratch)
			text_cut(of, 0);
}

int files_truncate(struct open_file *of, size_t size)
{
	if (!of->writable || of->scratch)
		return -EBADF;
	if (size > of->len)
		return -EPERM;
	text_cut(of, size);
	return 0;
}

/*
 * Apply an edit to a committed image (edit_of_text: NULL for what does not
 * change): NAME and DESCRIPTION in one operation of the backend, charged
 * once or not at all.
 */
static int edit_apply(struct fs *fs, const struct image *img,
		      const char *name, const char *description)
{
	if (!name && !description)
		return 0;
	return fs->b->ops->edit(fs->b, img->row, NULL, name, description,
			      0);
}

/*
 * Check (dry_run) or apply parsed text t of image row's info. For a
 * pending image it makes the image; for a committed one it applies NAME
 * and DESCRIPTION, unless amend: the writer's own commit made it, and it
 * is made again from t (struct spec's amend). complete: the text is whole.
 */
static int info_apply(struct fs *fs, int64_t row, struct info_text *t,
		      int dry_run, int complete, int amend)
{
	const char *name, *description;
	struct image img;
	struct spec spec;
	int rc = fs->b->ops->get(fs->b, row, &img);

	if (rc)
		return rc;
	if (!img.pending && !amend) {
		rc = edit_of_text(&img, t, &name, &description);
		if (rc)
			fs_why(fs, rc, "%s", t->why);
		else if (!dry_run)
			rc = edit_apply(fs, &img, name, description);
		goto out;
	}
	rc = spec_of_text(t, &spec, complete);
	if (rc)
		return fs_why(fs, rc, "%s", t->why);
	spec.dry_run = dry_run;
	spec.amend = !img.pending;
	if (t->v[INFO_ID])
		rc = fs->b->ops->copy(fs->b, row, t->v[INFO_ID], &spec);
	else
		rc = fs->b->ops->commit(fs->b, row, &spec);
out:
	if (!rc && !dry_run)
		row_changed(fs, row);
	return rc;
}

static int too_big(struct fs *fs)
{
	return fs_why(fs, -EFBIG, "an info text has at most %d KiB",
		      INFO_MAX_BYTES / 1024);
}

/* Commit a whole text of image row's info (amend: as info_apply). */
static int info_commit(struct fs *fs, int64_t row, const char *text,
		       size_t len, int amend)
{
	struct info_text t;
	int rc;

	if (len > INFO_MAX_BYTES)
		return too_big(fs);
	rc = info_parse(text, len, &t);
	if (rc)
		return t.why[0] ? fs_why(fs, rc, "%s", t.why) : rc;
	rc = info_apply(fs, row, &t, 0, 1, amend);
	info_text_free(&t);
	return rc;
}

static int of_new(struct fs *fs, int64_t row, int64_t scratch, int writable,
		  struct open_file **out)
{
	struct open_file *of = calloc(1, sizeof(*of));

	if (!of)
		return -ENOMEM;
	of->row = row;
	of->scratch = scratch;
	of->writable = writable;
	of->next = fs->open_files;
	fs->open_files = of;
	*out = of;
	return 0;
}

static void of_free(struct open_file *of)
{
	info_text_free(&of->parsed);
	free(of->buf);
	free(of);
}

static int of_reserve(struct open_file *of, size_t len)
{
	char *p;
	size_t cap = of->cap ? of->cap : 512;

	if (len <= of->cap)
		return 0;
	while (cap < len)
		cap *= 2;
	p = realloc(of->buf, cap);
	if (!p)
		return -ENOMEM;
	of->buf = p;
	of->cap = cap;
	return 0;
}

/*
 * A writer of img's info, with a text of its own: empty for a pending
 * image, else the image's text unless O_TRUNC. Committed: the daily limit
 * is said now, as early as it is known.
 */
static int info_writer(struct fs *fs, const struct image *img, int flags,
		       struct open_file **out)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	if (img->pending) {
		rc = of_new(fs, img->row, 0, 1, out);
		if (!rc)
			(*out)->pending = (*out)->dirty = 1;	/* touch */
		return rc;
	}
	rc = fs->b->ops->check_ops(fs->b, img->region);
	if (rc)
		return failed(fs, img->row, "open", rc);
	if (!(flags & O_TRUNC)) {
		rc = fs_info_text(fs, img->row, &text, &len);
		if (rc)
			return rc;
	}
	rc = of_new(fs, img->row, 0, 1, out);
	if (!rc)
		rc = of_reserve(*out, len);
	if (!rc && len)
		memcpy((*out)->buf, text, len);
	if (!rc) {
		(*out)->len = len;
		(*out)->dirty = !!(flags & O_TRUNC);
	}
	free(text);
	return rc;
}

/* create(2) of info in my image img's directory. */
static int create_info(struct fs *fs, const struct image *img, int flags,
		       struct entry *e, struct open_file **out)
{
	int again = !img->pending && marked(fs, img->row);
	int rc;

	if ((flags & O_EXCL) && !info_attr(fs, img, e))
		return -EEXIST;
	/* info made again in a marked directory: an edit of the image */
	rc = info_writer(fs, img, again ? flags | O_TRUNC : flags, out);
	if (rc)
		return rc;
	if (again) {
		mark_clear(fs, img->row);
		image_changed(fs, img);
	}
	return info_attr(fs, img, e);
}

int fs_create(struct fs *fs, uint64_t parent, const char *name, int flags,
	      struct entry *e, struct open_file **out)
{
	struct scratch *s;
	struct image img;
	int rc = my_image(fs, parent, &img);

	if (rc)
		return rc;
	if (!strcmp(name, "info"))
		return create_info(fs, &img, flags, e, out);
	s = scratch_named(fs, img.row, name);
	if (s && (flags & O_EXCL))
		return -EEXIST;
	if (!s && scratch_name_ok(name) != 1)
		return -EPERM;	/* nothing kept but info and scratch files */
	if (!s) {
		rc = scratch_new(fs, img.row, name, &s);
		if (rc)
			return rc;
	}
	rc = fs_open(fs, ino_make(N_SCRATCH, s->id), flags, out);
	if (!rc)
		scratch_entry(fs, s, e);
	return rc;
}

int fs_open(struct fs *fs, uint64_t ino, int flags, struct open_file **out)
{
	int writable = (flags & O_ACCMODE) != O_RDONLY;
	struct image img;
	struct node n;
	int rc = fs_node(fs, ino, &n);

	if (rc)
		return rc;
	if (n.type == N_SCRATCH) {
		struct scratch *s = scratch_get(fs, n.id);

		if (!s)
			return -ENOENT;
		if (s->alias)
			return fs_open(fs, mutable_ino(N_INFO, s->row), flags,
				       out);
		rc = of_new(fs, s->row, s->id, writable, out);
		if (!rc && (flags & O_TRUNC))
			s->len = 0;
		return rc;
	}
	if (n.type != N_INFO)
		return -EISDIR;
	if (!writable) {
		/* rendered at the first read: a warm cat reads the cache */
		rc = of_new(fs, n.id, 0, 0, out);
		if (!rc) {
			(*out)->lazy = 1;
			(*out)->mutable = n.mutable;
		}
		return rc;
	}
	rc = fs->b->ops->get(fs->b, n.id, &img);
	if (rc)
		return rc;
	if (img.kind != KIND_CUSTOM)
		return img.pending ? -ENOENT : -EROFS;
	if (!img.pending && marked(fs, img.row))
		return -ENOENT;
	return info_writer(fs, &img, flags, out);
}

int fs_open_cacheable(const struct open_file *of)
{
	return !of->writable && !of->scratch && !of->pending && !of->mutable;
}

/* The image's own text, for a reader: a pending image's is empty. */
static int own_text(struct fs *fs, struct open_file *of)
{
	struct image img;
	char *text = NULL;
	size_t len = 0;
	int rc = fs_info_text(fs, of->row, &text, &len);

	if (rc == -ENOENT && !fs->b->ops->get(fs->b, of->row, &img) &&
	    img.pending)
		rc = 0;
	if (rc)
		return rc;
	free(of->buf);
	of->buf = text;
	of->len = of->cap = len;
	of->lazy = 0;
	return 0;
}

int fs_read(struct fs *fs, struct open_file *of, uint64_t ino, char *buf,
	    size_t size, off_t off, size_t *got)
{
	const char *data;
	size_t len;
	int rc;

	(void)ino;
	if (of->lazy) {
		rc = own_text(fs, of);
		if (rc)
			return rc;
	}
	data = of->buf;
	len = of->len;
	if (of->scratch) {
		struct scratch *s = scratch_get(fs, of->scratch);

		if (!s)
			return of->error ? of->error : -ENOENT;
		data = s->data;
		len = s->len;
	}
	*got = 0;
	if ((size_t)off < len) {
		*got = len - off < size ? len - off : size;
		memcpy(buf, data + off, *got);
	}
	return 0;
}

/* A scratch file over its size is dropped: nothing is left of it. */
static int scratch_file_write(struct fs *fs, struct open_file *of,
			      const char *buf, size_t size, off_t off)
{
	struct scratch *s = scratch_get(fs, of->scratch);
	int rc;

	if (!s)
		return of->error ? of->error : -ENOENT;
	rc = scratch_write(s, buf, size, off);
	if (rc == -EFBIG) {
		scratch_remove(fs, s);
		of->error = rc;
	}
	return rc;
}

/*
 * Parse the complete lines of of's text that are not parsed yet: each
 * byte once. A line with a key makes a check due.
 */
static int parse_lines(struct open_file *of)
{
	struct info_text before = of->parsed;
	int rc;

	if (!of->len || of->buf[of->len - 1] != '\n' ||
	    of->parsed_len == of->len)
		return 0;
	rc = info_parse_more(of->buf + of->parsed_len,
			     of->len - of->parsed_len, &of->parsed);
	of->parsed_len = of->len;
	for (int k = 0; k < INFO_NKEYS; k++)
		of->check_due |= of->parsed.v[k] != before.v[k];
	return rc;
}

/*
 * failed(), once per open file and errno: a shell's ">" closes an fd (a
 * flush that checks the text to come) before the write that is refused
 * the same way, and flush may come more than once.
 */
static int of_failed(struct fs *fs, struct open_file *of, const char *what,
		     int rc)
{
	if (rc >= 0 || rc == -BACKEND_WAIT)
		return rc;
	if (rc == of->reported) {
		fs->why[0] = 0;
		return rc;
	}
	of->reported = rc;
	return failed(fs, of->row, what, rc);
}

int fs_write(struct fs *fs, struct open_file *of, const char *buf,
	     size_t size, off_t off)
{
	size_t end = off + size, over;
	int rc;

	if (!of->writable)
		return -EBADF;
	if (of->scratch)
		return scratch_file_write(fs, of, buf, size, off);
	if (of->error)
		return of->error;
	if (end > INFO_MAX_BYTES) {
		of->error = too_big(fs);
		return of_failed(fs, of, "write", of->error);
	}
	rc = of_reserve(of, end);
	if (rc)
		return rc;
	/* other bytes where the text was parsed: parse it again (a retry
	 * of this request writes the same bytes) */
	over = end < of->parsed_len ? end : of->parsed_len;
	if ((size_t)off < over && memcmp(of->buf + off, buf, over - off))
		parse_reset(of);
	if ((size_t)off > of->len)
		memset(of->buf + of->len, 0, off - of->len);
	memcpy(of->buf + off, buf, size);
	if (end > of->len)
		of->len = end;
	of->dirty = 1;
	of->flushed = 0;
	/* a text is checked as its lines come: ">" ignores what close says */
	rc = parse_lines(of);
	if (rc && of->parsed.why[0])
		fs_why(fs, rc, "%s", of->parsed.why);
	if (!rc && of->check_due)
		rc = info_apply(fs, of->row, &of->parsed, 1, 0, of->made);
	if (rc == -BACKEND_WAIT)
		return rc;	/* made again, with the same bytes */
	of->check_due = 0;
	if (rc) {
		of->error = rc;
		return of_failed(fs, of, "write", rc);
	}
	return 0;
}

/*
 * of's text, written after its flush made the image, was refused (rc):
 * the image is made pending again, as if never made, so that a refused
 * text leaves nothing made (a backend that cannot keeps it). rc, or
 * -BACKEND_WAIT.
 */
static int unmake(struct fs *fs, struct open_file *of, int rc)
{
	int undo;

	if (!of->made || !fs->b->ops->uncommit)
		return rc;
	undo = fs->b->ops->uncommit(fs->b, of->row);
	if (undo == -BACKEND_WAIT)
		return undo;
	of->made = 0;
	if (undo) {
		failed(fs, of->row, "undo", undo);
		return rc;
	}
	/* pending again, and this writer's refused text keeps no info */
	of->pending = of->refused = 1;
	info_dropped(fs, of->row);
	row_changed(fs, of->row);
	return rc;
}

/* The commit of fs_flush. */
static int flush_text(struct fs *fs, struct open_file *of)
{
	int rc;

	if (!of->writable || of->scratch)
		return 0;
	if (of->error)
		return unmake(fs, of, of->error);
	if (!of->dirty)
		return 0;
	if (of->flushed)
		return of->result;
	/*
	 * What close(2) says is the truth: the text so far is committed now,
	 * even an empty one (touch). A shell's '>' closes the fd it dup2'ed
	 * before the command writes: a text written after a flush that made
	 * the image makes it again, as the same one operation (an amend).
	 */
	rc = info_commit(fs, of->row, of->buf ? of->buf : "", of->len,
			 of->made);
	if (rc == -BACKEND_WAIT)
		return rc;
	if (rc && of->made) {
		of_failed(fs, of, "commit", rc);
		return unmake(fs, of, rc);	/* flushed again, if it waits */
	}
	of->flushed = 1;
	of->result = rc;
	if (of->result) {
		of_failed(fs, of, "commit", of->result);
	} else if (of->pending) {
		of->pending = 0;
		of->made = 1;
	}
	return of->result;
}

int fs_flush(struct fs *fs, struct open_file *of)
{
	int kept = keeps_info(of);
	int rc = flush_text(fs, of);

	/* a text refused for good: close says so, info is gone now */
	if (kept && rc && (of->error || of->flushed)) {
		of->refused = 1;
		info_dropped(fs, of->row);
	}
	return rc;
}

void fs_release(struct fs *fs, struct open_file *of)
{
	int kept = keeps_info(of);

	for (struct open_file **p = &fs->open_files; *p; p = &(*p)->next) {
		if (*p == of) {
			*p = of->next;
			break;
		}
	}
	if (kept)
		info_dropped(fs, of->row);
	of_free(of);
}

void files_free_all(struct fs *fs)
{
	while (fs->open_files) {
		struct open_file *of = fs->open_files;

		fs->open_files = of->next;
		of_free(of);
	}
}

/* Whether image row has an info: committed, or a writer has it open. */
static int has_info(struct fs *fs, int64_t row)
{
	struct image img;
	struct entry e;

	return !fs->b->ops->get(fs->b, row, &img) && !info_attr(fs, &img, &e);
}

/*
 * A scratch file renamed onto info: a write of info, committed now (info
 * is there again if it was unlinked). The kernel's "info" then names the
 * scratch inode, so that inode stands for info until the kernel has
 * dropped it.
 */
static int scratch_onto_info(struct fs *fs, struct scratch *s)
{
	int rc = info_commit(fs, s->row, s->data ? s->data : "", s->len, 0);

	if (rc)
		return failed(fs, s->row, "commit", rc);
	mark_clear(fs, s->row);
	scratch_alias(fs, s);
	return 0;
}

int files_rename(struct fs *fs, int64_t row, const char *name,
		 const char *newname, unsigned int flags)
{
	struct scratch *s = scratch_named(fs, row, name);
	struct scratch *d = scratch_named(fs, row, newname);

	if (!s)
		return -ENOENT;
	if (!strcmp(newname, "info")) {
		if (s->link)
			return -EPERM;
		if ((flags & RENAME_NOREPLACE) && has_info(fs, row))
			return -EEXIST;
		return scratch_onto_info(fs, s);
	}
	if (s->link != (scratch_name_ok(newname) == 2) ||
	    !scratch_name_ok(newname))
		return -EPERM;	/* nothing kept but scratch names */
	if (d) {
		if (flags & RENAME_NOREPLACE)
			return -EEXIST;
		scratch_remove(fs, d);
	}
	snprintf(s->name, sizeof(s->name), "%s", newname);
	return 0;
}
