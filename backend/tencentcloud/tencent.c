// SPDX-License-Identifier: GPL-2.0
/*
 * tencent.c - the tencentcloud backend: a pure client of Tencent Cloud CVM's
 * image API. It implements the service side of backend.h, one API action
 * (or a few) per verb, and is mounted as cache(tencentcloud): the cache
 * keeps the listings, the pending images and the peer folders. Every rule
 * is the cloud's, reported through its error codes (errors.c).
 *
 * What it keeps in memory is what the cloud said once and does not change
 * while mounted (the OS list of imports), a pool of curl handles, and the
 * copies it started: their source is not deleted while they run (the cloud
 * does not say that it protects it).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../backend.h"
#include "../source.h"
#include "client.h"
#include "../../mountopts/config.h"
#include "../../mountopts/log.h"

#define PAGE 100		/* DescribeImages' largest Limit */
#define POOL 16			/* curl handles kept */
#define SHARE_ACCOUNTS_MAX 500	/* the cloud's documented sharing limit */

/* The regions whose CVM image API this mount shows (TENCENT-API.md 5). */
static const struct region regions[] = {
	{ 1, "ap-guangzhou", "South China (Guangzhou)", 1, 1 },
	{ 2, "ap-shanghai", "East China (Shanghai)", 1, 1 },
	{ 3, "ap-nanjing", "East China (Nanjing)", 1, 1 },
	{ 4, "ap-beijing", "North China (Beijing)", 1, 1 },
	{ 5, "ap-chengdu", "Southwest China (Chengdu)", 1, 1 },
	{ 6, "ap-chongqing", "Southwest China (Chongqing)", 1, 1 },
	{ 7, "ap-hongkong", "Hong Kong, Macau and Taiwan (China) "
	  "(Hong Kong)", 0, 1 },
	{ 8, "ap-singapore", "Southeast Asia (Singapore)", 0, 1 },
	{ 9, "ap-jakarta", "Southeast Asia (Jakarta)", 0, 1 },
	{ 10, "ap-seoul", "Northeast Asia (Seoul)", 0, 1 },
	{ 11, "ap-tokyo", "Northeast Asia (Tokyo)", 0, 1 },
	{ 12, "ap-bangkok", "Southeast Asia (Bangkok)", 0, 1 },
	{ 13, "na-siliconvalley", "US West (Silicon Valley)", 0, 1 },
	{ 14, "na-ashburn", "US East (Virginia)", 0, 1 },
	{ 15, "sa-saopaulo", "South America (Sao Paulo)", 0, 1 },
	{ 16, "eu-frankfurt", "Europe (Frankfurt)", 0, 1 },
};

#define NREGIONS ((int)(sizeof(regions) / sizeof(regions[0])))

/* The image-type filter of each folder kind. */
static const char *const image_types[KIND_COUNT] = {
	[KIND_PUBLIC] = "PUBLIC_IMAGE",
	[KIND_MARKET] = "MARKET_IMAGE",
	[KIND_CUSTOM] = "PRIVATE_IMAGE",
	[KIND_SHARED] = "SHARED_IMAGE",
};

/* A copy this mount started: its source stays while it runs. */
struct copy {
	struct copy *next;
	char source[16], source_region[32];
	char id[16], region[32];
};

struct tencent {
	struct backend b;
	char *account;
	struct tc_conf conf;
	pthread_mutex_t lock;
	struct tc_client *pool[POOL];
	int npool;
	json_t *import_os;	/* DescribeImportImageOs, once asked */
	int market_refused;	/* said once in the log */
	struct copy *copies;
};

/* The cloud's words on the last failed call of this thread. */
static __thread char detail[320];

static struct tencent *to_tc(struct backend *b)
{
	return (struct tencent *)b;
}

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* --- calls ---------------------------------------------------------------- */

static struct tc_client *take_client(struct tencent *t)
{
	struct tc_client *c = NULL;

	pthread_mutex_lock(&t->lock);
	if (t->npool)
		c = t->pool[--t->npool];
	pthread_mutex_unlock(&t->lock);
	if (c)
		return c;
	c = calloc(1, sizeof(*c));
	if (c && tc_client_init(c, &t->conf)) {
		free(c);
		c = NULL;
	}
	return c;
}

