// SPDX-License-Identifier: GPL-2.0
/*
 * files.c - open files of info and scratch files: their buffers, reads,
 * writes, and the commit of an info text at flush.
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
#include "scratch.h"
#include "spec.h"

struct open_file {
	struct open_file *next;
	int64_t row;		/* the image */
	int64_t scratch;	/* a scratch file's id, or 0 for info */
	int writable;
	int pending;		/* info of a pending image: commit makes it */
	int dirty;
	int written;		/* a write(2) came */
	int error;		/* a refused write: nothing is committed */
	int at_release;		/* commit the empty text at release */
	int lazy;		/* read-only info: render at the first read */
	int mutable;		/* of an image that can change: no page cache
				 * kept from one open to the next */
	int flushed;
	int result;		/* of the commit, for every later flush */
	int reported;		/* the errno already logged for this file */
	char *buf;
	size_t len;
	size_t cap;
};

int fs_info_text(struct fs *fs, int64_t row, char **text, size_t *len)
{
	struct image img;
	int rc = fs->b->ops->get(fs->b, row, &img);

	if (rc)
		return rc;
	if (img.pending)
		return -ENOENT;
	*len = info_render(&img, NULL, 0);
	*text = malloc(*len + 1);
	if (!*text)
		return -ENOMEM;
	info_render(&img, *text, *len + 1);
	return 0;
}

/* The info of a pending image exists while a writer has it open. */
static struct open_file *pending_writer(struct fs *fs, int64_t row)
{
	for (struct open_file *of = fs->open_files; of; of = of->next)
		if (of->row == row && of->pending && !of->scratch)
			return of;
	return NULL;
}

int info_attr(struct fs *fs, const struct image *img, struct entry *e)
{
	struct open_file *of;

	if (!img->pending) {
		info_entry(fs, img, e);
		return 0;
	}
	of = pending_writer(fs, img->row);
	if (!of)
		return -ENOENT;
	file_entry(fs, e, mutable_ino(N_INFO, of->row), S_IFREG | 0644,
		   of->len, time(NULL));
	e->mutable = 1;
	return 0;
}

void files_truncate_info(struct fs *fs, int64_t row)
{
	for (struct open_file *of = fs->open_files; of; of = of->next) {
		if (of->row == row && of->writable && !of->scratch) {
			of->len = 0;
			of->dirty = 1;
		}
	}
}

/* Apply an edited text to a committed image: NAME and DESCRIPTION in one
 * operation of the backend, charged once or not at all. */
static int edit_apply(struct fs *fs, const struct image *img,
		      const struct info_text *t)
{
	const char *name = t->v[INFO_NAME];
	const char *desc = t->v[INFO_DESCRIPTION];

	/* what the file shows, written back, is no change */
	if (name && edit_unchanged(img, INFO_NAME, name))
		name = NULL;
	if (desc && edit_unchanged(img, INFO_DESCRIPTION, desc))
		desc = NULL;
	if (!name && !desc)
		return 0;
	return fs->b->ops->edit(fs->b, img->row, name, desc);
}

static int too_big(struct fs *fs)
{
	return fs_why(fs, -EFBIG, "an info text has at most %d KiB",
		      INFO_MAX_BYTES / 1024);
}

/*
 * Check (dry_run) or commit the text of an info file. For a pending image
 * it makes the image; for a committed one it applies NAME and DESCRIPTION.
 */
