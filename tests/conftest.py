# SPDX-License-Identifier: GPL-2.0
"""Fixtures of the mounted tests: one fixture owns a mount's whole life.

Modelled on libfuse's test/util.py: the daemon runs in the foreground under
subprocess.Popen, the fixture polls until the mountpoint is mounted (with a
deadline, never a fixed sleep), and teardown always unmounts, waits for the
daemon, kills it if it hangs, and fails the test when the daemon did not exit
with 0 or its log holds a sanitizer report.

    def test_something(mount):
        mnt = mount()                         # account 100000000001
        peer = mount(account='100000000002', db=mnt.db)   # same catalog
        mnt.unmount()                         # optional: teardown does it

A mount is the mountpoint path (a str) with attributes proc, db, log,
account, cmd, and methods unmount() and log_text().

With IMAGEFS_BACKEND=tencentcloud the same tests run against the
tencentcloud backend: each catalog path gets a stand-in API server
(tcserver.py) whose state is that file, in the local catalog's schema, so
that what a test prepares or checks with sqlite3 is the cloud's state; each
daemon signs with its account's test keys and keeps its listing cache in
the test's tmp dir. Tests that need the local backend itself are marked
local_only and skipped there.
"""

import os
import sqlite3
import subprocess
import time

import pytest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))

DEMO_ACCOUNT = '100000000001'
PEER_ACCOUNT = '100000000002'

# Under valgrind (make valgrind) the daemon runs 20-50 times slower: the
# deadlines of waiting are stretched; what is measured stays the same.
SLOW = 10 if 'valgrind' in os.environ.get('IMAGEFS_BIN', '') else 1

BACKEND = os.environ.get('IMAGEFS_BACKEND', 'local')
CLOUD = BACKEND == 'tencentcloud'
CACHE_TTL = 0.2         # s: tencentcloud listings fetched again after

MOUNT_DEADLINE = 10.0 * SLOW    # seconds until the mountpoint is mounted
EXIT_DEADLINE = 5.0 * SLOW      # seconds until the daemon exits after unmount
UMOUNT_RETRY = 2.0      # seconds of retrying fusermount3 -u while busy
POLL = 0.01             # seconds between two polls

# What AddressSanitizer (and its leak checker) and UBSan print on a finding.
SANITIZER_MARKERS = ('ERROR: AddressSanitizer', 'ERROR: LeakSanitizer',
                     'runtime error:')


def charged(n):
    """What the ops table holds after n operations: n with the local
    backend, which has a daily limit; 0 with tencentcloud, whose cloud
    documents none and counts nothing."""
    return 0 if CLOUD else n


def imagefs_bin():
    """The daemon: $IMAGEFS_BIN, else ../imagefs beside the tests dir."""
    path = os.environ.get('IMAGEFS_BIN')
    if path:
        return os.path.abspath(path)
    return os.path.normpath(os.path.join(TESTS_DIR, '..', 'imagefs'))


def require_bin():
    """The daemon's path; fails the test when it is not built."""
    path = imagefs_bin()
    if not os.access(path, os.X_OK):
        pytest.fail('imagefs binary not found at %s: run make in %s, or '
                    'set IMAGEFS_BIN' % (path, os.path.dirname(TESTS_DIR)),
                    pytrace=False)
    return path


def _unescape_mount_field(s):
    """Undo the octal escapes (\\040 ...) of /proc/self/mountinfo."""
    out, i = [], 0
    while i < len(s):
        code = s[i + 1:i + 4]
        if s[i] == '\\' and len(code) == 3 and code.isdigit():
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return ''.join(out)


def in_mount_table(path):
    """True when path is a mountpoint in /proc/self/mountinfo.

    Unlike os.path.ismount this is also true for a mount whose daemon has
    died (stat then fails with ENOTCONN), which teardown must still undo.
    """
    path = os.path.realpath(path)
    with open('/proc/self/mountinfo') as f:
        for line in f:
            fields = line.split()
            if len(fields) > 4 and _unescape_mount_field(fields[4]) == path:
                return True
    return False


