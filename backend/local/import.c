// SPDX-License-Identifier: GPL-2.0
/*
 * import.c - image import for the local backend: background threads that
 * download an image file with libcurl (http, https) or read it from a
 * directory the mount allows (file), hash it, recognise its format and
 * size, and turn an IMPORTING image into a NORMAL one, or an IMPORTFAILED
 * one that says why.
 *
 * Imports live in the catalog (table imports) with the account and the
 * Unix user that committed them: only a daemon of that account running as
 * that user takes one up (another would be a confused deputy, reading with
 * its own rights what someone else asked for). A worker claims an import
 * with its pid and keeps a heartbeat; an import whose daemon died (or went
 * silent) is claimed again and starts over. Only the first and last bytes
 * of a file are kept.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "imagefmt.h"
#include "local.h"
#include "../../mountopts/log.h"

#define IMPORT_WORKERS	2	/* downloads at once per daemon */
#define IMPORT_ATTEMPTS	3	/* tries of a transient failure */
#define STALE_SECONDS	10	/* a claim without heartbeat this long */
#define PROGRESS_MS	250	/* how often progress reaches the catalog */
#define HEARTBEAT_MS	2000	/* how often a download says it lives */
#define IDLE_MS		1000	/* how often idle workers look for work */
#define READ_BYTES	65536	/* one read of a file:// import */

struct importer {
	pthread_t threads[IMPORT_WORKERS];
	int nthreads;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop;
	struct local *l;	/* whose imports: is its catalog gone? */
	char *path;
	char *account;		/* claims only imports of this account */
	char *dirs;		/* -o import_dirs: DIR[:DIR], or NULL */
	long timeout;		/* seconds without data before giving up */
};

/* One download under way. */
struct job {
	struct importer *imp;
	sqlite3 *db;
	int64_t row;
	char *url;
	char *sha256;		/* expected, or NULL */
	int64_t max_bytes;
	/* what the download keeps */
	EVP_MD_CTX *md;
	unsigned char head[IMAGE_HEAD_BYTES];
	size_t head_len;
	unsigned char tail[IMAGE_TAIL_BYTES];
	size_t tail_len;
	uint64_t total;
	int too_large;
	int64_t last_progress_ms;
	int64_t last_progress;
	int64_t last_beat_ms;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int stopping(struct importer *imp)
{
	int stop;

	pthread_mutex_lock(&imp->lock);
	stop = imp->stop;
	pthread_mutex_unlock(&imp->lock);
	return stop;
}

/* Wait ms or until stopped or kicked; non-zero when stopping. */
static int nap(struct importer *imp, long ms)
{
	struct timespec ts;
	int stop;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&imp->lock);
	if (!imp->stop)
		pthread_cond_timedwait(&imp->cond, &imp->lock, &ts);
	stop = imp->stop;
	pthread_mutex_unlock(&imp->lock);
	return stop;
}

int url_redact(const char *url, char *out, size_t size)
{
	const char *auth = strstr(url, "://");
	const char *end, *at;
	size_t keep = strcspn(url, "?#");	/* no query, no fragment */
	int taken = url[keep] != 0;

	if (auth && (size_t)(auth - url) < keep) {
		auth += 3;
		end = auth + strcspn(auth, "/?#");
		/* the user info ends at the last '@' of the authority */
		at = memrchr(auth, '@', end - auth);
		if (at) {
			snprintf(out, size, "%.*s%.*s", (int)(auth - url), url,
				 (int)(keep - (at + 1 - url)), at + 1);
			return 1;
		}
	}
	snprintf(out, size, "%.*s", (int)keep, url);
	return taken;
}

/* Whether every byte of url is printable ASCII: no control, no space. */
static int url_printable(const char *url)
{
	for (const unsigned char *p = (const unsigned char *)url; *p; p++)
		if (*p <= ' ' || *p >= 0x7f)
			return 0;
	return 1;
}

int url_check(const char *url)
{
	static const char *const schemes[] = { "http://", "https://" };

	if (!url_printable(url))
		return -EINVAL;
	for (size_t i = 0; i < sizeof(schemes) / sizeof(*schemes); i++)
		if (!strncasecmp(url, schemes[i], strlen(schemes[i])) &&
		    url[strlen(schemes[i])])
			return 0;
	return -EINVAL;
}