static void give_client(struct tencent *t, struct tc_client *c)
{
	pthread_mutex_lock(&t->lock);
	if (t->npool < POOL) {
		t->pool[t->npool++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&t->lock);
	if (c) {
		tc_client_free(c);
		free(c);
	}
}

/*
 * One call (req is consumed); on failure the cloud's words in detail, and
 * in the log unless quiet.
 */
static int call_as(struct tencent *t, const char *action, const char *region,
		   json_t *req, json_t **resp, int quiet)
{
	struct tc_client *c;
	struct tc_error err;
	json_t *r = NULL;
	int rc;

	if (!req)
		return -ENOMEM;
	c = take_client(t);
	if (!c) {
		json_decref(req);
		return -ENOMEM;
	}
	c->quiet = quiet;
	rc = tc_call(c, action, region, req, &r, &err);
	give_client(t, c);
	json_decref(req);
	detail[0] = 0;
	/* "DeleteImages: the cloud says CODE: message (RequestId ...)" */
	if (rc && (err.code[0] || err.request_id[0]))
		snprintf(detail, sizeof(detail), "%s: the cloud says "
			 "%.60s%s%.100s%s%.40s%s", action,
			 err.code[0] ? err.code : "no code",
			 err.message[0] ? ": " : "", err.message,
			 err.request_id[0] ? " (RequestId " : "",
			 err.request_id, err.request_id[0] ? ")" : "");
	if (resp)
		*resp = r;
	else
		json_decref(r);
	return rc;
}

static int call(struct tencent *t, const char *action, const char *region,
		json_t *req, json_t **resp)
{
	return call_as(t, action, region, req, resp, 0);
}

static const char *tc_detail(struct backend *b)
{
	(void)b;
	return detail[0] ? detail : NULL;
}

/* --- images: the cloud's JSON as a struct image --------------------------- */

static int64_t parse_time(const char *s)
{
	struct tm tm = { 0 };

	if (!strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) &&
	    !strptime(s, "%Y-%m-%d %H:%M:%S", &tm))
		return 0;
	return timegm(&tm);
}

static const char *arch_name(const char *a)
{
	if (!strcmp(a, "arm") || !strcmp(a, "arm_64") ||
	    !strcmp(a, "aarch64") || !strcmp(a, "arm64"))
		return "arm64";
	return a;
}

static int settling(const char *state)
{
	return !strcmp(state, "CREATING") || !strcmp(state, "SYNCING") ||
	       !strcmp(state, "IMPORTING");
}

static void text(char *dst, size_t size, const char *s)
{
	snprintf(dst, size, "%s", s);
}

static enum image_kind kind_of(const char *type)
{
	for (int k = 0; k < KIND_COUNT; k++)
		if (!strcmp(type, image_types[k]))
			return k;
	return KIND_PUBLIC;
}

/* Image j of region as the mount shows it; -ENOENT when it has no place. */
static int to_image(struct tencent *t, json_t *j, const char *region,
		    struct image *img)
{
	const char *state = jstr(j, "ImageState");
	const char *creator = jstr(j, "ImageCreator");

	memset(img, 0, sizeof(*img));
	img->kind = kind_of(jstr(j, "ImageType"));
	text(img->id, sizeof(img->id), jstr(j, "ImageId"));
	text(img->name, sizeof(img->name), jstr(j, "ImageName"));
	text(img->region, sizeof(img->region), region);
	switch (img->kind) {
	case KIND_CUSTOM:
		text(img->owner, sizeof(img->owner), t->account);
		break;
	case KIND_SHARED:
		if (!creator[0] || !strcmp(creator, t->account))
			return -ENOENT;	/* no account to show it under */
		text(img->owner, sizeof(img->owner), creator);
		break;
	case KIND_MARKET:
		text(img->owner, sizeof(img->owner), creator[0] ? creator :
		     "market");
		text(img->provider, sizeof(img->provider), img->owner);
		break;
	default:
		text(img->owner, sizeof(img->owner), "tencentcloud");
	}
	if (!img->id[0])
		return -ENOENT;
	text(img->os_name, sizeof(img->os_name), jstr(j, "OsName"));
	text(img->platform, sizeof(img->platform), jstr(j, "Platform"));
	if (img->platform[0] || img->os_name[0])
		text(img->os_type, sizeof(img->os_type),
		     strcasestr(img->platform, "windows") ||
		     strcasestr(img->os_name, "windows") ? "windows" : "linux");
	text(img->arch, sizeof(img->arch),
	     arch_name(jstr(j, "Architecture")));
	if (img->arch[0])
		img->bits = strcmp(img->arch, "i386") ? 64 : 32;
	img->size_gb = (int)json_integer_value(json_object_get(j,
							       "ImageSize"));
	text(img->state, sizeof(img->state), state[0] ? state : "NORMAL");
	img->progress = settling(img->state) ?
			json_integer_value(json_object_get(j, "SyncPercent")) :
			-1;
	img->created = parse_time(jstr(j, "CreatedTime"));
	img->mtime = img->created;
	text(img->description, sizeof(img->description),
	     jstr(j, "ImageDescription"));
	if (strstr(img->state, "FAILED"))
		snprintf(img->error, sizeof(img->error), "the cloud reports %s",
			 img->state);
	return 0;
}

