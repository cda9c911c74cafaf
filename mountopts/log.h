/* SPDX-License-Identifier: GPL-2.0 */
/*
 * log.h - where the daemon's messages go: stderr while it starts and in
 * the foreground (-f), syslog(3) once it runs in the background, with the
 * identity "imagefs" (journalctl -t imagefs shows them).
 *
 * One call is one line: a message holds no newline and no full stop, and
 * starts with what it is about ("ap-guangzhou/custom/web: delete: ...").
 * On stderr each line is prefixed "imagefs: ".
 */
#ifndef IMAGEFS_LOG_H
#define IMAGEFS_LOG_H

#include <stdarg.h>
#include <syslog.h>

/* From now on, send messages to syslog (after daemonizing). */
void log_to_syslog(void);

/* Whether messages go to syslog. */
int log_in_syslog(void);

/* A message at a syslog(3) priority; a trailing newline is dropped. */
void log_vmsg(int priority, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
void log_msg(int priority, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The priorities imagefs uses. */
#define log_error(...)	log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)	log_msg(LOG_DEBUG, __VA_ARGS__)

#endif /* IMAGEFS_LOG_H */