def wait_for(predicate, timeout):
    """Poll predicate until it is true (True) or timeout s passed (False)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL)
    return True


def fusermount(path, *args):
    return subprocess.run(['fusermount3', *args, os.fspath(path)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


class Mount(str):
    """A mounted imagefs: the mountpoint path, plus its daemon."""

    def __new__(cls, path, **attrs):
        self = super().__new__(cls, path)
        self.__dict__.update(attrs)
        self.finished = False   # unmounted and reaped
        self.killed = False     # had to be killed
        self.problems = []      # what went wrong, for teardown to report
        return self

    def log_text(self):
        try:
            with open(self.log, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except OSError:
            return ''

    def unmount(self):
        """fusermount3 -u (retried while busy, then -z); reap the daemon.

        Returns the daemon's exit status.
        """
        if self.finished:
            return self.proc.returncode
        if in_mount_table(self):
            deadline = time.monotonic() + UMOUNT_RETRY
            while True:
                r = fusermount(self, '-u')
                if r.returncode == 0 or not in_mount_table(self):
                    break
                if time.monotonic() > deadline:
                    self.problems.append(
                        'fusermount3 -u failed for %.0f s (%s): lazy '
                        'unmount' % (UMOUNT_RETRY,
                                     r.stdout.decode(errors='replace').strip()))
                    fusermount(self, '-u', '-z')
                    break
                time.sleep(0.05)
        return self.reap()

    def reap(self):
        """Wait EXIT_DEADLINE s for the daemon to exit; kill it if not."""
        if self.finished:
            return self.proc.returncode
        try:
            self.proc.wait(timeout=EXIT_DEADLINE)
        except subprocess.TimeoutExpired:
            self.problems.append('daemon still running %.0f s after the '
                                 'unmount: killed' % EXIT_DEADLINE)
            self.killed = True
            self.proc.kill()
            self.proc.wait()
        if in_mount_table(self):
            fusermount(self, '-u', '-z')
        self.finished = True
        return self.proc.returncode

    def check(self):
        """What went wrong with this mount, once it is over."""
        problems = list(self.problems)
        if not self.killed and self.proc.returncode != 0:
            problems.append('daemon exited with status %s'
                            % self.proc.returncode)
        text = self.log_text()
        for marker in SANITIZER_MARKERS:
            if marker in text:
                problems.append('%r in the daemon log' % marker)
        return problems


def cloud_opts(servers, tmp_path, db, account):
    """The options and environment of a tencentcloud daemon on db.

    The stand-in server of db is started unless the test made it first
    (servers[db] = TcServer(db, settle=...)).
    """
    from tcserver import TcServer, test_keys

    db = os.fspath(db)
    if db not in servers:
        servers[db] = TcServer(db, market=True)
    if not servers[db].port:
        servers[db].start()
    secret_id, secret_key = test_keys(account or DEMO_ACCOUNT)
    env = dict(TENCENTCLOUD_SECRET_ID=secret_id,
               TENCENTCLOUD_SECRET_KEY=secret_key,
               XDG_CACHE_HOME=os.fspath(tmp_path / 'cache'))
    return ['backend=tencentcloud', 'endpoint=%s' % servers[db].url,
            'cache_ttl=%g' % CACHE_TTL,
            'api_timeout=%g' % (10 * SLOW)], env


def _start(tmp_path, n, account, db, extra_opts, env=None, servers=None,
           backend=None):
    binary = require_bin()
    mnt = tmp_path / ('mnt%d' % n)
    mnt.mkdir()
    log = tmp_path / ('imagefs%d.log' % n)
    if db is None:
        db = tmp_path / 'imagefs.db'
    base_env = {}
    if (backend or BACKEND) == 'tencentcloud':
        opts, base_env = cloud_opts(servers, tmp_path, db, account)
    else:
        opts = ['db=%s' % os.fspath(db)]
    # the test's env wins; a value None takes a variable away
    env = {**os.environ, **base_env, **(env or {})}
    env = {k: v for k, v in env.items() if v is not None}
    if account is not None:
        opts.append('account=%s' % account)
    opts.extend(extra_opts)
    cmd = [binary, '-f', '-o', ','.join(opts), os.fspath(mnt)]
    with open(log, 'wb') as logf:
        logf.write(('+ %s\n' % ' '.join(cmd)).encode())
        logf.flush()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf,
                                stderr=subprocess.STDOUT, env=env)
    m = Mount(os.fspath(mnt), proc=proc, db=os.fspath(db), log=os.fspath(log),
              account=account, cmd=cmd)

    deadline = time.monotonic() + MOUNT_DEADLINE
    while not os.path.ismount(m):
        if proc.poll() is not None:
            m.finished = True
            pytest.fail('imagefs exited with status %s before mounting:\n%s'
                        % (proc.returncode, m.log_text()), pytrace=False)
        if time.monotonic() > deadline:
            m.killed = True
            proc.kill()
            proc.wait()
            m.finished = True
            if in_mount_table(m):
                fusermount(m, '-u', '-z')
            pytest.fail('imagefs did not mount within %.0f s:\n%s'
                        % (MOUNT_DEADLINE, m.log_text()), pytrace=False)
        time.sleep(POLL)
    return m


@pytest.fixture
def mount(request, tmp_path):
    """Factory: mount(account='100000000001', db=None, extra_opts=(), env=None,
    backend=None).

    env: variables added to the daemon's environment (e.g. libfaketime's);
    a value None takes one away.
    backend: 'tencentcloud' mounts that backend whatever IMAGEFS_BACKEND
    says, with the stand-in server of db as its cloud (m.server; a test may
    put its own TcServer in mount.servers[db] before mounting).

    Every call mounts one more daemon in this test's own tmp dir; db
    defaults to tmp_path/imagefs.db, shared by the calls of one test.
    account=None leaves the option out (the daemon's default account).
    Teardown unmounts all of them, newest first, even when the test failed,
    and fails the test on a bad exit status or a sanitizer report.
    """
    mounts = []
    servers = {}
    request.node._imagefs_mounts = mounts

    def factory(account=DEMO_ACCOUNT, db=None, extra_opts=(), env=None,
                backend=None):
        m = _start(tmp_path, len(mounts), account, db, tuple(extra_opts),
                   env, servers, backend)
        m.server = servers.get(m.db)
        mounts.append(m)
        return m

    factory.servers = servers
    yield factory

    report = []
    for m in reversed(mounts):
        m.unmount()
    for server in servers.values():
        server.stop()
    for m in mounts:
        report.extend('%s: %s' % (m, p) for p in m.check())
    if report:
        logs = ''.join('\n--- %s ---\n%s' % (m.log, m.log_text())
                       for m in mounts)
        pytest.fail('\n'.join(report) + logs, pytrace=False)


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'local_only: needs the local backend itself (its '
        'catalog\'s pending rows, libfaketime, several daemons on one '
        'catalog file); skipped with IMAGEFS_BACKEND=tencentcloud')


def pytest_collection_modifyitems(config, items):
    if not CLOUD:
        return
    skip = pytest.mark.skip(reason='local backend only')
    for item in items:
        if 'local_only' in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Show the daemons' logs beside a failing test."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and call.when == 'call':
        for m in getattr(item, '_imagefs_mounts', ()):
            rep.sections.append(('imagefs log ' + m.log, m.log_text()))


def open_db(path):
    """The catalog at path, opened with python's sqlite3.

    Meant for preparing a catalog while no daemon holds it; with daemons
    running, keep transactions short (they wait on their busy timeout).
    """
    conn = sqlite3.connect(os.fspath(path), timeout=10)
    conn.row_factory = sqlite3.Row
    return conn


@pytest.fixture
def catalog():
    """Factory: catalog(db_path) -> sqlite3 connection, closed at teardown."""
    conns = []

    def factory(path):
        conn = open_db(path)
        conns.append(conn)
        return conn

    yield factory
    for conn in conns:
        conn.close()


@pytest.fixture
def seeded_db(mount):
    """Factory: seeded_db() -> path of a catalog the daemon created.

    Mounts once on a fresh database in this test's tmp dir and unmounts, so
    the test can edit the catalog with sqlite3 before mounting it again.
    """
    def factory():
        m = mount()
        assert m.unmount() == 0, m.log_text()
        return m.db

    return factory