/* Hand each image of an ImageSet to cb; 1 when cb asked to stop. */
static int each_image(struct tencent *t, json_t *set, const char *region,
		      enum image_kind kind, image_cb cb, void *ctx)
{
	struct image img;
	json_t *j;
	size_t i;

	json_array_foreach(set, i, j) {
		if (to_image(t, j, region, &img))
			continue;
		if (kind != KIND_COUNT && img.kind != kind)
			continue;
		if (cb(ctx, &img))
			return 1;
	}
	return 0;
}

static json_t *filter(const char *name, const char *value)
{
	return json_pack("{s:s, s:[s]}", "Name", name, "Values", value);
}

/* The market filter is refused: market/ is empty, said once. */
static int market_refused(struct tencent *t, int rc)
{
	int first;

	if (rc != -EINVAL)
		return rc;
	pthread_mutex_lock(&t->lock);
	first = !t->market_refused;
	t->market_refused = 1;
	pthread_mutex_unlock(&t->lock);
	if (first)
		log_warn("the cloud refuses the MARKET_IMAGE filter (%s): "
			 "market/ stays empty",
			 detail[0] ? detail : "InvalidParameterValue");
	return 0;
}

static int tc_fetch(struct backend *b, const struct folder *f, image_cb cb,
		    void *ctx)
{
	struct tencent *t = to_tc(b);
	int64_t total = 0;
	int rc = 0;

	for (int64_t off = 0; !rc; off += PAGE) {
		json_t *resp, *set;
		int stop;

		rc = call_as(t, "DescribeImages", f->region,
			     json_pack("{s:[o], s:I, s:i}", "Filters",
				       filter("image-type",
					      image_types[f->kind]),
				       "Offset", (json_int_t)off, "Limit",
				       PAGE), &resp, f->kind == KIND_MARKET);
		if (rc && f->kind == KIND_MARKET)
			return market_refused(t, rc);
		if (rc)
			break;
		set = json_object_get(resp, "ImageSet");
		total = json_integer_value(json_object_get(resp,
							   "TotalCount"));
		stop = each_image(t, set, f->region, f->kind, cb, ctx) ||
		       json_array_size(set) < PAGE || off + PAGE >= total;
		json_decref(resp);
		if (stop)
			break;
	}
	return rc;
}

static int tc_fetch_ids(struct backend *b, const char *region,
			const char *const *ids, int n, image_cb cb, void *ctx)
{
	struct tencent *t = to_tc(b);
	int rc = 0, stop = 0;

	/* ImageIds, a page of them at a time, each answered within Limit */
	for (int first = 0; first < n && !rc && !stop; first += PAGE) {
		json_t *list = json_array(), *resp;

		for (int i = first; i < n && i < first + PAGE; i++)
			json_array_append_new(list, json_string(ids[i]));
		rc = call(t, "DescribeImages", region,
			  json_pack("{s:o, s:i}", "ImageIds", list, "Limit",
				    PAGE), &resp);
		if (!rc)
			stop = each_image(t, json_object_get(resp, "ImageSet"),
					  region, KIND_COUNT, cb, ctx);
		json_decref(resp);
	}
	return rc;
}

static int tc_fetch_shares(struct backend *b, const char *region,
			   const char *id, peer_cb cb, void *ctx)
{
	struct tencent *t = to_tc(b);
	json_t *resp, *e;
	size_t i;
	int rc = call(t, "DescribeImageSharePermission", region,
		      json_pack("{s:s}", "ImageId", id), &resp);

	if (rc)
		return rc;
	json_array_foreach(json_object_get(resp, "SharePermissionSet"), i, e) {
		struct peer p = { .images = 0 };

		text(p.uin, sizeof(p.uin), jstr(e, "AccountId"));
		p.key = strtoll(p.uin, NULL, 10);
		if (p.uin[0] && cb(ctx, &p))
			break;
	}
	json_decref(resp);
	return 0;
}

