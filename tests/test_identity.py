# SPDX-License-Identifier: GPL-2.0
"""An inode number names one image (or share link) for good (issue 11).

The row of an image or a share in the catalog is its inode number: a row is
never given again (AUTOINCREMENT), so another mount that still holds the
inode of a deleted image never reads the next image's data through it; and
every inode carries the catalog's id as its FUSE generation, which a
catalog made anew changes, so that the same numbers of a new catalog are
other inodes. A catalog made by the previous version of imagefs is brought
to this schema with everything it holds.
"""

import ctypes
import os
import sqlite3
import struct
import time

import pytest

from conftest import DEMO_ACCOUNT, SLOW, wait_for
from helpers import listing, parse_info, read_info, write_file
import tcserver

GZ = 'ap-guangzhou'
WEB = 'web-server-2026'
AGENT = 'build-agent'
PEER = '100000000003'           # an account with nothing of its own
ROUNDS = 4
VISIBLE_WITHIN = 10.0 * SLOW    # s: a deadline to poll to, not a claim


def settings(db, **values):
    conn = sqlite3.connect(db)
    try:
        for key, value in values.items():
            conn.execute('UPDATE settings SET value = ? WHERE key = ?',
                         (value, key))
        conn.commit()
    finally:
        conn.close()


def read_or_error(path, dir_fd=None):
    """The bytes of path (relative to dir_fd), or the OSError."""
    try:
        fd = os.open(path, os.O_RDONLY, dir_fd=dir_fd)
    except OSError as e:
        return e
    try:
        return os.read(fd, 1 << 16)
    except OSError as e:
        return e
    finally:
        os.close(fd)


@pytest.mark.local_only  # two daemons on one catalog file
def test_two_mounts_never_see_an_image_under_anothers_inode(mount,
                                                            seeded_db):
    db = seeded_db()
    settings(db, max_daily_ops=1000)
    a = mount(db=db)
    b = mount(db=db)
    a_custom = os.path.join(a, GZ, 'custom')
    b_custom = os.path.join(b, GZ, 'custom')
    for i in range(ROUNDS):
        old, new = 'old-%d' % i, 'new-%d' % i
        os.mkdir(os.path.join(a_custom, old))
        write_file(os.path.join(a_custom, old, 'info'),
                   'DESCRIPTION="old %d"\n' % i)
        old_id = read_info(os.path.join(a_custom, old, 'info'))['ID']
        # b holds the old image's directory open, as a shell's cwd would
        assert wait_for(lambda: os.path.exists(
            os.path.join(b_custom, old, 'info')), VISIBLE_WITHIN)
        held = os.open(os.path.join(b_custom, old), os.O_RDONLY |
                       os.O_DIRECTORY)
        held_ino = os.fstat(held).st_ino
        try:
            assert parse_info(read_or_error('info', held))['ID'] == old_id
            # a deletes it and makes another image
            os.unlink(os.path.join(a_custom, old, 'info'))
            os.rmdir(os.path.join(a_custom, old))
            os.mkdir(os.path.join(a_custom, new))
            write_file(os.path.join(a_custom, new, 'info'),
                       'DESCRIPTION="new %d"\n' % i)
            new_id = read_info(os.path.join(a_custom, new, 'info'))['ID']
            assert wait_for(lambda: new in os.listdir(b_custom),
                            VISIBLE_WITHIN)
            # through what b holds: the old image or nothing, never the new
            got = read_or_error('info', held)
            assert isinstance(got, OSError) or \
                parse_info(got)['ID'] == old_id, \
                'the deleted image %s shows image %s' % (old_id,
                                                          parse_info(got))
            assert read_info(os.path.join(b_custom, new, 'info'))['ID'] \
                == new_id
            assert os.stat(os.path.join(b_custom, new)).st_ino != held_ino
        finally:
            os.close(held)


