# SPDX-License-Identifier: GPL-2.0
"""A request that waits holds up only itself.

Another process holds the catalog's write lock (an sqlite3 transaction
begun with BEGIN IMMEDIATE, as a second daemon's rule check or a careless
`sqlite3 catalog.db` would): the daemon keeps serving reads, a change waits
for the lock and goes through once it is free, gives ENOLCK (not EAGAIN,
the daily limit's errno) after -o lock_timeout, and Ctrl-C of a waiting
process answers EINTR without making the change.
"""

import ctypes
import errno
import os
import signal
import subprocess
import sys
import threading

import pytest

from conftest import SLOW, open_db, wait_for
from helpers import expect_errno, listing, read_info

pytestmark = pytest.mark.local_only

REGION = 'ap-guangzhou'


class Locker:
    """The catalog's write lock, held by this test process."""

    def __init__(self, db):
        self.conn = open_db(db)
        self.conn.isolation_level = None

    def __enter__(self):
        self.conn.execute('BEGIN IMMEDIATE')
        return self

    def release(self):
        if self.conn.in_transaction:
            self.conn.execute('ROLLBACK')

    def __exit__(self, *exc):
        self.release()
        self.conn.close()


def in_background(func, *args):
    """Run func(*args) in a thread; .result is what it returned or raised."""
    box = {}

    def body():
        try:
            box['result'] = func(*args)
        except OSError as e:
            box['result'] = e

    t = threading.Thread(target=body, daemon=True)
    t.box = box
    t.start()
    return t


def test_reads_go_on_while_a_change_waits_for_the_lock(mount):
    mnt = mount(extra_opts=['lock_timeout=%d' % (120 * SLOW)])
    custom = os.path.join(mnt, REGION, 'custom')
    with Locker(mnt.db) as lock:
        maker = in_background(os.mkdir, os.path.join(custom, 'waiting'))
        # never listed before: every one of these asks the daemon
        for region in ('ap-beijing', 'ap-tokyo', 'eu-frankfurt'):
            names = listing(os.path.join(mnt, region, 'public'))
            assert names, region
            info = read_info(os.path.join(mnt, region, 'public', names[0],
                                          'info'))
            assert info['REGION'] == region
        # (not custom/ itself: the kernel holds its lock for the mkdir)
        assert listing(os.path.join(mnt, REGION, 'shared'))
        # the reads did not wait for the mkdir, which still waits
        assert maker.is_alive()
        lock.release()
        maker.join(30 * SLOW)
        assert not maker.is_alive()
    assert maker.box['result'] is None
    assert os.path.isdir(os.path.join(custom, 'waiting'))


def test_a_lock_held_past_lock_timeout_is_enolck(mount, catalog):
    mnt = mount(extra_opts=['lock_timeout=0.5'])
    custom = os.path.join(mnt, REGION, 'custom')
    before = catalog(mnt.db).execute(
        'SELECT count(*) FROM images').fetchone()[0]
    with Locker(mnt.db):
        expect_errno(errno.ENOLCK, os.mkdir, os.path.join(custom, 'late'))
        expect_errno(errno.ENOLCK, os.rename,
                     os.path.join(custom, 'web-server-2026'),
                     os.path.join(custom, 'renamed'))
    assert catalog(mnt.db).execute(
        'SELECT count(*) FROM images').fetchone()[0] == before
    assert 'late' not in listing(custom)
    os.mkdir(os.path.join(custom, 'late'))
    assert 'late' in listing(custom)


CHILD = r'''
import ctypes, os, signal, sys
signal.signal(signal.SIGUSR1, lambda *a: None)
libc = ctypes.CDLL(None, use_errno=True)
print('ready', flush=True)
rc = libc.mkdir(sys.argv[1].encode(), 0o755)
print(os.strerror(ctypes.get_errno()) if rc else 'made', flush=True)
print(ctypes.get_errno() if rc else 0, flush=True)
'''


def waiting_in_fuse(pid):
    """True while pid sleeps in a FUSE request."""
    try:
        with open('/proc/%d/wchan' % pid) as f:
            wchan = f.read()
        with open('/proc/%d/stat' % pid) as f:
            state = f.read().rsplit(')', 1)[1].split()[0]
    except OSError:
        return False
    return state in ('S', 'D') and ('fuse' in wchan or
                                    'request_wait_answer' in wchan)


def test_ctrl_c_of_a_waiting_change_is_eintr_and_makes_nothing(mount,
                                                               catalog):
    mnt = mount(extra_opts=['lock_timeout=%d' % (120 * SLOW)])
    path = os.path.join(mnt, REGION, 'custom', 'interrupted')
    with Locker(mnt.db):
        child = subprocess.Popen([sys.executable, '-c', CHILD, path],
                                 stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline().strip() == 'ready'
            assert wait_for(lambda: waiting_in_fuse(child.pid), 30 * SLOW)
            child.send_signal(signal.SIGUSR1)
            out, _ = child.communicate(timeout=30 * SLOW)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        assert int(out.split()[-1]) == errno.EINTR, out
    n = catalog(mnt.db).execute(
        "SELECT count(*) FROM images WHERE name = 'interrupted'").fetchone()
    assert n[0] == 0
    assert not os.path.exists(path)
    os.mkdir(path)
    assert os.path.isdir(path)