static int tc_quota(struct backend *b, const char *region, struct usage *u)
{
	struct tencent *t = to_tc(b);
	json_t *resp;
	int rc = call(t, "DescribeImageQuota", region, json_object(), &resp);

	if (rc)
		return rc;
	memset(u, 0, sizeof(*u));
	u->images = -1;		/* the cache counts them */
	u->images_max = (int)json_integer_value(json_object_get(
						resp, "ImageNumQuota"));
	u->ops_max = -1;	/* the cloud documents no daily limit */
	u->shares_max = SHARE_ACCOUNTS_MAX;
	u->copy = 1;		/* the cloud says when it cannot */
	json_decref(resp);
	return 0;
}

static int tc_regions(struct backend *b, struct region *out, int max, int *n)
{
	(void)b;
	*n = NREGIONS < max ? NREGIONS : max;
	memcpy(out, regions, *n * sizeof(*out));
	return 0;
}

/* --- making images -------------------------------------------------------- */

static int first_image(void *ctx, const struct image *img)
{
	*(struct image *)ctx = *img;
	return 1;
}

/* Image id of region as the cloud has it now; -ENOENT when it has not. */
static int describe_one(struct tencent *t, const char *region, const char *id,
			struct image *out)
{
	const char *ids[] = { id };
	int rc;

	out->id[0] = 0;
	rc = tc_fetch_ids(&t->b, region, ids, 1, first_image, out);
	return rc ? rc : (out->id[0] ? 0 : -ENOENT);
}

/*
 * The new image id of region that action made: as the cloud describes it,
 * else (not listed yet) in state, with its source.
 */
/* The image action made: its id (else -EIO), as far as the cloud says. */
static int made(struct tencent *t, const char *action, const char *region,
		const char *id, const char *state, const char *source,
		struct image *out)
{
	if (!id || strncmp(id, "img-", 4)) {
		log_error("%s in %s: no new image id in the answer", action,
			  region);
		return -EIO;
	}
	if (describe_one(t, region, id, out)) {
		memset(out, 0, sizeof(*out));
		out->kind = KIND_CUSTOM;
		text(out->id, sizeof(out->id), id);
		text(out->region, sizeof(out->region), region);
		text(out->owner, sizeof(out->owner), t->account);
		text(out->state, sizeof(out->state), state);
		out->progress = 0;
		out->created = out->mtime = time(NULL);
	}
	text(out->source, sizeof(out->source), source);
	return 0;
}

/* Where image id is: in region when given, else asked region by region. */
static int find_source(struct tencent *t, const char *id, const char *hint,
		       struct image *src)
{
	int rc = hint ? describe_one(t, hint, id, src) : -ENOENT;

	for (int i = 0; i < NREGIONS && rc == -ENOENT; i++)
		if (!hint || strcmp(hint, regions[i].name))
			rc = describe_one(t, regions[i].name, id, src);
	return rc == -ENOENT ? -EINVAL : rc;	/* a missing source */
}

static void remember_copy(struct tencent *t, const struct image *src,
			  const char *id, const char *region)
{
	struct copy *c = calloc(1, sizeof(*c));

	if (!c)
		return;
	text(c->source, sizeof(c->source), src->id);
	text(c->source_region, sizeof(c->source_region), src->region);
	text(c->id, sizeof(c->id), id);
	text(c->region, sizeof(c->region), region);
	pthread_mutex_lock(&t->lock);
	c->next = t->copies;
	t->copies = c;
	pthread_mutex_unlock(&t->lock);
}