@pytest.mark.local_only  # two daemons on one catalog file
def test_two_mounts_never_see_a_link_under_anothers_inode(mount, seeded_db):
    db = seeded_db()
    settings(db, max_daily_ops=1000)
    a = mount(db=db)
    b = mount(db=db)
    a_peer = os.path.join(a, GZ, 'shared', PEER)
    b_peer = os.path.join(b, GZ, 'shared', PEER)
    os.mkdir(a_peer)
    names = [WEB, AGENT]
    for i in range(ROUNDS):
        old, new = names[i % 2], names[(i + 1) % 2]
        os.symlink('../../custom/%s' % old, os.path.join(a_peer, old))
        assert wait_for(lambda: os.path.lexists(os.path.join(b_peer, old)),
                        VISIBLE_WITHIN)
        assert os.readlink(os.path.join(b_peer, old)) == \
            '../../custom/%s' % old
        # b holds the link itself (its inode and its cached target)
        held = os.open(os.path.join(b_peer, old), os.O_PATH | os.O_NOFOLLOW)
        held_ino = os.fstat(held).st_ino
        try:
            os.unlink(os.path.join(a_peer, old))
            os.symlink('../../custom/%s' % new, os.path.join(a_peer, new))
            assert wait_for(lambda: listing(b_peer) == [new],
                            VISIBLE_WITHIN)
            assert os.readlink(os.path.join(b_peer, new)) == \
                '../../custom/%s' % new
            assert os.lstat(os.path.join(b_peer, new)).st_ino != held_ino
        finally:
            os.close(held)
        os.unlink(os.path.join(a_peer, new))
        assert wait_for(lambda: listing(b_peer) == [], VISIBLE_WITHIN)


# struct file_handle of name_to_handle_at(2); FUSE's handle of a
# directory is (nodeid high, nodeid low, generation) in 32-bit words.
class FileHandle(ctypes.Structure):
    _fields_ = [('handle_bytes', ctypes.c_uint),
                ('handle_type', ctypes.c_int),
                ('f_handle', ctypes.c_ubyte * 128)]


_libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100


def node_and_generation(path):
    fh = FileHandle(handle_bytes=128)
    mount_id = ctypes.c_int()
    if _libc.name_to_handle_at(AT_FDCWD, os.fsencode(path), ctypes.byref(fh),
                               ctypes.byref(mount_id), 0):
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)
    hi, lo, gen = struct.unpack('=III', bytes(fh.f_handle[:12]))
    return hi << 32 | lo, gen


def catalog_id(db):
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT value FROM settings WHERE key = "
                            "'catalog_id'").fetchone()[0]
    finally:
        conn.close()


@pytest.mark.local_only  # makes the catalog file anew
def test_a_new_catalog_gives_its_inodes_another_generation(mount, tmp_path):
    db = os.fspath(tmp_path / 'again.db')
    first = mount(db=db)
    node, gen = node_and_generation(os.path.join(first, GZ, 'custom', WEB))
    assert gen == catalog_id(db)
    assert 0 < gen < 1 << 32
    first.unmount()
    for suffix in ('', '-wal', '-shm'):
        if os.path.exists(db + suffix):
            os.unlink(db + suffix)
    second = mount(db=db)
    # the seed gives WEB the same row in the new catalog: another inode
    node2, gen2 = node_and_generation(os.path.join(second, GZ, 'custom', WEB))
    assert node2 == node
    assert gen2 == catalog_id(db) and gen2 != gen


# --- the migration -----------------------------------------------------

def table_rows(conn, table):
    return sorted(tuple(r) for r in conn.execute('SELECT * FROM %s' % table))


def columns(conn, table):
    return [r[1] for r in conn.execute('PRAGMA table_info(%s)' % table)]