/* A path below a directory: parts that are neither empty, "." nor "..". */
static int rel_path_ok(const char *rel)
{
	for (;;) {
		size_t c = strcspn(rel, "/");

		if (!c || (c == 1 && rel[0] == '.') ||
		    (c == 2 && !strncmp(rel, "..", 2)))
			return 0;
		if (!rel[c])
			return 1;
		rel += c + 1;
	}
}

/*
 * The file a file:// URL names, when it lies under one of dirs (a list
 * DIR[:DIR]): the directory in dir and the path below it in rel. 0, or
 * -EINVAL.
 */
static int file_url_path(const char *dirs, const char *url, char *dir,
			 size_t dir_size, char *rel, size_t rel_size)
{
	char *host = NULL, *path = NULL;
	CURLU *u = NULL;
	int rc = -EINVAL;

	if (!dirs || strncasecmp(url, "file://", 7) || !url_printable(url))
		return -EINVAL;
	u = curl_url();
	if (!u || curl_url_set(u, CURLUPART_URL, url, 0) ||
	    curl_url_get(u, CURLUPART_PATH, &path, CURLU_URLDECODE))
		goto out;
	if (!curl_url_get(u, CURLUPART_HOST, &host, 0) && host[0] &&
	    strcasecmp(host, "localhost"))
		goto out;			/* another machine's file */
	for (const char *d = dirs; ; d++) {
		size_t len = strcspn(d, ":"), n = len;

		while (n && d[n - 1] == '/')
			n--;			/* "/srv/images/" and "/" */
		if (len && d[0] == '/' && !strncmp(path, d, n) &&
		    path[n] == '/' && rel_path_ok(path + n + 1) &&
		    snprintf(dir, dir_size, "%.*s", (int)n, d) <
		    (int)dir_size &&
		    snprintf(rel, rel_size, "%s", path + n + 1) <
		    (int)rel_size) {
			rc = 0;
			break;
		}
		d += len;
		if (!*d)
			break;
	}
out:
	curl_free(host);
	curl_free(path);
	curl_url_cleanup(u);
	return rc;
}

int local_url_check(struct local *l, const char *url)
{
	char dir[PATH_MAX], rel[PATH_MAX];

	if (!url_check(url))
		return 0;
	return file_url_path(l->importer ? l->importer->dirs : NULL, url, dir,
			     sizeof(dir), rel, sizeof(rel));
}

/* A statement on the worker's own connection, run to its end. */
static int run_sql(sqlite3 *db, const char *sql, const char *fmt, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	int rc;

	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return -EIO;
	va_start(ap, fmt);
	for (int i = 0; fmt[i]; i++) {
		if (fmt[i] == 'i') {
			sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
		} else {
			const char *s = va_arg(ap, const char *);

			if (s)
				sqlite3_bind_text(st, i + 1, s, -1,
						  SQLITE_TRANSIENT);
		}
	}
	va_end(ap);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	sqlite3_finalize(st);
	return local_errno(rc);
}

/*
 * Tell every daemon (this one too: origin 0) that an image changed, in
 * the transaction that changes it.
 */
static int log_image(sqlite3 *db, int64_t row)
{
	return run_sql(db, "INSERT INTO changes (image, region, owner, "
		       "old_name, new_name, origin) SELECT row, region, owner, "
		       "name, name, 0 FROM images WHERE row = ?1", "i", row);
}

