// SPDX-License-Identifier: GPL-2.0
/*
 * backend.c - choose the implementation the configuration names.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "../mountopts/config.h"
#include "../mountopts/log.h"

int backend_open(const struct config *cfg, struct backend **out)
{
	if (!strcmp(cfg->backend, "local"))
		return local_open(cfg, out);
	if (!strcmp(cfg->backend, "tencentcloud"))
		return tencent_open(cfg, out);
	log_error("unknown backend: %s (local or tencentcloud)", cfg->backend);
	return -EINVAL;
}