@pytest.mark.local_only  # the local catalog itself
def test_catalog_of_the_previous_version_keeps_everything(mount, tmp_path):
    """The previous schema version, with data in every table, opened by
    this daemon: brought to this version in one transaction, nothing lost,
    and rows deleted before are not given again."""
    db = os.fspath(tmp_path / 'old.db')
    previous = tcserver.SCHEMA_VERSION - 1
    tcserver.init_catalog(db, upto=previous)
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute('PRAGMA foreign_keys = ON')
        now = int(time.time())
        web = conn.execute("SELECT row FROM images WHERE name = ?",
                           (WEB,)).fetchone()[0]
        conn.execute("INSERT INTO shares (image, account) VALUES (?, ?)",
                     (web, PEER))
        conn.execute("INSERT INTO peers VALUES (?, ?, ?)",
                     (DEMO_ACCOUNT, GZ, '100000000004'))
        conn.execute("INSERT INTO ops VALUES (?, ?, '2026-11-30', 3)",
                     (DEMO_ACCOUNT, GZ))
        conn.execute("INSERT INTO images (region, kind, owner, name, state, "
                     "created, mtime) VALUES (?, 'custom', ?, 'pending-one', "
                     "'PENDING', ?, ?)", (GZ, DEMO_ACCOUNT, now, now))
        # an import under way by a process that lives (this test): not
        # taken up by the daemon while the test looks
        conn.execute("INSERT INTO images (id, region, kind, owner, name, "
                     "state, progress, created, mtime, source, os_type, "
                     "arch) VALUES ('img-imp00001', ?, 'custom', ?, "
                     "'importing', 'IMPORTING', 7, ?, ?, "
                     "'import:http://x/y.qcow2', 'linux', 'x86_64')",
                     (GZ, DEMO_ACCOUNT, now, now))
        imp = conn.execute("SELECT row FROM images WHERE id = "
                           "'img-imp00001'").fetchone()[0]
        conn.execute("INSERT INTO imports (image, url, pid, heartbeat) "
                     "VALUES (?, 'http://u:p@x/y.qcow2', ?, ?)",
                     (imp, os.getpid(), now + 3600))
        # the highest row, deleted: its number must not come back
        conn.execute("INSERT INTO images (region, kind, owner, name, state, "
                     "created, mtime) VALUES (?, 'custom', ?, 'gone', "
                     "'PENDING', ?, ?)", (GZ, DEMO_ACCOUNT, now, now))
        gone = conn.execute("SELECT max(row) FROM images").fetchone()[0]
        conn.execute("INSERT INTO changes (image, region, owner, old_name, "
                     "origin) VALUES (?, ?, ?, 'gone', 1)",
                     (gone, GZ, DEMO_ACCOUNT))
        conn.execute("DELETE FROM images WHERE row = ?", (gone,))
        before = {t: table_rows(conn, t) for t in
                  ('images', 'shares', 'peers', 'ops', 'imports', 'changes',
                   'regions')}
        before_settings = dict(conn.execute('SELECT key, value FROM '
                                            'settings'))
        image_columns = columns(conn, 'images')
    finally:
        conn.close()

    mnt = mount(db=db)
    custom = os.path.join(mnt, GZ, 'custom')
    assert {WEB, AGENT, 'pending-one', 'importing'} <= set(listing(custom))
    assert read_info(os.path.join(custom, WEB, 'info'))['SHARED_WITH'] == PEER
    os.mkdir(os.path.join(custom, 'after'))
    mnt.unmount()

    conn = sqlite3.connect(db)
    try:
        assert conn.execute('PRAGMA user_version').fetchone()[0] == \
            tcserver.SCHEMA_VERSION
        assert conn.execute('PRAGMA integrity_check').fetchone()[0] == 'ok'
        assert conn.execute('PRAGMA foreign_key_check').fetchall() == []
        assert columns(conn, 'images') == image_columns
        after = {t: table_rows(conn, t) for t in before}
        new_row = conn.execute("SELECT row FROM images WHERE name = "
                               "'after'").fetchone()[0]
        assert new_row > gone
        after['images'] = [r for r in after['images'] if r[0] != new_row]
        # the daemon logs its own changes: the old entries stay as they were
        after['changes'] = after['changes'][:len(before['changes'])]
        assert after == before
        now_settings = dict(conn.execute('SELECT key, value FROM settings'))
        assert {k: now_settings[k] for k in before_settings} == \
            before_settings
        for table in ('images', 'shares'):
            sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?",
                               (table,)).fetchone()[0]
            assert 'AUTOINCREMENT' in sql, table
    finally:
        conn.close()


@pytest.mark.local_only  # the local catalog itself
def test_migration_run_again_gives_no_row_again(mount, seeded_db):
    """A catalog whose version was set back by hand runs the migration
    again: nothing changes, and a row deleted before stays unused."""
    db = seeded_db()
    mnt = mount(db=db)
    os.mkdir(os.path.join(mnt, GZ, 'custom', 'top'))
    os.rmdir(os.path.join(mnt, GZ, 'custom', 'top'))
    mnt.unmount()
    conn = sqlite3.connect(db)
    try:
        top = conn.execute("SELECT max(image) FROM changes").fetchone()[0]
        ident = catalog_id(db)
        conn.execute('PRAGMA user_version = %d'
                     % (tcserver.SCHEMA_VERSION - 1))
        conn.commit()
    finally:
        conn.close()
    again = mount(db=db)
    os.mkdir(os.path.join(again, GZ, 'custom', 'next'))
    again.unmount()
    conn = sqlite3.connect(db)
    try:
        row = conn.execute("SELECT row FROM images WHERE name = 'next'"
                           ).fetchone()[0]
        assert row > top
        assert conn.execute('PRAGMA user_version').fetchone()[0] == \
            tcserver.SCHEMA_VERSION
    finally:
        conn.close()
    assert catalog_id(db) == ident