/* Show the progress (at most every PROGRESS_MS) and keep the claim. */
static void progress(struct job *j, int64_t now, int64_t done, int64_t all)
{
	int64_t value = all > 0 ? done * 100 / all : done;
	int moved = value != j->last_progress &&
		    now - j->last_progress_ms >= PROGRESS_MS;

	if (!moved && now - j->last_beat_ms < HEARTBEAT_MS)
		return;
	j->last_beat_ms = now;
	if (run_sql(j->db, "BEGIN IMMEDIATE", ""))
		return;
	if (moved) {
		j->last_progress = value;
		j->last_progress_ms = now;
		run_sql(j->db, "UPDATE images SET progress = ?1 WHERE "
			"row = ?2 AND state = 'IMPORTING'", "ii", value,
			j->row);
		log_image(j->db, j->row);
	}
	run_sql(j->db, "UPDATE imports SET heartbeat = ?1 WHERE image = ?2",
		"ii", (int64_t)time(NULL), j->row);
	if (run_sql(j->db, "COMMIT", ""))
		run_sql(j->db, "ROLLBACK", "");
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
		       curl_off_t ultotal, curl_off_t ulnow)
{
	struct job *j = arg;

	(void)ultotal;
	(void)ulnow;
	if (stopping(j->imp))
		return 1;	/* unmount: the transfer ends now */
	progress(j, now_ms(), dlnow, dltotal);
	return 0;
}

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
	struct job *j = arg;
	size_t len = size * n;

	if (j->max_bytes > 0 && j->total + len > (uint64_t)j->max_bytes) {
		j->too_large = 1;
		return 0;	/* aborts the transfer */
	}
	EVP_DigestUpdate(j->md, data, len);
	if (j->head_len < sizeof(j->head)) {
		size_t take = sizeof(j->head) - j->head_len;

		take = take < len ? take : len;
		memcpy(j->head + j->head_len, data, take);
		j->head_len += take;
	}
	if (len >= sizeof(j->tail)) {
		memcpy(j->tail, data + len - sizeof(j->tail), sizeof(j->tail));
		j->tail_len = sizeof(j->tail);
	} else {
		size_t keep = sizeof(j->tail) - len;

		if (j->tail_len > keep) {
			memmove(j->tail, j->tail + j->tail_len - keep, keep);
			j->tail_len = keep;
		}
		memcpy(j->tail + j->tail_len, data, len);
		j->tail_len += len;
	}
	j->total += len;
	return len;
}

/* Whether a failure may pass if tried again. */
static int transient(CURLcode rc, long http)
{
	switch (rc) {
	case CURLE_HTTP_RETURNED_ERROR:
		return http >= 500;
	case CURLE_COULDNT_CONNECT:
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
		return 1;
	default:
		return 0;
	}
}

/* The words of ERROR for a failed transfer: the one table of curl codes. */
static void describe(struct job *j, CURL *curl, CURLcode rc, long http,
		     char *err, size_t size)
{
	curl_off_t announced = -1;

	switch (rc) {
	case CURLE_HTTP_RETURNED_ERROR:
		snprintf(err, size, "download failed: HTTP %ld", http);
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
		snprintf(err, size, "TLS failure: %s", curl_easy_strerror(rc));
		break;
	case CURLE_OPERATION_TIMEDOUT:
		snprintf(err, size, "timeout: no data for %ld s",
			 j->imp->timeout);
		break;
	case CURLE_PARTIAL_FILE:
		curl_easy_getinfo(curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
				  &announced);
		snprintf(err, size, "truncated: got %llu of %lld bytes",
			 (unsigned long long)j->total, (long long)announced);
		break;
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
		snprintf(err, size, "cannot connect: %s",
			 curl_easy_strerror(rc));
		break;
	case CURLE_TOO_MANY_REDIRECTS:
		snprintf(err, size, "too many redirects");
		break;
	case CURLE_FILE_COULDNT_READ_FILE:
		snprintf(err, size, "cannot read the file");
		break;
	default:
		if (j->too_large)
			snprintf(err, size, "too large: more than %lld bytes",
				 (long long)j->max_bytes);
		else
			snprintf(err, size, "download failed: %s",
				 curl_easy_strerror(rc));
	}
}

static CURL *new_transfer(struct job *j)
{
	CURL *curl = curl_easy_init();

	if (!curl)
		return NULL;
	curl_easy_setopt(curl, CURLOPT_URL, j->url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https,file");
	curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, j->imp->timeout);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "imagefs/" IMAGEFS_VERSION);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, j);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, j);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	return curl;
}

static void reset(struct job *j)
{
	EVP_DigestInit_ex(j->md, EVP_sha256(), NULL);
	j->head_len = j->tail_len = 0;
	j->total = 0;
	j->too_large = 0;
	j->last_progress = -1;
	j->last_progress_ms = 0;
	j->last_beat_ms = now_ms();
}

