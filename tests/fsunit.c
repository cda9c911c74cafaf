// SPDX-License-Identifier: GPL-2.0
/*
 * fsunit.c - unit tests of fs/ without FUSE, over a real local catalog (a
 * temp file with the seed): what no mounted test can reach on purpose, such
 * as a request about a name that another daemon just removed, and how many
 * dry runs a writer's text costs. The backend is wrapped by a counter of
 * dry runs, the way STYLE.md says to wrap: a second operations table that
 * passes every call on.
 *
 * Run by `make unit`; prints the failed checks and "N passed, M failed",
 * and exits 1 when any check failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../backend/backend.h"
#include "../fs/fs.h"
#include "../fs/inode.h"
#include "../mountopts/config.h"
#include "expect.h"

#define GZ	"ap-guangzhou"
#define WEB	"web-server-2026"
#define PEER	"100000000003"

/* --- a backend that counts the dry runs it passes on ------------------ */

static const struct backend_ops *real;
static struct backend_ops counting;
static int dry_runs;

static int count_commit(struct backend *b, int64_t row,
			const struct spec *spec)
{
	dry_runs += spec->dry_run;
	return real->commit(b, row, spec);
}

static int count_copy(struct backend *b, int64_t row, const char *source_id,
		      const struct spec *spec)
{
	dry_runs += spec->dry_run;
	return real->copy(b, row, source_id, spec);
}

static void wrap(struct backend *b)
{
	real = b->ops;
	counting = *real;
	counting.commit = count_commit;
	counting.copy = count_copy;
	b->ops = &counting;
}

/* --- helpers ---------------------------------------------------------- */

static const struct region *region(struct fs *fs, const char *name)
{
	for (int i = 0; i < fs->nregions; i++)
		if (!strcmp(fs->regions[i].name, name))
			return &fs->regions[i];
	return NULL;
}

/* Fill a stretch of stack with a pattern: what a missing store reads. */
static void __attribute__((noinline)) poison_stack(void)
{
	volatile char junk[16384];

	memset((char *)junk, 0x41, sizeof(junk));
}

/* --- the tests -------------------------------------------------------- */

/* A failed lookup still says whether its absence may be cached. */
static void test_failed_lookup_is_initialised(struct fs *fs)
{
	struct entry e;
	uint64_t bad[] = {
		0x17,				/* a type no inode has */
		ino_make(N_REGION, 9999),	/* no such region */
		ino_make(N_FOLDER, 9999 << 2),
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		memset(&e, 0x5a, sizeof(e));
		EXPECT_EQ_INT(fs_lookup(fs, bad[i], "x", &e), -ENOENT);
		EXPECT_EQ_INT(e.mutable, 0);
	}
}

/*
 * rm of a share link that another daemon removed first: the kernel still
 * has the name, the catalog has no share. ENOENT, and no error is kept
 * for an image (it once read a share that was never filled in).
 */
static void test_unlink_of_a_share_gone(struct fs *fs)
{
	const struct region *r = region(fs, GZ);
	struct entry e;

	EXPECT(r != NULL);
	if (!r)
		return;
	EXPECT_EQ_INT(fs_mkdir(fs, folder_ino(r, KIND_SHARED), PEER, &e), 0);
	poison_stack();
	EXPECT_EQ_INT(fs_unlink(fs, peer_ino(r, PEER), WEB), -ENOENT);
	EXPECT(fs->errors == NULL);
	poison_stack();
	EXPECT_EQ_INT(fs_unlink(fs, peer_ino(r, PEER), "no-such-link"),
		      -ENOENT);
	EXPECT(fs->errors == NULL);
}

/* rename in the directory of an image that is gone: ENOENT. */
static void test_rename_in_a_gone_image(struct fs *fs)
{
	uint64_t gone = mutable_ino(N_IMAGE, 999999);

	EXPECT_EQ_INT(fs_rename(fs, gone, "sedAbC123", gone, "info", 0),
		      -ENOENT);
	EXPECT_EQ_INT(fs_rename(fs, gone, "info", gone, "info~", 0),
		      -ENOENT);
}

