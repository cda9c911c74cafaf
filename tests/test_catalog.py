# SPDX-License-Identifier: GPL-2.0
"""The catalog file under a running daemon (issue 11).

A catalog deleted or replaced under a daemon is noticed: the daemon says
so in its log and refuses every change with EROFS instead of losing it,
and a second daemon started on the same path makes a new catalog without
taking the old one's write-ahead log for its own. A check of a text at
write(2) (a dry run) takes no write lock. The change log keeps a bounded
number of entries. A daemon that cannot start says why.
"""

import errno
import os
import signal
import sqlite3
import subprocess

import pytest

from conftest import (SLOW, fusermount, imagefs_bin, in_mount_table,
                      wait_for)
from helpers import expect_errno, listing, read_info, write_all, write_file
from test_wait import Locker

pytestmark = pytest.mark.local_only

GZ = 'ap-guangzhou'
WEB = 'web-server-2026'
AGENT = 'build-agent'
NOTICED_WITHIN = 2.0 * SLOW     # s: the daemon logs a deleted catalog by then
START_DEADLINE = 20.0 * SLOW    # s: a daemon that cannot start exits by then


def custom(mnt, name=''):
    return os.path.join(mnt, GZ, 'custom', name)


def commit(mnt, name, text='DESCRIPTION=x\n'):
    os.mkdir(custom(mnt, name))
    write_file(os.path.join(custom(mnt, name), 'info'), text)
    return read_info(os.path.join(custom(mnt, name), 'info'))


def names_in(db):
    conn = sqlite3.connect(db)
    try:
        assert conn.execute('PRAGMA integrity_check').fetchone()[0] == 'ok'
        return {r[0] for r in conn.execute(
            "SELECT name FROM images WHERE kind = 'custom'")}
    finally:
        conn.close()


def says_gone(mnt):
    return 'deleted or replaced' in mnt.log_text()


def test_deleted_catalog_refuses_changes_and_a_new_one_starts_clean(
        mount, tmp_path):
    db = os.fspath(tmp_path / 'catalog.db')
    first = mount(db=db)
    kept = commit(first, 'before-rm')
    os.unlink(db)
    # the very next change is refused, never stored in the deleted file
    expect_errno(errno.EROFS, os.mkdir, custom(first, 'after-rm'))
    expect_errno(errno.EROFS, os.rename, custom(first, WEB),
                 custom(first, 'renamed'))
    assert wait_for(lambda: says_gone(first), NOTICED_WITHIN)
    # reads go on from what the daemon has open
    assert read_info(os.path.join(custom(first, 'before-rm'), 'info')) == kept
    # a second daemon on the same path: a new catalog, its own log files
    second = mount(db=db)
    assert 'before-rm' not in listing(custom(second))
    assert {WEB, AGENT} <= set(listing(custom(second)))
    made = commit(second, 'in-new-catalog')
    expect_errno(errno.EROFS, os.mkdir, custom(first, 'still-refused'))
    # the first daemon goes: it must not take the second one's files along
    assert first.unmount() == 0
    assert read_info(os.path.join(custom(second, 'in-new-catalog'),
                                  'info')) == made
    commit(second, 'after-first-left')
    assert second.unmount() == 0
    assert {'in-new-catalog', 'after-first-left'} <= names_in(db)
    assert 'before-rm' not in names_in(db)
    third = mount(db=db)
    assert {'in-new-catalog', 'after-first-left'} <= \
        set(listing(custom(third)))


def test_new_catalog_never_takes_the_log_files_of_a_deleted_one(mount,
                                                                tmp_path):
    """The second daemon starts before the first noticed the deletion (it
    is stopped): the -wal and -shm files at the path are still the
    deleted catalog's, in use, and must not become the new one's."""
    db = os.fspath(tmp_path / 'catalog.db')
    first = mount(db=db)
    commit(first, 'before-rm')
    first.proc.send_signal(signal.SIGSTOP)
    try:
        os.unlink(db)
        assert os.path.exists(db + '-wal') and os.path.exists(db + '-shm')
        second = mount(db=db)
        assert 'before-rm' not in listing(custom(second))
        commit(second, 'in-new-catalog')
    finally:
        first.proc.send_signal(signal.SIGCONT)
    expect_errno(errno.EROFS, os.mkdir, custom(first, 'after-rm'))
    assert first.unmount() == 0
    commit(second, 'after-first-left')
    assert second.unmount() == 0
    assert {'in-new-catalog', 'after-first-left'} <= names_in(db)


