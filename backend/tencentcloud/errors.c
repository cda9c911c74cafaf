// SPDX-License-Identifier: GPL-2.0
/*
 * errors.c - the one table from Tencent Cloud's error codes to errno.
 *
 * The codes are those that the CVM API documents for the image actions
 * (the SDKs' client.go lists them action by action, errors.go says what
 * each means), plus the common codes of every API 3.0 product. The rows
 * follow DESIGN.md section 4's table; a row with an action applies to that
 * action only and wins over a row without; a code ending in '*' is a
 * prefix, which loses to an exact code and to a longer prefix. Anything
 * else is EIO: the caller logs the code and the RequestId.
 */
#include <errno.h>
#include <string.h>

#include "client.h"

static const struct tc_code {
	const char *action;	/* NULL: any */
	const char *code;
	int err;
} tc_codes[] = {
	/* the quota of custom images */
	{ NULL, "ImageQuotaLimitExceeded", EDQUOT },
	/* the cloud's rate limit, once the retries are spent */
	{ NULL, "RequestLimitExceeded*", EAGAIN },
	/* a copy from or to a region that cannot take it, or an image the
	 * action does not support */
	{ NULL, "InvalidRegion.Unavailable", EOPNOTSUPP },
	{ NULL, "UnsupportedOperation.Region", EOPNOTSUPP },
	{ "SyncImages", "InvalidRegion.NotFound", EOPNOTSUPP },
	{ "SyncImages", "InvalidParameterValue.InvalidRegion", EOPNOTSUPP },
	{ NULL, "UnsupportedRegion", EOPNOTSUPP },
	{ NULL, "RegionAbilityLimit.UnsupportedToImportImage", EOPNOTSUPP },
	{ NULL, "UnsupportedOperation.EncryptedImagesNotSupported",
	  EOPNOTSUPP },
	{ NULL, "UnsupportedOperation.LocationImageNotSupported",
	  EOPNOTSUPP },
	{ NULL, "UnsupportedOperation.SyncEncryptImageNotSupport",
	  EOPNOTSUPP },
	{ NULL, "InvalidParameter.InstanceImageNotSupport", EOPNOTSUPP },
	{ NULL, "FailedOperation.BYOLImageShareFailed", EOPNOTSUPP },
	{ NULL, "UnsupportedOperation*", EOPNOTSUPP },
	/* not my own custom image */
	{ NULL, "UnauthorizedOperation.ImageNotBelongToAccount", EPERM },
	{ NULL, "InvalidParameterValue.InvalidImageId", EPERM },
	{ NULL, "InvalidParameterValue.InvalidImageIdIsShared", EPERM },
	{ NULL, "UnsupportedOperation.SharedImageModifyUnsupported", EPERM },
	/* a share beyond the cloud's limit of accounts */
	{ NULL, "OverQuota", EMLINK },
	/* already there */
	{ NULL, "FailedOperation.AccountAlreadyExists", EEXIST },
	{ NULL, "InvalidImageName.Duplicate", EEXIST },
	/* shared, busy with another task, or not NORMAL */
	{ NULL, "InvalidImageId.InShared", EBUSY },
	{ NULL, "InvalidImageId.IncorrectState", EBUSY },
	{ NULL, "InvalidParameterValue.InvalidImageState", EBUSY },
	{ NULL, "FailedOperation.InvalidImageState", EBUSY },
	{ NULL, "MutexOperation.TaskRunning", EBUSY },
	{ NULL, "OperationDenied.InstanceOperationInProgress", EBUSY },
	{ NULL, "UnsupportedOperation.InstanceState*", EBUSY },
	{ NULL, "ResourceUnavailable.SnapshotCreating", EBUSY },
	{ NULL, "ResourceInUse*", EBUSY },
	/* a name (or description) longer than the cloud takes */
	{ NULL, "InvalidParameterValue.TooLong", ENAMETOOLONG },
	{ NULL, "InvalidParameterValue.TooLarge", ENAMETOOLONG },
	{ NULL, "InvalidParameter.ValueTooLarge", ENAMETOOLONG },
	/* an image too large to copy */
	{ NULL, "InvalidImageId.TooLarge", EFBIG },
	/* a missing source (a copy), a missing image (anything else) */
	{ "SyncImages", "InvalidImageId.NotFound", EINVAL },
	{ NULL, "InvalidImageId.NotFound", ENOENT },
	/* sharing with my own account, or with no account */
	{ NULL, "InvalidAccountIs.YourSelf", EINVAL },
	{ NULL, "FailedOperation.AccountIsYourSelf", EINVAL },
	{ NULL, "FailedOperation.NotMasterAccount", EINVAL },
	{ NULL, "InvalidAccountId.NotFound", EINVAL },
	/* a text the cloud does not take: instance, URL, OS, values */
	{ NULL, "InvalidImageId*", EINVAL },
	{ NULL, "InvalidInstanceId*", EINVAL },
	{ NULL, "InvalidInstance.NotSupported", EINVAL },
	{ NULL, "InvalidImageOsType.Unsupported", EINVAL },
	{ NULL, "InvalidImageOsVersion.Unsupported", EINVAL },
	{ NULL, "InvalidParameter*", EINVAL },
	{ NULL, "InvalidParameterValue*", EINVAL },
	{ NULL, "InvalidFilter*", EINVAL },
	{ NULL, "MissingParameter*", EINVAL },
	{ NULL, "UnknownParameter", EINVAL },
	{ NULL, "InvalidRegion.NotFound", EINVAL },
	/* credentials refused, or not allowed to do this */
	{ NULL, "AuthFailure*", EACCES },
	{ NULL, "UnauthorizedOperation*", EACCES },
	{ NULL, "OperationDenied.InnerUserProhibitAction", EACCES },
	{ NULL, "InvalidAccount.InsufficientBalance", EACCES },
	{ NULL, "InvalidAccount.UnpaidOrder", EACCES },
	{ NULL, "AccountQualificationRestrictions", EACCES },
	{ NULL, "IpInBlacklist", EACCES },
	{ NULL, "IpNotInWhitelist", EACCES },
};

/* How well row t matches: 0 not at all; more is better. */
static size_t match(const struct tc_code *t, const char *action,
		    const char *code)
{
	size_t n = strlen(t->code), score;

	if (t->action && (!action || strcmp(t->action, action)))
		return 0;
	if (t->code[n - 1] == '*')
		score = strncmp(code, t->code, n - 1) ? 0 : n;
	else
		score = strcmp(code, t->code) ? 0 : 1000;
	return score && t->action ? score + 2000 : score;
}

int tc_errno(const char *action, const char *code)
{
	size_t best = 0;
	int err = EIO;

	if (!strcmp(code, "DryRunOperation"))
		return 0;	/* a DryRun call that would succeed */
	for (size_t i = 0; i < sizeof(tc_codes) / sizeof(tc_codes[0]); i++) {
		size_t score = match(&tc_codes[i], action, code);

		if (score > best) {
			best = score;
			err = tc_codes[i].err;
		}
	}
	return -err;
}