static int info_commit(struct fs *fs, int64_t row, const char *text,
		       size_t len, int dry_run)
{
	struct info_text t;
	struct image img;
	struct spec spec;
	int rc;

	if (len > INFO_MAX_BYTES)
		return too_big(fs);
	rc = fs->b->ops->get(fs->b, row, &img);
	if (rc)
		return rc;
	rc = info_parse(text, len, &t);
	if (rc)
		return t.why[0] ? fs_why(fs, rc, "%s", t.why) : rc;
	if (!img.pending) {
		rc = edit_check(&img, &t);
		if (rc)
			fs_why(fs, rc, "%s", t.why);
		else if (!dry_run)
			rc = edit_apply(fs, &img, &t);
		goto out_free;
	}
	rc = spec_of_text(&t, &spec, !dry_run);
	if (rc) {
		fs_why(fs, rc, "%s", t.why);
		goto out_free;
	}
	spec.dry_run = dry_run;
	if (t.v[INFO_ID])
		rc = fs->b->ops->copy(fs->b, row, t.v[INFO_ID], &spec);
	else
		rc = fs->b->ops->commit(fs->b, row, &spec);
out_free:
	info_text_free(&t);
	if (!rc && !dry_run)
		row_changed(fs, row);
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

static int of_load(struct open_file *of, const char *data, size_t len)
{
	int rc = of_reserve(of, len);

	if (rc)
		return rc;
	if (len)
		memcpy(of->buf, data, len);
	of->len = len;
	return 0;
}

int fs_create(struct fs *fs, uint64_t parent, const char *name, int flags,
	      struct entry *e, struct open_file **out)
{
	struct scratch *s;
	struct image img;
	int rc = my_image(fs, parent, &img);

	if (rc)
		return rc;
	if (!strcmp(name, "info")) {
		if (!img.pending || pending_writer(fs, img.row)) {
			if (flags & O_EXCL)
				return -EEXIST;
			rc = fs_open(fs, mutable_ino(N_INFO, img.row), flags,
				     out);
			return rc ? rc : info_attr(fs, &img, e);
		}
		rc = of_new(fs, img.row, 0, 1, out);
		if (rc)
			return rc;
		(*out)->pending = 1;
		(*out)->dirty = 1;	/* touch alone commits the defaults */
		return info_attr(fs, &img, e);
	}
	s = scratch_named(fs, img.row, name);
	if (s && (flags & O_EXCL))
		return -EEXIST;
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
	struct open_file *pw;
	struct image img;
	struct node n;
	char *text = NULL;
	size_t len = 0;
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
	pw = pending_writer(fs, n.id);
	if (pw) {
		rc = of_new(fs, n.id, 0, writable, out);
		if (!rc)
			rc = of_load(*out, pw->buf, pw->len);
		if (!rc)
			(*out)->pending = 1;
		return rc;
	}
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
	if (img.pending && img.kind == KIND_CUSTOM) {
		/* a new text for a pending image, as at create */
		rc = of_new(fs, img.row, 0, 1, out);
		if (!rc)
			(*out)->pending = (*out)->dirty = 1;
		return rc;
	}
	if (img.pending)
		return -ENOENT;
	if (img.kind != KIND_CUSTOM)
		return -EROFS;
	/* the daily limit, as early as it is known */
	rc = fs->b->ops->check_ops(fs->b, img.region);
	if (rc)
		return failed(fs, n.id, "open", rc);
	rc = fs_info_text(fs, n.id, &text, &len);
	if (rc)
		return rc;
	rc = of_new(fs, n.id, 0, writable, out);
	if (!rc && !(flags & O_TRUNC))
		rc = of_load(*out, text, len);
	if (!rc && (flags & O_TRUNC))
		(*out)->dirty = 1;
	free(text);
	return rc;
}

int fs_open_cacheable(const struct open_file *of)
{
	return !of->writable && !of->scratch && !of->pending && !of->mutable;
}

int fs_read(struct fs *fs, struct open_file *of, uint64_t ino, char *buf,
	    size_t size, off_t off, size_t *got)
{
	const char *data;
	size_t len;
	int rc;

	(void)ino;
	if (of->lazy) {
		char *text;

		rc = fs_info_text(fs, of->row, &text, &len);
		if (rc)
			return rc;
		free(of->buf);
		of->buf = text;
		of->len = of->cap = len;
		of->lazy = 0;
	}
	data = of->buf;
	len = of->len;
	if (of->scratch) {
		struct scratch *s = scratch_get(fs, of->scratch);

		if (!s)
			return -ENOENT;
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
	size_t end = off + size;
	int rc;

	if (!of->writable)
		return -EBADF;
	if (of->scratch) {
		struct scratch *s = scratch_get(fs, of->scratch);

		return s ? scratch_write(s, buf, size, off) : -ENOENT;
	}
	if (of->error)
		return of->error;
	of->written = 1;
	if (end > INFO_MAX_BYTES) {
		of->error = too_big(fs);
		return of_failed(fs, of, "write", of->error);
	}
	rc = of_reserve(of, end);
	if (rc)
		return rc;
	if ((size_t)off > of->len)
		memset(of->buf + of->len, 0, off - of->len);
	memcpy(of->buf + off, buf, size);
	if (end > of->len)
		of->len = end;
	of->dirty = 1;
	of->flushed = 0;
	/* a complete text is checked now: ">" ignores what close says */
	if (of->len && of->buf[of->len - 1] == '\n') {
		rc = info_commit(fs, of->row, of->buf, of->len, 1);
		if (rc == -BACKEND_WAIT)
			return rc;	/* made again, with the same bytes */
		if (rc) {
			of->error = rc;
			return of_failed(fs, of, "write", rc);
		}
	}
	return 0;
}

int fs_flush(struct fs *fs, struct open_file *of)
{
	int rc;

	if (!of->writable || of->scratch)
		return 0;
	if (of->error)
		return of->error;
	if (!of->dirty)
		return 0;
	if (of->flushed)
		return of->result;
	if (of->pending && !of->written) {
		/*
		 * Nothing written yet: touch, or a shell's '>' closing the
		 * fd it dup2'ed before the command writes. Say now whether
		 * the defaults would commit; do it at release if no text
		 * comes.
		 */
		int rc = info_commit(fs, of->row, "", 0, 1);

		if (rc == -BACKEND_WAIT)
			return rc;
		of->at_release = !rc;
		return of_failed(fs, of, "commit", rc);
	}
	rc = info_commit(fs, of->row, of->buf, of->len, 0);
	if (rc == -BACKEND_WAIT)
		return rc;
	of->at_release = 0;
	of->flushed = 1;
	of->result = rc;
	if (of->result)
		of_failed(fs, of, "commit", of->result);
	else
		of->pending = 0;
	return of->result;
}

int fs_release(struct fs *fs, struct open_file *of, int final)
{
	int rc;

	if (of->at_release && !of->written && !of->error) {
		rc = info_commit(fs, of->row, "", 0, 0);
		if (rc == -BACKEND_WAIT && !final)
			return rc;
		if (rc == -BACKEND_WAIT)
			rc = -fs_wait_errno(fs);
		if (!rc)
			of->pending = 0;
		of_failed(fs, of, "commit", rc);
	}
	for (struct open_file **p = &fs->open_files; *p; p = &(*p)->next) {
		if (*p == of) {
			*p = of->next;
			break;
		}
	}
	free(of->buf);
	free(of);
	return 0;
}

void files_free_all(struct fs *fs)
{
	while (fs->open_files) {
		struct open_file *of = fs->open_files;

		fs->open_files = of->next;
		free(of->buf);
		free(of);
	}
}

/* Whether image row has an info: committed, or a writer has it open. */
static int has_info(struct fs *fs, int64_t row)
{
	struct image img;

	if (fs->b->ops->get(fs->b, row, &img))
		return 0;
	return !img.pending || pending_writer(fs, row);
}

/*
 * A scratch file renamed onto info: a write of info, committed now. The
 * kernel's "info" then names the scratch inode, so that inode stands for
 * info until the kernel has dropped it.
 */
static int scratch_onto_info(struct fs *fs, struct scratch *s)
{
	int rc = info_commit(fs, s->row, s->data ? s->data : "", s->len, 0);

	if (rc)
		return failed(fs, s->row, "commit", rc);
	scratch_alias(fs, s);
	return 0;
}

int files_rename(struct fs *fs, int64_t row, const char *name,
		 const char *newname, unsigned int flags)
{
	struct scratch *s = scratch_named(fs, row, name);
	struct scratch *d = scratch_named(fs, row, newname);
	char *text;
	size_t len;
	int rc;

	if (!strcmp(name, "info")) {
		/* a backup of info: copy it, info itself stays */
		if (d && (flags & RENAME_NOREPLACE))
			return -EEXIST;
		rc = fs_info_text(fs, row, &text, &len);
		if (rc)
			return rc;
		if (!d)
			rc = scratch_new(fs, row, newname, &d);
		if (!rc) {
			free(d->data);
			d->data = text;
			d->len = len;
			return 0;
		}
		free(text);
		return rc;
	}
	if (!s)
		return -ENOENT;
	if (!strcmp(newname, "info")) {
		if ((flags & RENAME_NOREPLACE) && has_info(fs, row))
			return -EEXIST;
		return scratch_onto_info(fs, s);
	}
	if (d) {
		if (flags & RENAME_NOREPLACE)
			return -EEXIST;
		scratch_remove(fs, d);
	}
	snprintf(s->name, sizeof(s->name), "%s", newname);
	return 0;
}