static int make_copy(struct tencent *t, const char *region, const char *name,
		     const struct spec *spec, struct image *out)
{
	struct image src;
	char source[100];
	json_t *resp = NULL, *e;
	const char *id = NULL;
	size_t i;
	int rc = find_source(t, spec->copy_of, spec->copy_region, &src);

	if (rc)
		return rc;
	rc = call(t, "SyncImages", src.region,
		  json_pack("{s:[s], s:[s], s:s, s:b, s:b}", "ImageIds",
			    src.id, "DestinationRegions", region, "ImageName",
			    name, "ImageSetRequired", 1, "DryRun",
			    spec->dry_run), &resp);
	if (rc || spec->dry_run) {
		json_decref(resp);
		return rc;
	}
	json_array_foreach(json_object_get(resp, "ImageSet"), i, e)
		if (!strcmp(jstr(e, "Region"), region) &&
		    !strncmp(jstr(e, "ImageId"), "img-", 4))
			id = jstr(e, "ImageId");
	if (!id) {
		json_decref(resp);
		return made(t, "SyncImages", region, id, NULL, NULL, out);
	}
	source_format(source, sizeof(source), SOURCE_COPY, src.id, src.region);
	remember_copy(t, &src, id, region);
	/* the copy takes the source's description: a new one is set after */
	if (spec->description && strcmp(spec->description, src.description) &&
	    call(t, "ModifyImageAttribute", region,
		 json_pack("{s:s, s:s}", "ImageId", id, "ImageDescription",
			   spec->description), NULL))
		log_warn("copy %s: the description was not set", id);
	rc = made(t, "SyncImages", region, id, "SYNCING", source, out);
	json_decref(resp);
	return rc;
}

/*
 * A COS object URL, as ImportImage takes: http(s)://<bucket>-<appid>.cos.
 * <region>.myqcloud.com/<key> (or .tencentcos.cn), no user:password@.
 */
static int cos_url(const char *url)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *path = NULL, *user = NULL;
	const char *cos, *dash;
	int ok = 0;

	if (!u || curl_url_set(u, CURLUPART_URL, url, 0) ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) ||
	    curl_url_get(u, CURLUPART_PATH, &path, 0))
		goto out;
	curl_url_get(u, CURLUPART_USER, &user, 0);
	cos = strstr(host, ".cos.");
	dash = cos ? memrchr(host, '-', cos - host) : NULL;
	ok = (!strcmp(scheme, "https") || !strcmp(scheme, "http")) && !user &&
	     cos && dash && dash > host && dash + 1 < cos &&
	     strspn(dash + 1, "0123456789") == (size_t)(cos - dash - 1) &&
	     strchr(cos + 5, '.') > cos + 5 &&
	     (!strcmp(strchr(cos + 5, '.'), ".myqcloud.com") ||
	      !strcmp(strchr(cos + 5, '.'), ".tencentcos.cn")) &&
	     strlen(path) > 1 && path[strlen(path) - 1] != '/';
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(path);
	curl_free(user);
	curl_url_cleanup(u);
	return ok ? 0 : -EINVAL;
}

/* The OS list of imports, asked once. */
static int import_os(struct tencent *t, json_t **out)
{
	json_t *resp = NULL;
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	if (t->import_os)
		*out = json_incref(t->import_os);
	pthread_mutex_unlock(&t->lock);
	if (*out)
		return 0;
	rc = call(t, "DescribeImportImageOs", regions[0].name,
		  json_object(), &resp);
	if (rc)
		return rc;
	pthread_mutex_lock(&t->lock);
	if (!t->import_os)
		t->import_os = json_incref(resp);
	pthread_mutex_unlock(&t->lock);
	*out = resp;
	return 0;
}

static int listed(json_t *array, const char *s)
{
	json_t *v;
	size_t i;

	json_array_foreach(array, i, v)
		if (json_is_string(v) && !strcasecmp(json_string_value(v), s))
			return 1;
	return 0;
}

/*
 * OsType, OsVersion and Architecture of an import, from the list the cloud
 * gives: PLATFORM (else the start of OS_NAME) is an OsName of the list, of
 * the OS_TYPE's family; OS_NAME's version (what follows the OsName) begins
 * with one of its OsVersions (the longest); ARCH is one of its
 * architectures (arm64 is arm_64 there). -EINVAL when it is not listed.
 */
