// SPDX-License-Identifier: GPL-2.0
/*
 * log.c - the daemon's messages, to stderr or to syslog.
 */
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "log.h"

#define LOG_LINE_MAX 1024

static int to_syslog;

void log_to_syslog(void)
{
	openlog("imagefs", LOG_PID, LOG_DAEMON);
	__atomic_store_n(&to_syslog, 1, __ATOMIC_SEQ_CST);
}

int log_in_syslog(void)
{
	return __atomic_load_n(&to_syslog, __ATOMIC_SEQ_CST);
}

void log_vmsg(int priority, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	size_t len;

	vsnprintf(line, sizeof(line), fmt, ap);
	len = strlen(line);
	while (len && line[len - 1] == '\n')
		line[--len] = 0;
	if (log_in_syslog())
		syslog(priority, "%s", line);
	else
		fprintf(stderr, "imagefs: %s\n", line);
}

void log_msg(int priority, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(priority, fmt, ap);
	va_end(ap);
}
