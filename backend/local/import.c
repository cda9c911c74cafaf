// SPDX-License-Identifier: GPL-2.0
/*
 * import.c - image import for the local backend: background threads
 * that download an image file with libcurl (http, https, file), hash it,
 * recognise its format and size, and turn an IMPORTING image into a NORMAL
 * one, or an IMPORTFAILED one that says why.
 *
 * Imports live in the catalog (table imports), so any daemon on the same
 * file may take one up: a worker claims an import with its pid and keeps a
 * heartbeat; an import whose daemon died (or went silent) is claimed again
 * and starts over. Only the first and last bytes of a file are kept.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

struct importer {
	pthread_t threads[IMPORT_WORKERS];
	int nthreads;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop;
	char *path;
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

	if (!auth) {
		snprintf(out, size, "%s", url);
		return 0;
	}
	auth += 3;
	end = auth + strcspn(auth, "/?#");
	at = memchr(auth, '@', end - auth);
	if (!at) {
		snprintf(out, size, "%s", url);
		return 0;
	}
	snprintf(out, size, "%.*s%s", (int)(auth - url), url, at + 1);
	return 1;
}

int url_check(const char *url)
{
	static const char *const schemes[] = { "http://", "https://",
					       "file://" };

	if (strpbrk(url, " \t\r\n"))
		return -EINVAL;
	for (size_t i = 0; i < sizeof(schemes) / sizeof(*schemes); i++)
		if (!strncasecmp(url, schemes[i], strlen(schemes[i])) &&
		    url[strlen(schemes[i])])
			return 0;
	return -EINVAL;
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
		snprintf(err, size, "checksum mismatch: the file's SHA256 is "
			 "%s", hex);
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
	run_sql(j->db, "DELETE FROM changes WHERE seq < (SELECT max(seq) "
		"FROM changes) - 10000", "");
	if (run_sql(j->db, "COMMIT", ""))
		run_sql(j->db, "ROLLBACK", "");
}

static void download(struct job *j)
{
	char err[512] = "", hex[2 * EVP_MAX_MD_SIZE + 1] = "";
	struct image_kind_size ks;
	CURLcode rc = CURLE_OK;
	long http = 0;

	for (int attempt = 1; attempt <= IMPORT_ATTEMPTS; attempt++) {
		CURL *curl = new_transfer(j);

		if (!curl) {
			snprintf(err, sizeof(err), "out of memory");
			break;
		}
		reset(j);
		rc = curl_easy_perform(curl);
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &http);
		if (rc != CURLE_OK && !(rc == CURLE_ABORTED_BY_CALLBACK &&
					stopping(j->imp)))
			describe(j, curl, rc, http, err, sizeof(err));
		curl_easy_cleanup(curl);
		if (rc == CURLE_OK || stopping(j->imp) ||
		    !transient(rc, http) || attempt == IMPORT_ATTEMPTS)
			break;
		/* back off: 0.5 s, 1 s, ... */
		if (nap(j->imp, 500L << (attempt - 1)))
			break;
	}
	if (stopping(j->imp)) {
		/* unmount: give the import back; the next mount restarts it */
		run_sql(j->db, "UPDATE imports SET pid = NULL WHERE image = ?1",
			"i", j->row);
		return;
	}
	if (rc == CURLE_OK && inspect(j, hex, &ks, err, sizeof(err)) == 0)
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

/* Take an import nobody works on. 0 with *row set, -ENOENT for none. */
static int claim(sqlite3 *db, struct job *j)
{
	sqlite3_stmt *st;
	int64_t now = time(NULL);
	int rc;

	/* a read first: idle workers take no write lock */
	rc = sqlite3_prepare_v2(db, "SELECT 1 FROM imports WHERE pid IS NULL "
				"OR heartbeat < ?1 OR NOT pid_alive(pid)", -1,
				&st, NULL);
	if (rc != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, now - STALE_SECONDS);
	rc = local_step_one(st);
	sqlite3_finalize(st);
	if (rc)
		return rc;
	rc = sqlite3_prepare_v2(db,
		"UPDATE imports SET pid = ?1, heartbeat = ?2 WHERE image = "
		"(SELECT image FROM imports WHERE pid IS NULL OR "
		"heartbeat < ?3 OR NOT pid_alive(pid) ORDER BY image LIMIT 1) "
		"RETURNING image, url, sha256, (SELECT value FROM settings "
		"WHERE key = 'max_import_bytes')", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, getpid());
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_int64(st, 3, now - STALE_SECONDS);
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
		if (claim(db, j)) {
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
	sqlite3_close(db);
	return NULL;
}

int local_import_start(struct local *l, long timeout)
{
	struct importer *imp = calloc(1, sizeof(*imp));

	if (!imp)
		return -ENOMEM;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	imp->path = strdup(l->path);
	imp->timeout = timeout > 0 ? timeout : 30;
	pthread_mutex_init(&imp->lock, NULL);
	pthread_cond_init(&imp->cond, NULL);
	l->importer = imp;
	if (!imp->path)
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
	free(imp);
	l->importer = NULL;
	curl_global_cleanup();
}