/* Check what came: format, size, checksum. 0, or -EINVAL with err. */
static int inspect(struct job *j, char *hex, struct image_kind_size *ks,
		   char *err, size_t size)
{
	struct image_bytes b = { j->head, j->head_len, j->tail, j->tail_len,
				 j->total };
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	EVP_DigestFinal_ex(j->md, md, &len);
	for (unsigned int i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	if (j->sha256 && strcmp(j->sha256, hex)) {
		/* that it failed, no more: not the hash of what was read */
		snprintf(err, size, "checksum mismatch: not the SHA256 given");
		return -EINVAL;
	}
	return image_format(&b, ks, err, size);
}

/* End an import: NORMAL with what came, or IMPORTFAILED with why. */
static void finish(struct job *j, const char *hex,
		   const struct image_kind_size *ks, const char *err)
{
	int64_t now = time(NULL);

	if (run_sql(j->db, "BEGIN IMMEDIATE", ""))
		return;
	if (err)
		run_sql(j->db, "UPDATE images SET state = 'IMPORTFAILED', "
			"progress = NULL, error = ?1, mtime = ?2 "
			"WHERE row = ?3 AND state = 'IMPORTING'", "sii", err,
			now, j->row);
	else
		run_sql(j->db, "UPDATE images SET state = 'NORMAL', "
			"progress = NULL, error = NULL, format = ?1, "
			"sha256 = ?2, size_gb = ?3, mtime = ?4 WHERE row = ?5 "
			"AND state = 'IMPORTING'", "ssiii", ks->format, hex,
			(int64_t)size_in_gb(ks->virtual_size), now, j->row);
	run_sql(j->db, "DELETE FROM imports WHERE image = ?1", "i", j->row);
	log_image(j->db, j->row);
	if (run_sql(j->db, "COMMIT", ""))
		run_sql(j->db, "ROLLBACK", "");
}

/* An http(s) download, retried: 0, or -EIO with err set. */
static int fetch_url(struct job *j, char *err, size_t size)
{
	CURLcode rc = CURLE_OK;
	long http = 0;

	for (int attempt = 1; attempt <= IMPORT_ATTEMPTS; attempt++) {
		CURL *curl = new_transfer(j);

		if (!curl) {
			snprintf(err, size, "out of memory");
			return -EIO;
		}
		reset(j);
		rc = curl_easy_perform(curl);
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &http);
		if (rc != CURLE_OK && !(rc == CURLE_ABORTED_BY_CALLBACK &&
					stopping(j->imp)))
			describe(j, curl, rc, http, err, size);
		curl_easy_cleanup(curl);
		if (rc == CURLE_OK || stopping(j->imp) ||
		    !transient(rc, http) || attempt == IMPORT_ATTEMPTS)
			break;
		/* back off: 0.5 s, 1 s, ... */
		if (nap(j->imp, 500L << (attempt - 1)))
			break;
	}
	return rc == CURLE_OK ? 0 : -EIO;
}

/*
 * Open rel below the directory dir, following no symbolic link on the
 * way (O_PATH | O_NOFOLLOW, one part at a time), and only when it is a
 * regular file: a device, a FIFO or a socket is never opened (the O_PATH
 * descriptor is turned into a readable one through /proc/self/fd). Its
 * descriptor, or -1 with err set.
 */