static int import_os_of(json_t *os, const struct spec *spec,
			const char **type, const char **version,
			const char **arch)
{
	const char *family = !strcmp(spec->os_type, "windows") ? "Windows" :
			     "Linux";
	json_t *e, *entry = NULL, *v;
	const char *name = spec->os_name ? spec->os_name : "";
	size_t i, best = 0;

	*version = NULL;
	*arch = !strcmp(spec->arch, "arm64") ? "arm_64" : spec->arch;
	json_array_foreach(json_object_get(os, "ImportImageOsVersionSet"),
			   i, e) {
		const char *n = jstr(e, "OsName");
		size_t len = strlen(n);

		if (spec->platform && spec->platform[0] ?
		    !strcasecmp(spec->platform, n) :
		    len && !strncasecmp(name, n, len) &&
		    (!name[len] || name[len] == ' '))
			entry = e;
	}
	if (!entry || !listed(json_object_get(json_object_get(os,
			"ImportImageOsListSupported"), family),
			jstr(entry, "OsName")))
		return -EINVAL;
	*type = jstr(entry, "OsName");
	if (!strncasecmp(name, *type, strlen(*type)))
		name += strlen(*type);
	name += strspn(name, " ");
	json_array_foreach(json_object_get(entry, "OsVersions"), i, v) {
		const char *s = json_string_value(v);
		size_t len = s ? strlen(s) : 0;

		if (len > best && !strncasecmp(name, s, len) &&
		    (!name[len] || !strchr("0123456789", name[len]))) {
			best = len;
			*version = s;
		}
	}
	if (!name[0] && json_array_size(json_object_get(entry,
							"OsVersions")) == 1)
		*version = json_string_value(json_array_get(json_object_get(
					     entry, "OsVersions"), 0));
	if (!*version || !listed(json_object_get(entry, "Architecture"), *arch))
		return -EINVAL;
	return 0;
}

static int iso(const char *url)
{
	size_t n = strcspn(url, "?#");

	return n >= 4 && !strncasecmp(url + n - 4, ".iso", 4);
}

static int make_import(struct tencent *t, const char *region,
		       const char *name, const struct spec *spec,
		       struct image *out)
{
	const char *type, *version, *arch;
	char source[1100], url[1024];
	json_t *os = NULL, *req, *resp = NULL;
	int rc;

	if (cos_url(spec->import_url))
		return -EINVAL;
	/* a text written line by line: its OS keys may come later */
	if (!spec->os_type || !spec->arch ||
	    (!spec->os_name && !spec->platform))
		return spec->dry_run ? 0 : -EINVAL;
	rc = import_os(t, &os);
	if (!rc)
		rc = import_os_of(os, spec, &type, &version, &arch);
	if (rc) {
		json_decref(os);
		return rc;
	}
	req = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "ImageName", name,
			"ImageUrl", spec->import_url, "OsType", type,
			"OsVersion", version, "Architecture", arch, "DryRun",
			spec->dry_run);
	if (req && spec->description)
		json_object_set_new(req, "ImageDescription",
				    json_string(spec->description));
	if (req && iso(spec->import_url))
		json_object_set_new(req, "Force", json_true());
	json_decref(os);
	rc = call(t, "ImportImage", region, req, &resp);
	if (!rc && !spec->dry_run) {
		/* SOURCE: without a query, which may carry a signature */
		snprintf(url, sizeof(url), "%.*s",
			 (int)strcspn(spec->import_url, "?#"),
			 spec->import_url);
		source_format(source, sizeof(source), SOURCE_IMPORT, url,
			      NULL);
		rc = made(t, "ImportImage", region, jstr(resp, "ImageId"),
			  "IMPORTING", source, out);
	}
	json_decref(resp);
	return rc;
}

static int make_instance(struct tencent *t, const char *region,
			 const char *name, const struct spec *spec,
			 struct image *out)
{
	char source[64];
	json_t *req, *resp = NULL;
	int rc;

	req = json_pack("{s:s, s:s, s:b}", "ImageName", name, "InstanceId",
			spec->instance, "DryRun", spec->dry_run);
	if (req && spec->description)
		json_object_set_new(req, "ImageDescription",
				    json_string(spec->description));
	rc = call(t, "CreateImage", region, req, &resp);
	if (!rc && !spec->dry_run) {
		source_format(source, sizeof(source), SOURCE_INSTANCE,
			      spec->instance, NULL);
		rc = made(t, "CreateImage", region, jstr(resp, "ImageId"),
			  "CREATING", source, out);
	}
	json_decref(resp);
	return rc;
}

static int tc_make(struct backend *b, const char *region, const char *name,
		   const struct spec *spec, struct image *out)
{
	struct tencent *t = to_tc(b);

	detail[0] = 0;
	if (spec->copy_of)
		return make_copy(t, region, name, spec, out);
	if (spec->import_url)
		return make_import(t, region, name, spec, out);
	if (spec->instance)
		return make_instance(t, region, name, spec, out);
	/* the cloud needs an instance or a URL */
	snprintf(detail, sizeof(detail), "the cloud makes an image from an "
		 "instance (INSTANCE=), a file (IMPORT_URL=) or a copy (ID=)");
	return -EINVAL;
}