def test_replaced_catalog_refuses_changes(mount, tmp_path):
    db = os.fspath(tmp_path / 'catalog.db')
    first = mount(db=db)
    commit(first, 'in-old')
    # another catalog moved over it, as a restore from a backup would be
    other = os.fspath(tmp_path / 'backup.db')
    src = sqlite3.connect(db)
    dst = sqlite3.connect(other)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    os.replace(other, db)
    expect_errno(errno.EROFS, os.mkdir, custom(first, 'after-replace'))
    assert wait_for(lambda: says_gone(first), NOTICED_WITHIN)
    assert first.unmount() == 0
    # the file at the path is the backup, whole
    assert 'in-old' in names_in(db)
    second = mount(db=db)
    commit(second, 'in-restored')
    assert second.unmount() == 0
    assert {'in-old', 'in-restored'} <= names_in(db)


def test_check_of_a_text_at_write_takes_no_write_lock(mount):
    """Each write(2) that ends a line checks the text (a dry run): it reads
    the catalog and never waits for another process's write lock."""
    mnt = mount(extra_opts=['lock_timeout=%d' % (60 * SLOW)])
    web_id = read_info(os.path.join(custom(mnt, WEB), 'info'))['ID']
    names = ('checked', 'copied', 'missing')
    for name in names:
        os.mkdir(custom(mnt, name))
    fds = [os.open(os.path.join(custom(mnt, name), 'info'),
                   os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
           for name in names]
    try:
        with Locker(mnt.db):
            # with the lock held these would wait lock_timeout (60 s)
            write_all(fds[0], 'DESCRIPTION="checked"\n')
            write_all(fds[0], 'OS_TYPE=linux\n')
            write_all(fds[1], 'ID=%s\n' % web_id)
            # and a text the backend refuses is refused at once
            expect_errno(errno.EINVAL, write_all, fds[2],
                         'ID=img-zz999999\n')
    finally:
        for fd in fds[:2]:
            os.close(fd)
        expect_errno(errno.EINVAL, os.close, fds[2])
    assert read_info(os.path.join(custom(mnt, 'checked'), 'info'))[
        'DESCRIPTION'] == 'checked'
    assert read_info(os.path.join(custom(mnt, 'copied'), 'info'))[
        'SOURCE'] == 'copy:%s@%s' % (web_id, GZ)
    assert listing(custom(mnt, 'missing')) == []


def test_change_log_is_bounded(mount, seeded_db, catalog):
    db = seeded_db()
    conn = catalog(db)
    conn.execute("UPDATE settings SET value = 20 WHERE key = 'max_changes'")
    conn.commit()
    a = mount(db=db)
    b = mount(db=db)
    for i in range(40):         # mkdir and rmdir of a pending image: no
        os.mkdir(custom(a, 'p%d' % i))      # operation, two changes
        os.rmdir(custom(a, 'p%d' % i))
    n, low, high = conn.execute('SELECT count(*), min(seq), max(seq) FROM '
                                'changes').fetchone()
    assert n <= 20 and high - low < 20, (n, low, high)
    assert high >= 80
    # another daemon still follows
    os.mkdir(custom(a, 'last'))
    assert wait_for(lambda: 'last' in listing(custom(b)), 2.0 * SLOW)


# --- start-up ----------------------------------------------------------

def start(tmp_path, db, *opts):
    """Run the daemon on db until it exits; (status, stderr)."""
    mnt = tmp_path / 'mnt'
    mnt.mkdir(exist_ok=True)
    cmd = [imagefs_bin(), '-f', '-o', ','.join(('db=%s' % db,) + opts),
           os.fspath(mnt)]
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=START_DEADLINE)
    finally:
        if in_mount_table(mnt):
            fusermount(mnt, '-u', '-z')
    return r.returncode, r.stderr.decode(errors='replace')


def broken_catalog(tmp_path, seeded_db, sql):
    db = seeded_db()
    conn = sqlite3.connect(db)
    try:
        conn.executescript(sql)
    finally:
        conn.close()
    return db


@pytest.mark.parametrize('what, sql', [
    ('no change log', 'DROP TABLE changes;'),
    ('no regions', 'DROP TABLE images; DROP TABLE regions;'),
    ('no catalog id', "DELETE FROM settings WHERE key = 'catalog_id';"),
    ('a newer version', 'PRAGMA user_version = 999;'),
])
def test_a_daemon_that_cannot_start_says_why(tmp_path, seeded_db, what, sql):
    db = broken_catalog(tmp_path, seeded_db, sql)
    status, err = start(tmp_path, db)
    assert status != 0, what
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, '%s: the daemon exited %d and said nothing' % (what,
                                                                 status)
    assert all(line.startswith(('imagefs: ', 'fuse: ')) for line in lines), \
        err


def test_a_catalog_that_is_not_one_says_why(tmp_path):
    db = tmp_path / 'junk.db'
    db.write_bytes(b'this is not a database' * 100)
    status, err = start(tmp_path, os.fspath(db))
    assert status != 0
    assert 'imagefs: ' in err and os.fspath(db) in err