static int open_beneath(const char *dir, const char *rel, char *err,
			size_t size)
{
	char part[NAME_MAX + 1], self[32];
	int fd, dfd = open(dir[0] ? dir : "/", O_PATH | O_DIRECTORY |
			   O_CLOEXEC);
	struct stat st;

	while (dfd >= 0) {
		size_t n = strcspn(rel, "/");
		int last = !rel[n];

		if (n >= sizeof(part)) {
			close(dfd);
			dfd = -1;
			errno = ENAMETOOLONG;
			break;
		}
		memcpy(part, rel, n);
		part[n] = 0;
		/* a symbolic link on the way: ENOTDIR; at the end: S_ISLNK */
		fd = openat(dfd, part, O_PATH | O_NOFOLLOW | O_CLOEXEC |
			    (last ? 0 : O_DIRECTORY));
		close(dfd);
		dfd = fd;
		if (last)
			break;
		rel += n + 1;
	}
	if (dfd >= 0 && fstat(dfd, &st)) {
		fd = errno;
		close(dfd);
		dfd = -1;
		errno = fd;
	}
	if (dfd >= 0 && !S_ISREG(st.st_mode)) {
		snprintf(err, size, "not a regular file%s",
			 S_ISLNK(st.st_mode) ? ": a symbolic link" : "");
		close(dfd);
		return -1;
	}
	if (dfd >= 0) {
		snprintf(self, sizeof(self), "/proc/self/fd/%d", dfd);
		fd = open(self, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		close(dfd);
		dfd = fd;
	}
	if (dfd < 0)
		snprintf(err, size, "cannot read the file: %s",
			 strerror(errno));
	return dfd;
}

/*
 * A file:// import: only a regular file under -o import_dirs, read up to
 * the length it had when opened (a file that grows is no endless one).
 * 0, or -EIO with err set.
 */
static int fetch_file(struct job *j, char *err, size_t size)
{
	char dir[PATH_MAX], rel[PATH_MAX];
	unsigned char *buf = NULL;
	off_t length, done = 0;
	struct stat st;
	int fd;

	reset(j);
	if (file_url_path(j->imp->dirs, j->url, dir, sizeof(dir), rel,
			  sizeof(rel))) {
		snprintf(err, size, "file:// not allowed: the file is in no "
			 "directory of -o import_dirs of this mount");
		return -EIO;
	}
	fd = open_beneath(dir, rel, err, size);
	if (fd < 0)
		return -EIO;
	if (fstat(fd, &st)) {
		snprintf(err, size, "cannot read the file: %s",
			 strerror(errno));
		goto out;
	}
	length = st.st_size;
	if (j->max_bytes > 0 && length > j->max_bytes) {
		j->too_large = 1;
		snprintf(err, size, "too large: more than %lld bytes",
			 (long long)j->max_bytes);
		goto out;
	}
	buf = malloc(READ_BYTES);
	if (!buf) {
		snprintf(err, size, "out of memory");
		goto out;
	}
	while (done < length && !stopping(j->imp)) {
		size_t want = length - done < READ_BYTES ? length - done :
			      READ_BYTES;
		ssize_t n = read(fd, buf, want);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, size, "cannot read the file: %s",
				 strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		on_data((char *)buf, 1, n, j);
		done += n;
		progress(j, now_ms(), done, length);
	}
	if (done < length && !stopping(j->imp))
		snprintf(err, size, "truncated: got %lld of %lld bytes",
			 (long long)done, (long long)length);
out:
	free(buf);
	close(fd);
	return err[0] ? -EIO : 0;
}

static void download(struct job *j)
{
	char err[512] = "", hex[2 * EVP_MAX_MD_SIZE + 1] = "";
	struct image_kind_size ks;
	int rc;

	if (!strncasecmp(j->url, "file://", 7))
		rc = fetch_file(j, err, sizeof(err));
	else
		rc = fetch_url(j, err, sizeof(err));
	if (stopping(j->imp)) {
		/* unmount: give the import back; the next mount restarts it */
		run_sql(j->db, "UPDATE imports SET pid = NULL WHERE image = ?1",
			"i", j->row);
		return;
	}
	if (!rc && inspect(j, hex, &ks, err, sizeof(err)) == 0)
		err[0] = 0;
	else if (!err[0])
		snprintf(err, sizeof(err), "download failed");
	log_info("import of image %lld: %s", (long long)j->row,
		 err[0] ? err : "done");
	finish(j, hex, &ks, err[0] ? err : NULL);
}

/* Whether a process lives (SQL function pid_alive: a dead claim is free). */
static void pid_alive(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	pid_t pid = (pid_t)sqlite3_value_int64(argv[0]);

	(void)argc;
	sqlite3_result_int(ctx, pid > 0 && (!kill(pid, 0) || errno == EPERM));
}

/*
 * The imports this daemon may take: its account's (?1), committed by its
 * Unix user (?2), that nobody works on (a claim older than ?3, or of a
 * daemon that is gone).
 */
#define MINE "account = ?1 AND uid = ?2 AND (pid IS NULL OR heartbeat < ?3 " \
	     "OR NOT pid_alive(pid))"

static void bind_mine(sqlite3_stmt *st, struct importer *imp, int64_t now)
{
	sqlite3_bind_text(st, 1, imp->account, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, geteuid());
	sqlite3_bind_int64(st, 3, now - STALE_SECONDS);
}

/* Take an import nobody works on. 0 with *row set, -ENOENT for none. */
static int claim(struct importer *imp, sqlite3 *db, struct job *j)
{
	sqlite3_stmt *st;
	int64_t now = time(NULL);
	int rc;

	/* a catalog deleted under the daemon: its imports are gone too */
	if (local_catalog_gone(imp->l, db))
		return -ENOENT;
	/* a read first: idle workers take no write lock */
	rc = sqlite3_prepare_v2(db, "SELECT 1 FROM imports WHERE " MINE, -1,
				&st, NULL);
	if (rc != SQLITE_OK)
		return -EIO;
	bind_mine(st, j->imp, now);
	rc = local_step_one(st);
	sqlite3_finalize(st);
	if (rc)
		return rc;
	rc = sqlite3_prepare_v2(db,
		"UPDATE imports SET pid = ?4, heartbeat = ?5 WHERE image = "
		"(SELECT image FROM imports WHERE " MINE " ORDER BY image "
		"LIMIT 1) RETURNING image, url, sha256, (SELECT value FROM "
		"settings WHERE key = 'max_import_bytes')", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return -EIO;
	bind_mine(st, j->imp, now);
	sqlite3_bind_int64(st, 4, getpid());
	sqlite3_bind_int64(st, 5, now);
	rc = local_step_one(st);
	if (!rc) {
		const unsigned char *sha = sqlite3_column_text(st, 2);

		j->row = sqlite3_column_int64(st, 0);
		j->url = strdup((const char *)sqlite3_column_text(st, 1));
		j->sha256 = sha ? strdup((const char *)sha) : NULL;
		j->max_bytes = sqlite3_column_int64(st, 3);
		if (!j->url)
			rc = -ENOMEM;
	}
	sqlite3_finalize(st);
	return rc;
}

static void *worker(void *arg)
{
	struct importer *imp = arg;
	struct job *j = calloc(1, sizeof(*j));
	sqlite3 *db = NULL;

	if (!j || local_connect(imp->path, &db))
		goto out;
	sqlite3_create_function(db, "pid_alive", 1, SQLITE_UTF8, NULL,
				pid_alive, NULL, NULL);
	j->imp = imp;
	j->db = db;
	j->md = EVP_MD_CTX_new();
	if (!j->md)
		goto out;
	while (!stopping(imp)) {
		if (claim(imp, db, j)) {
			if (nap(imp, IDLE_MS))
				break;
			continue;
		}
		download(j);
		free(j->url);
		free(j->sha256);
		j->url = j->sha256 = NULL;
	}
out:
	if (j)
		EVP_MD_CTX_free(j->md);
	free(j);
	local_disconnect(imp->l, db);
	return NULL;
}

int local_import_start(struct local *l, long timeout, const char *dirs)
{
	struct importer *imp = calloc(1, sizeof(*imp));

	if (!imp)
		return -ENOMEM;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	imp->l = l;
	imp->path = strdup(l->path);
	imp->account = strdup(l->account);
	imp->dirs = dirs ? strdup(dirs) : NULL;
	imp->timeout = timeout > 0 ? timeout : 30;
	pthread_mutex_init(&imp->lock, NULL);
	pthread_cond_init(&imp->cond, NULL);
	l->importer = imp;
	if (!imp->path || !imp->account || (dirs && !imp->dirs))
		return -ENOMEM;
	for (int i = 0; i < IMPORT_WORKERS; i++) {
		if (pthread_create(&imp->threads[i], NULL, worker, imp))
			break;
		imp->nthreads++;
	}
	return imp->nthreads ? 0 : -EAGAIN;
}

void local_import_kick(struct local *l)
{
	struct importer *imp = l->importer;

	if (!imp)
		return;
	pthread_mutex_lock(&imp->lock);
	pthread_cond_broadcast(&imp->cond);
	pthread_mutex_unlock(&imp->lock);
}

void local_import_stop(struct local *l)
{
	struct importer *imp = l->importer;

	if (!imp)
		return;
	pthread_mutex_lock(&imp->lock);
	imp->stop = 1;
	pthread_cond_broadcast(&imp->cond);
	pthread_mutex_unlock(&imp->lock);
	for (int i = 0; i < imp->nthreads; i++)
		pthread_join(imp->threads[i], NULL);
	pthread_cond_destroy(&imp->cond);
	pthread_mutex_destroy(&imp->lock);
	free(imp->path);
	free(imp->account);
	free(imp->dirs);
	free(imp);
	l->importer = NULL;
	curl_global_cleanup();
}