/* Write text to of one byte per write(2); the writes that failed. */
static int write_bytes(struct fs *fs, struct open_file *of, const char *text)
{
	int failed = 0;

	for (size_t i = 0; text[i]; i++)
		failed += fs_write(fs, of, text + i, 1, i) != 0;
	return failed;
}

/*
 * A text written byte by byte to a pending image's info: a dry run of the
 * backend only for a write that completes a line with a key, one at most
 * per write, and none for blank lines and comments.
 */
static void test_dry_runs_per_write(struct fs *fs)
{
	const struct region *r = region(fs, "ap-beijing");
	struct open_file *of;
	struct entry dir, e;
	char text[8192];
	size_t len = 0;
	int rc;

	EXPECT(r != NULL);
	if (!r)
		return;
	EXPECT_EQ_INT(fs_mkdir(fs, folder_ino(r, KIND_CUSTOM), "bytewise",
			       &dir), 0);
	rc = fs_create(fs, dir.ino, "info", O_WRONLY | O_CREAT, &e, &of);
	EXPECT_EQ_INT(rc, 0);
	if (rc)
		return;
	len += snprintf(text + len, sizeof(text) - len,
			"DESCRIPTION=\"one byte at a time\"\n");
	for (int i = 0; i < 200; i++)
		len += snprintf(text + len, sizeof(text) - len,
				i % 2 ? "# a comment\n" : "\n");
	snprintf(text + len, sizeof(text) - len, "OS_TYPE=linux\n");
	dry_runs = 0;
	EXPECT_EQ_INT(write_bytes(fs, of, text), 0);
	EXPECT_EQ_INT(dry_runs, 2);	/* two lines with a key */
	/* the same bytes again (a retry): nothing new to check */
	dry_runs = 0;
	EXPECT_EQ_INT(fs_write(fs, of, text, strlen(text), 0), 0);
	EXPECT_EQ_INT(dry_runs, 0);
	/* other bytes over what was parsed: parsed and checked again */
	EXPECT_EQ_INT(fs_write(fs, of, "COLOR=b\n", 8, 0), -EINVAL);
	EXPECT_EQ_INT(fs_flush(fs, of), -EINVAL);
	fs_release(fs, of);
	EXPECT_EQ_INT(fs_rmdir(fs, folder_ino(r, KIND_CUSTOM), "bytewise"), 0);
}

int main(void)
{
	char dir[] = "/tmp/imagefs-fsunit-XXXXXX", db[128];
	struct config cfg = { 0 };
	struct backend *b;
	struct fs fs;
	int rc;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(db, sizeof(db), "%s/catalog.db", dir);
	cfg.backend = "local";
	cfg.db = db;
	cfg.account = "100000000001";
	cfg.import_timeout = 30;
	cfg.lock_timeout = 10;
	rc = local_open(&cfg, &b);
	EXPECT_EQ_INT(rc, 0);
	if (rc)
		return 1;
	wrap(b);
	rc = fs_init(&fs, b, 0);
	EXPECT_EQ_INT(rc, 0);
	if (!rc) {
		test_failed_lookup_is_initialised(&fs);
		test_unlink_of_a_share_gone(&fs);
		test_rename_in_a_gone_image(&fs);
		test_dry_runs_per_write(&fs);
		fs_destroy(&fs);
	}
	b->ops = real;
	b->ops->close(b);
	unlink(db);
	snprintf(db, sizeof(db), "%s/catalog.db-wal", dir);
	unlink(db);
	snprintf(db, sizeof(db), "%s/catalog.db-shm", dir);
	unlink(db);
	rmdir(dir);
	printf("%d passed, %d failed\n", expect_passed, expect_failed);
	return expect_failed ? 1 : 0;
}
