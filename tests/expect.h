/* SPDX-License-Identifier: GPL-2.0 */
/*
 * expect.h - the checks of the unit tests, as squashfuse's tests: each
 * failed check prints file:line and the values, and is counted; the run
 * ends with expect_summary().
 *
 * Include it from one test program only: the counters live here.
 */
#ifndef IMAGEFS_EXPECT_H
#define IMAGEFS_EXPECT_H

#include <stdio.h>
#include <string.h>

static int expect_passed;
static int expect_failed;

static inline void expect_result(int ok)
{
	if (ok)
		expect_passed++;
	else
		expect_failed++;
}

#define EXPECT(cond)							\
	do {								\
		int expect_ok_ = !!(cond);				\
		if (!expect_ok_)					\
			fprintf(stderr, "%s:%d: expected %s\n",		\
				__FILE__, __LINE__, #cond);		\
		expect_result(expect_ok_);				\
	} while (0)

#define EXPECT_EQ_INT(a, b)						\
	do {								\
		long long expect_a_ = (a), expect_b_ = (b);		\
		int expect_ok_ = expect_a_ == expect_b_;		\
		if (!expect_ok_)					\
			fprintf(stderr, "%s:%d: %s == %s: %lld != %lld\n", \
				__FILE__, __LINE__, #a, #b,		\
				expect_a_, expect_b_);			\
		expect_result(expect_ok_);				\
	} while (0)

#define EXPECT_EQ_STR(a, b)						\
	do {								\
		const char *expect_a_ = (a), *expect_b_ = (b);		\
		int expect_ok_ = expect_a_ && expect_b_ ?		\
			!strcmp(expect_a_, expect_b_) :			\
			expect_a_ == expect_b_;				\
		if (!expect_ok_)					\
			fprintf(stderr,					\
				"%s:%d: %s == %s:\n  \"%s\"\n  != \"%s\"\n", \
				__FILE__, __LINE__, #a, #b,		\
				expect_a_ ? expect_a_ : "(null)",	\
				expect_b_ ? expect_b_ : "(null)");	\
		expect_result(expect_ok_);				\
	} while (0)

/* Print "N passed, M failed" and return the number of failed checks. */
static inline int expect_summary(void)
{
	printf("%d passed, %d failed\n", expect_passed, expect_failed);
	return expect_failed;
}

#endif /* IMAGEFS_EXPECT_H */