/* --- changes -------------------------------------------------------------- */

static int tc_modify(struct backend *b, const char *region, const char *id,
		     const char *name, const char *description)
{
	json_t *req = json_pack("{s:s}", "ImageId", id);

	if (req && name)
		json_object_set_new(req, "ImageName", json_string(name));
	if (req && description)
		json_object_set_new(req, "ImageDescription",
				    json_string(description));
	return call(to_tc(b), "ModifyImageAttribute", region, req, NULL);
}

/* Forget copy c (under the lock). */
static void forget_copy(struct tencent *t, struct copy *c)
{
	for (struct copy **p = &t->copies; *p; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			free(c);
			return;
		}
	}
}

/*
 * -EBUSY while a copy this mount made of image id still runs: a moved
 * image (cp -r, then rm -r) is never deleted before its copy is whole.
 * Copies that are done, failed or gone are forgotten.
 */
static int copies_running(struct tencent *t, const char *id)
{
	struct copy *c, *next;
	struct image img;
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	for (c = t->copies; c && !rc; c = next) {
		struct copy mine = *c;

		next = c->next;
		if (strcmp(c->source, id))
			continue;
		/* only this thread deletes id now: c stays while unlocked */
		pthread_mutex_unlock(&t->lock);
		rc = describe_one(t, mine.region, mine.id, &img);
		if (!rc && !strcmp(img.state, "SYNCING"))
			rc = -EBUSY;
		else if (rc == -ENOENT)
			rc = 0;
		pthread_mutex_lock(&t->lock);
		next = c->next;
		if (!rc)
			forget_copy(t, c);
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

static int tc_delete(struct backend *b, const char *region, const char *id,
		     int dry_run)
{
	struct tencent *t = to_tc(b);
	int rc = copies_running(t, id);

	if (rc)
		return rc;
	return call(t, "DeleteImages", region,
		    json_pack("{s:[s], s:b}", "ImageIds", id, "DryRun",
			      dry_run), NULL);
}

static int tc_permit(struct backend *b, const char *region, const char *id,
		     const char *peer, int share)
{
	return call(to_tc(b), "ModifyImageSharePermission", region,
		    json_pack("{s:s, s:[s], s:s}", "ImageId", id, "AccountIds",
			      peer, "Permission", share ? "SHARE" : "CANCEL"),
		    NULL);
}

/* --- open and close ------------------------------------------------------- */

static void tc_abort(struct backend *b)
{
	tc_conf_stop(&to_tc(b)->conf);
}

static void tc_close(struct backend *b)
{
	struct tencent *t = to_tc(b);

	while (t->npool) {
		tc_client_free(t->pool[--t->npool]);
		free(t->pool[t->npool]);
	}
	while (t->copies) {
		struct copy *c = t->copies;

		t->copies = c->next;
		free(c);
	}
	json_decref(t->import_os);
	tc_conf_free(&t->conf);
	pthread_mutex_destroy(&t->lock);
	free(t->account);
	free(t);
}

static const struct backend_ops tencent_ops = {
	.name = "tencentcloud",
	.close = tc_close,
	.regions = tc_regions,
	.detail = tc_detail,
	.fetch = tc_fetch,
	.fetch_ids = tc_fetch_ids,
	.fetch_shares = tc_fetch_shares,
	.quota = tc_quota,
	.make = tc_make,
	.modify = tc_modify,
	.delete = tc_delete,
	.permit = tc_permit,
	.abort = tc_abort,
};

int tencent_open(const struct config *cfg, struct backend **out)
{
	struct tencent *t = calloc(1, sizeof(*t));
	int rc;

	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	t->b.ops = &tencent_ops;
	t->account = strdup(cfg->account);
	t->b.account = t->account;
	t->conf.timeout_ms = (long)(cfg->api_timeout * 1000);
	t->conf.debug = cfg->debug;
	rc = t->account ? tc_conf_init(&t->conf, cfg->endpoint,
				       cfg->language) : -ENOMEM;
	if (!rc)
		rc = credentials_load(cfg, &t->conf.creds);
	if (rc) {
		tc_close(&t->b);
		return rc;
	}
	*out = &t->b;
	return 0;
}
