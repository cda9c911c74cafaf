# imagefs - see README.md. `make run` mounts the catalog, `make test` tests.

PKGS     := fuse3 sqlite3 libcurl libcrypto jansson
CC       ?= cc
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 -Wall -Wextra -D_GNU_SOURCE -MMD -MP
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
LDLIBS   += $(PKG_LIBS) -lpthread

SRCS     := $(wildcard fs/*.c backend/*.c backend/*/*.c mountopts/*.c)
ASM      := backend/local/embed.S
OBJS     := $(SRCS:%.c=build/%.o) $(ASM:%.S=build/%.o)
ASAN_OBJS := $(SRCS:%.c=build/asan/%.o) $(ASM:%.S=build/asan/%.o)
UNIT_LIBS = $(shell pkg-config --libs libcrypto libcurl jansson 2>/dev/null)
UNIT_SRCS := tests/unit.c fs/fills.c fs/names.c fs/info.c fs/spec.c \
	     backend/kinds.c \
	     backend/local/imagefmt.c backend/tencentcloud/tc3.c \
	     backend/tencentcloud/client.c backend/tencentcloud/errors.c \
	     mountopts/credentials.c mountopts/log.c
# the contract suite at the backend interface: every backend, no fs/
CONTRACT_SRCS := tests/contract.c $(filter-out fs/%,$(SRCS)) $(ASM)
# fs/ over a real local catalog, without FUSE: everything but the handlers
FSUNIT_SRCS := tests/fsunit.c $(filter-out fs/main.c fs/ops.c,$(SRCS))
SANITIZE := -fsanitize=address,undefined -fno-omit-frame-pointer \
	    -fno-sanitize-recover=undefined

# libFuzzer targets (tests/fuzz/), built with clang and run by scripts/fuzz
FUZZ_CC      ?= clang-14
FUZZ_CFLAGS  := -g -O1 -std=gnu11 -Wall -Wextra -D_GNU_SOURCE \
		-fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined
FUZZ_TARGETS := info names imagefmt credentials
FUZZ_DIR     := build/fuzz
FUZZ_SECONDS ?= 60
FUZZ_SHORT   ?= 10

MNT      ?= $(CURDIR)/mnt
PYTEST   ?= /usr/bin/python3 -m pytest

# make install: where things go (DESTDIR is prefixed to each, for packages)
PREFIX   ?= /usr/local
BINDIR   ?= $(PREFIX)/bin
MANDIR   ?= $(PREFIX)/share/man
DOCDIR   ?= $(PREFIX)/share/doc/imagefs
USERUNITDIR ?= $(PREFIX)/lib/systemd/user
INSTALLED := $(BINDIR)/imagefs $(MANDIR)/man1/imagefs.1 \
	     $(USERUNITDIR)/imagefs@.service $(DOCDIR)/srv-images.mount \
	     $(DOCDIR)/fstab.example

.PHONY: all deps deps-run run stop test unit pytest pytest-asan valgrind \
	bench check-style fuzz fuzz-build stress install uninstall clean

all: imagefs

imagefs: $(OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

build/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

build/%.o: %.S $(wildcard backend/local/*.sql)
	@mkdir -p $(dir $@)
	$(CC) -c -o $@ $<

build/asan/imagefs: $(ASAN_OBJS)
	$(CC) $(CFLAGS) $(SANITIZE) -o $@ $^ $(LDFLAGS) $(LDLIBS)

build/asan/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SANITIZE) $(PKG_CFLAGS) -c -o $@ $<

build/asan/%.o: %.S $(wildcard backend/local/*.sql)
	@mkdir -p $(dir $@)
	$(CC) -c -o $@ $<

build/unit: $(UNIT_SRCS) fs/names.h fs/info.h fs/spec.h backend/backend.h \
	    tests/expect.h
	@mkdir -p build
	$(CC) $(CFLAGS) $(SANITIZE) -o $@ $(UNIT_SRCS) $(UNIT_LIBS) -lpthread

build/unit-plain: $(UNIT_SRCS) fs/names.h fs/info.h fs/spec.h \
		  backend/backend.h tests/expect.h
	@mkdir -p build
	$(CC) $(CFLAGS) -o $@ $(UNIT_SRCS) $(UNIT_LIBS) -lpthread

build/contract: $(CONTRACT_SRCS) $(wildcard backend/*.h backend/*/*.h \
		backend/local/*.sql) tests/expect.h
	@mkdir -p build
	$(CC) $(CFLAGS) $(SANITIZE) $(PKG_CFLAGS) -o $@ $(CONTRACT_SRCS) \
		$(LDLIBS)

build/fsunit: $(FSUNIT_SRCS) $(ASM) $(wildcard fs/*.h backend/*.h) \
	      tests/expect.h
	@mkdir -p build
	$(CC) $(CFLAGS) $(SANITIZE) $(PKG_CFLAGS) -o $@ $(FSUNIT_SRCS) \
		$(ASM) $(LDLIBS)

build/fsunit-plain: $(FSUNIT_SRCS) $(ASM) $(wildcard fs/*.h backend/*.h) \
		    tests/expect.h
	@mkdir -p build
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $@ $(FSUNIT_SRCS) $(ASM) $(LDLIBS)

$(FUZZ_DIR)/info: tests/fuzz/info.c fs/info.c fs/names.c backend/kinds.c
$(FUZZ_DIR)/names: tests/fuzz/names.c fs/names.c fs/info.c backend/kinds.c
$(FUZZ_DIR)/imagefmt: tests/fuzz/imagefmt.c backend/local/imagefmt.c
$(FUZZ_DIR)/credentials: tests/fuzz/credentials.c mountopts/credentials.c \
		mountopts/log.c
$(FUZZ_DIR)/credentials: FUZZ_LIBS = $(shell pkg-config --libs jansson)

$(FUZZ_TARGETS:%=$(FUZZ_DIR)/%): fs/info.h fs/names.h backend/backend.h \
		backend/local/imagefmt.h mountopts/credentials.h mountopts/log.h \
		Makefile
	@mkdir -p $(FUZZ_DIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(filter %.c,$^) $(FUZZ_LIBS)

# what building and running need; make test installs the test tools too
deps-run:
	@scripts/install-deps run

deps:
	@scripts/install-deps test

run: deps-run all
	@scripts/run "$(MNT)"

stop:
	fusermount3 -u "$(MNT)"

unit: build/unit build/fsunit
	build/unit
	build/fsunit

# the custom-image and sharing suites again, as the contract of the
# tencentcloud backend against the stand-in API server (tests/tcserver.py)
CONTRACT := IMAGEFS_BACKEND=tencentcloud $(PYTEST) -q tests/test_custom.py \
	    tests/test_share.py tests/test_security.py

pytest: imagefs build/contract
	IMAGEFS_BIN=$(CURDIR)/imagefs $(PYTEST) -q tests
	IMAGEFS_BIN=$(CURDIR)/imagefs $(CONTRACT)

pytest-asan: build/asan/imagefs build/contract
	IMAGEFS_BIN=$(CURDIR)/build/asan/imagefs $(PYTEST) -q tests
	IMAGEFS_BIN=$(CURDIR)/build/asan/imagefs $(CONTRACT)

# the unit tests and every mounted suite under valgrind
valgrind: imagefs build/unit-plain build/fsunit-plain build/contract
	valgrind -q --error-exitcode=1 --leak-check=full build/unit-plain
	valgrind -q --error-exitcode=1 --leak-check=full build/fsunit-plain
	IMAGEFS_BIN=$(CURDIR)/tests/valgrind-imagefs $(PYTEST) -q tests \
		--deselect tests/test_tencentcloud.py

check-style:
	scripts/check-style

# the randomized test of tests/test_stress.py, long (a short run of it is
# in make test): STRESS_SECONDS of rounds, a kill -9 every
# STRESS_KILL_EVERY (60) s; STRESS_SEED=N replays a run's choices
STRESS_SECONDS ?= 600
stress: imagefs
	STRESS_SECONDS=$(STRESS_SECONDS) IMAGEFS_BIN=$(CURDIR)/imagefs \
		$(PYTEST) -q -s tests/test_stress.py

fuzz-build: $(FUZZ_TARGETS:%=$(FUZZ_DIR)/%)

# each target for FUZZ_SECONDS (make fuzz FUZZ_SECONDS=600)
fuzz: fuzz-build
	FUZZ_DIR=$(FUZZ_DIR) scripts/fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

test: deps
	$(MAKE) all build/asan/imagefs build/unit build/unit-plain \
		build/contract build/fsunit build/fsunit-plain
	$(MAKE) check-style
	$(MAKE) unit
	$(MAKE) fuzz FUZZ_SECONDS=$(FUZZ_SHORT)
	$(MAKE) pytest
	$(MAKE) pytest-asan
	$(MAKE) valgrind

# libfuse's low-level example daemon, the reference of scripts/bench
PTLL_SRC ?= /usr/share/doc/libfuse3-dev/examples/passthrough_ll.c

build/passthrough_ll: $(wildcard $(PTLL_SRC))
	@if [ -f "$(PTLL_SRC)" ]; then \
		mkdir -p build && \
		echo "$(CC) -O2 -o $@ $(PTLL_SRC)" && \
		$(CC) -O2 -Wall -o $@ "$(PTLL_SRC)" \
			$$(pkg-config --cflags --libs fuse3); \
	else \
		echo "bench: no $(PTLL_SRC): apt-get install libfuse3-dev," \
		     "or build example/passthrough_ll.c of libfuse 3.14 as" \
		     "$@ (PTLL_SRC=...); bench runs without it"; \
	fi

# the browsing workloads at 2,000 and 100,000 images, then commit latency
# on the seed and at 100,000 images
bench: imagefs build/passthrough_ll
	scripts/bench
	scripts/bench-commit
	scripts/bench-commit 200 100000

install: imagefs
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(USERUNITDIR) $(DESTDIR)$(DOCDIR)
	install -m 755 imagefs $(DESTDIR)$(BINDIR)/imagefs
	install -m 644 imagefs.1 $(DESTDIR)$(MANDIR)/man1/imagefs.1
	sed 's|@BINDIR@|$(BINDIR)|g' systemd/imagefs@.service.in \
		> $(DESTDIR)$(USERUNITDIR)/imagefs@.service
	chmod 644 $(DESTDIR)$(USERUNITDIR)/imagefs@.service
	install -m 644 systemd/srv-images.mount systemd/fstab.example \
		$(DESTDIR)$(DOCDIR)

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	-rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null

clean:
	rm -rf build imagefs

-include $(OBJS:.o=.d) $(ASAN_OBJS:.o=.d)
