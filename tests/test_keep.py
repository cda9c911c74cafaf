# SPDX-License-Identifier: GPL-2.0
"""Mounted tests of the tree's safety (issue 11, DESIGN.md sections 2-3):
no tool can lose an image or a file.

- A reader of info reads the image's own text, never a writer's buffer;
  each writer's text is its own, and O_TRUNC and ftruncate cut only it.
- One check decides what may be an image's name (mkdir, mv, NAME=), and
  every name the tree lists, the catalog's too, is found by lookup.
- An image directory keeps only info and the scratch names editors and
  tools really use (each tried here with the tool), 16 at most, none over
  its size; info is never renamed.
- An image is deleted only by removing its directory: unlinking info marks
  it, the rmdir that follows deletes it, making info again refreshes it
  (tar -x, cp --remove-destination, install), and a mark lapses.
- cp -r, rsync -a and tar -x of an image again onto its copy succeed and
  charge nothing.
- Two mounts of one account agree through deletes and re-creates.

Errors are checked by errno symbol, and close(2) after a refused write by
its errno too.
"""

import errno
import os

import pytest

from helpers import (drive_tty, expect_errno, listing, parse_info, quote,
                     read_info, render, run, write_all, write_file)
from conftest import DEMO_ACCOUNT, SLOW, wait_for
from test_custom import (AGENT, BJ, FAKETIME_LIB, GZ, MAX_OPS, WEB,
                         close_errno, committed, faketime_env, image_id,
                         image_row, ops_count, pending, renameat2, setup,
                         snapshot, source_text, statvfs_slots, tool_env)

RENAME_NOREPLACE = 1
SCRATCH_MAX_FILES = 16
SCRATCH_MAX_BYTES = 1 << 20
MARK_SECONDS = 60
VISIBLE_WITHIN = 10.0 * SLOW    # s: a deadline to poll to, not a claim

WRITE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC

assert setup        # a fixture, used by name


def custom(mnt, name='', region=GZ):
    return os.path.join(mnt, region, 'custom', name)


def info_of(mnt, name, region=GZ):
    return os.path.join(custom(mnt, name, region), 'info')


# --- readers never see a writer's text -------------------------------------

def test_reader_of_a_pending_info_reads_nothing(setup):
    mnt, conn = setup()
    path = custom(mnt, 'being-written', BJ)
    os.mkdir(path)
    info = os.path.join(path, 'info')
    w = os.open(info, WRITE, 0o644)
    try:
        write_all(w, source_text('DESCRIPTION="being written"\n'))
        # a file manager's preview: info is there, empty, while written
        assert os.stat(info).st_size == 0
        r = os.open(info, os.O_RDONLY)
        try:
            assert os.read(r, 65536) == b''
        finally:
            os.close(r)
    finally:
        os.close(w)                             # the commit
    assert read_info(info)['DESCRIPTION'] == 'being written'


def test_reader_during_a_copy_reads_the_copy(setup):
    mnt, conn = setup()
    src = read_info(info_of(mnt, WEB))
    path = custom(mnt, 'web-copy', BJ)
    os.mkdir(path)
    info = os.path.join(path, 'info')
    w = os.open(info, WRITE, 0o644)
    r = None
    try:
        write_all(w, render(src))               # what cp -r writes
        r = os.open(info, os.O_RDONLY)          # held across the commit
    finally:
        os.close(w)
    try:
        got = os.read(r, 65536)
    finally:
        os.close(r)
    copy = read_info(info)
    assert copy['SOURCE'] == 'copy:%s@%s' % (src['ID'], GZ)
    assert copy['ID'] != src['ID'] and copy['NAME'] == 'web-copy'
    assert got == b'' or parse_info(got)['ID'] == copy['ID']
    # every new reader sees the copy, not the text that was written
    for _ in range(3):
        assert read_info(info)['ID'] == copy['ID']


def test_refused_text_is_never_shown(setup):
    mnt, conn = setup()
    path = custom(mnt, 'refused', BJ)
    os.mkdir(path)
    info = os.path.join(path, 'info')
    w = os.open(info, WRITE, 0o644)
    try:
        expect_errno(errno.EINVAL, write_all, w, 'COLOR=blue\n')
        with open(info, 'rb') as f:
            assert f.read() == b''
    finally:
        assert close_errno(w) == errno.EINVAL
    expect_errno(errno.ENOENT, os.stat, info)
    assert listing(path) == []


@pytest.mark.local_only     # the second text commits without a source
def test_each_writer_has_its_own_text(setup):
    """O_TRUNC truncates the opener's text; another writer's is its own
    (once, a second writer took the first one's text and merged into it:
    EINVAL for a repeated key)."""
    mnt, conn = setup()
    path = custom(mnt, 'two-writers', BJ)
    os.mkdir(path)
    info = os.path.join(path, 'info')
    w1 = os.open(info, WRITE, 0o644)
    try:
        write_all(w1, 'DESCRIPTION="first"\n')
        w2 = os.open(info, WRITE, 0o644)
        try:
            write_all(w2, 'DESCRIPTION="second"\n')
        finally:
            os.close(w2)                        # commits "second"
        assert read_info(info)['DESCRIPTION'] == 'second'
    finally:
        os.close(w1)                            # an edit of it now
    assert read_info(info)['DESCRIPTION'] == 'first'
    assert ops_count(conn, BJ) == 2


def test_ftruncate_cuts_only_its_own_text(setup):
    mnt, conn = setup()
    info = info_of(mnt, WEB)
    text = open(info, 'rb').read()
    before = parse_info(text)
    other = os.open(info, os.O_RDWR)            # a writer's own text
    try:
        w = os.open(info, os.O_WRONLY)
        try:
            line = b'DESCRIPTION="cut here"\n'
            os.ftruncate(w, 0)
            write_all(w, line + b'# and the rest goes')
            os.ftruncate(w, len(line))
        finally:
            os.close(w)
        assert read_info(info) == dict(before, DESCRIPTION='cut here')
        assert os.pread(other, 65536, 0) == text
    finally:
        os.close(other)
    assert ops_count(conn, GZ) == 1


# --- a pending image's info: there while a writer keeps it ----------------

def refused_write(info, text='COLOR=blue\n'):
    """open info, write a text refused at the write(2), close: EINVAL."""
    w = os.open(info, WRITE, 0o644)
    try:
        expect_errno(errno.EINVAL, write_all, w, text)
    finally:
        assert close_errno(w) == errno.EINVAL


@pytest.mark.parametrize('rename', [False, True])
def test_info_commits_at_once_after_a_refused_write(setup, rename):
    """The kernel does not keep the name of a pending info past its writer:
    once, after a refused write and a rename of the directory, writing
    info failed with ENOENT until the name expired."""
    mnt, conn = setup()
    path = custom(mnt, 'refused-first', BJ)
    os.mkdir(path)
    refused_write(os.path.join(path, 'info'))
    if rename:
        os.rename(path, custom(mnt, 'then-renamed', BJ))
        path = custom(mnt, 'then-renamed', BJ)
    info = os.path.join(path, 'info')
    write_file(info, source_text('DESCRIPTION=second\n'))
    name = os.path.basename(path)
    assert name in committed(conn, BJ) and pending(conn, BJ) == []
    assert read_info(info)['DESCRIPTION'] == 'second'
    assert listing(path) == ['info']


def test_listing_shows_info_right_after_a_commit(setup):
    """A listing of the pending directory, kept by the kernel, does not
    outlive the commit (once it did: rm -r then met ENOTEMPTY)."""
    mnt, conn = setup()
    path = custom(mnt, 'listed-then-made', BJ)
    os.mkdir(path)
    info = os.path.join(path, 'info')
    refused_write(info)
    assert listing(path) == []
    write_file(info, source_text('DESCRIPTION=made\n'))
    assert listing(path) == ['info']
    rm = run(['rm', '-r', path])                # unlink what it lists, rmdir
    assert rm.returncode == 0, rm.stderr
    assert not os.path.exists(path)
    assert 'listed-then-made' not in committed(conn, BJ)


@pytest.mark.parametrize('text', ['COLOR=blue\n', 'COLOR=blue'],
                         ids=['at-write', 'at-close'])
def test_listing_drops_info_when_close_refuses(setup, text):
    """A listing made while the writer was open shows info; once close
    said the text was refused, info is gone from the next listing, though
    the kernel releases the file later (once rm -r met ENOENT)."""
    mnt, conn = setup()
    path = custom(mnt, 'refused-text', BJ)
    os.mkdir(path)
    info = os.path.join(path, 'info')
    w = os.open(info, WRITE, 0o644)
    try:
        assert listing(path) == ['info']
        if text.endswith('\n'):
            expect_errno(errno.EINVAL, write_all, w, text)
        else:
            write_all(w, text)                  # a line checked at close
        assert listing(path) == ['info']        # still open: still there
    finally:
        assert close_errno(w) == errno.EINVAL
    assert listing(path) == []
    expect_errno(errno.ENOENT, os.stat, info)
    rm = run(['rm', '-r', path])
    assert rm.returncode == 0, rm.stderr
    assert not os.path.exists(path) and pending(conn, BJ) == []


# --- one check of names; every listed name is reachable ---------------------

@pytest.mark.parametrize('name', ['desktop.ini', 'Thumbs.db', 'autorun.inf',
                                  '.hidden', '.Trash-0'])
def test_names_file_managers_probe_are_refused(setup, name):
    mnt, conn = setup()
    before = snapshot(conn)
    expect_errno(errno.EPERM, os.mkdir, custom(mnt, name))
    expect_errno(errno.EPERM, os.rename, custom(mnt, WEB), custom(mnt, name))
    fd = os.open(info_of(mnt, WEB), WRITE, 0o644)
    try:
        expect_errno(errno.EPERM, write_all, fd, 'NAME=%s\n' % quote(name))
    finally:
        assert close_errno(fd) == errno.EPERM
    assert snapshot(conn) == before
    assert os.path.isdir(custom(mnt, WEB))


def test_names_that_would_not_read_back_are_refused(setup):
    mnt, conn = setup()
    before = snapshot(conn)
    # U+FF0F is how a '/' is shown: as a name of its own it is refused
    for text in ('NAME="a\uff0fb"\n', 'NAME="v (img-abcd1234)"\n'):
        fd = os.open(info_of(mnt, WEB), WRITE, 0o644)
        try:
            expect_errno(errno.EINVAL, write_all, fd, text)
        finally:
            assert close_errno(fd) == errno.EINVAL
    # a repeated name's suffix is the tree's own
    expect_errno(errno.EINVAL, os.mkdir, custom(mnt, 'v (img-abcd1234)'))
    expect_errno(errno.EINVAL, os.rename, custom(mnt, WEB),
                 custom(mnt, 'v (img-abcd1234)'))
    assert snapshot(conn) == before


def test_slash_round_trips(setup):
    mnt, conn = setup()
    os.mkdir(custom(mnt, 'a\uff0fb'))           # the name a/b
    write_file(info_of(mnt, 'a\uff0fb'), source_text(''))
    assert read_info(info_of(mnt, 'a\uff0fb'))['NAME'] == 'a/b'
    write_file(info_of(mnt, 'a\uff0fb'), 'NAME=c/d\n')
    assert 'c\uff0fd' in listing(custom(mnt))
    assert read_info(info_of(mnt, 'c\uff0fd'))['NAME'] == 'c/d'
    expect_errno(errno.ENOENT, os.stat, custom(mnt, 'a\uff0fb'))


# names another tool (the cloud's console, an old catalog) gave images, and
# the entry each is listed as: with its id, a leading dot as U+FF0E
ODD_NAMES = [('img-zz000101', '.hidden', '\uff0ehidden (img-zz000101)'),
             ('img-zz000102', 'desktop.ini', 'desktop.ini (img-zz000102)'),
             ('img-zz000103', 'a\uff0fb', 'a\uff0fb (img-zz000103)'),
             ('img-zz000104', 'x (img-12345678)',
              'x (img-12345678) (img-zz000104)'),
             ('img-zz000105', '..', '\uff0e. (img-zz000105)')]


@pytest.mark.local_only     # names put in the catalog with sqlite3
def test_names_from_the_catalog_are_reachable(setup):
    sql = [("INSERT INTO images (id, region, kind, owner, name, os_name, "
            "os_type, platform, arch, bits, size_gb, state, created, mtime, "
            "description, source) VALUES (?, ?, ?, ?, ?, 'Test OS', 'linux', "
            "'TestOS', 'x86_64', 64, 20, 'NORMAL', 1, 1, 'odd', "
            "'instance:ins-12345678')", (ident, GZ, kind, owner, name))
           for kind, owner in (('custom', DEMO_ACCOUNT),
                               ('public', 'tencentcloud'))
           for ident, name, _ in ODD_NAMES
           if kind == 'custom' or name != '..']
    # public ids must differ from the custom ones
    sql = [(q, (a[0].replace('zz0001', 'zz0002'),) + a[1:])
           if a[2] == 'public' else (q, a) for q, a in sql]
    mnt, conn = setup(settings={'max_custom_images': 20,
                                'max_daily_ops': 100}, sql=sql)
    for kind, folder in (('custom', custom(mnt)),
                         ('public', os.path.join(mnt, GZ, 'public'))):
        names = listing(folder)
        for ident, name, entry in ODD_NAMES:
            if kind == 'public':
                if name == '..':
                    continue
                ident = ident.replace('zz0001', 'zz0002')
                entry = entry.replace('zz0001', 'zz0002')
            assert entry in names, (kind, entry, names)
            assert name not in names or name == entry
            got = read_info(os.path.join(folder, entry, 'info'))
            assert got['ID'] == ident, (kind, entry)
    # a share link to one is named as it is listed, and works both ways
    entry = ODD_NAMES[1][2]
    peer = os.path.join(mnt, GZ, 'shared', '100000000003')
    os.mkdir(peer)
    os.symlink('../../custom/' + entry, os.path.join(peer, entry))
    assert listing(peer) == [entry]
    assert os.readlink(os.path.join(peer, entry)) == '../../custom/' + entry
    os.unlink(os.path.join(peer, entry))
    assert listing(peer) == []
    # and rm -r deletes them
    for ident, _, entry in ODD_NAMES:
        r = run(['rm', '-r', custom(mnt, entry)])
        assert r.returncode == 0, (entry, r.stderr)
        assert image_row(conn, ident) is None
    assert listing(custom(mnt)) == [AGENT, WEB]


# --- only info and scratch names; info stays ---------------------------------

# every name an editor or tool was seen to make beside info (README)
SCRATCH_NAMES = ['.info.swp', '.info.swo', '.info.swpx', '4913', '5036',
                 'info~', 'info.~2~', 'sedAbC123', '.goutputstream-AB12CD',
                 '.info.Yankia', 'info.oDJ3tGV', 'XXMOiLud', '#info#',
                 'info.save', 'info.save.1']


def test_only_info_and_scratch_names(setup, tmp_path):
    mnt, conn = setup()
    img = custom(mnt, WEB)
    before = snapshot(conn)
    for name in ('notes.txt', 'info.bak', 'INFO', 'x.swp', '.info.swpxx',
                 '4914', 'sed12', 'Info~'):
        expect_errno(errno.EPERM, os.open, os.path.join(img, name), WRITE,
                     0o644)
    notes = tmp_path / 'notes.txt'
    notes.write_text('kept nowhere\n')
    r = run(['cp', os.fspath(notes), img + '/'])
    assert r.returncode != 0                    # told, not silently lost
    expect_errno(errno.EPERM, os.mkdir, os.path.join(img, 'sub'))
    expect_errno(errno.EPERM, os.symlink, 'x', os.path.join(img, 'link'))
    expect_errno(errno.EPERM, os.mknod, os.path.join(img, 'fifo'))
    assert listing(img) == ['info']
    for name in SCRATCH_NAMES:
        write_file(os.path.join(img, name), 'scratch %s\n' % name)
    assert listing(img) == sorted(SCRATCH_NAMES + ['info'])
    # a scratch file keeps a scratch name
    expect_errno(errno.EPERM, os.rename, os.path.join(img, '.info.swp'),
                 os.path.join(img, 'notes.txt'))
    os.rename(os.path.join(img, '.info.swp'), os.path.join(img, 'info~'))
    with open(os.path.join(img, 'info~')) as f:
        assert f.read() == 'scratch .info.swp\n'
    for name in SCRATCH_NAMES:
        if name != '.info.swp':
            os.unlink(os.path.join(img, name))
    # emacs's lock is a symlink
    os.symlink('me@host.1:1', os.path.join(img, '.#info'))
    assert os.readlink(os.path.join(img, '.#info')) == 'me@host.1:1'
    os.unlink(os.path.join(img, '.#info'))
    assert listing(img) == ['info']
    assert snapshot(conn) == before             # never sent to the backend


def test_scratch_files_are_counted_per_directory(setup):
    mnt, conn = setup()
    web, agent = custom(mnt, WEB), custom(mnt, AGENT)
    names = ['sed%06d' % i for i in range(SCRATCH_MAX_FILES)]
    for name in names:
        write_file(os.path.join(web, name), '')
    expect_errno(errno.ENOSPC, os.open, os.path.join(web, 'sedtoomny'),
                 WRITE, 0o644)
    # one busy directory leaves the others alone
    write_file(os.path.join(agent, '.info.swp'), 'vim')
    os.unlink(os.path.join(web, names[0]))
    write_file(os.path.join(web, 'sedtoomny'), '')
    assert len(listing(web)) == SCRATCH_MAX_FILES + 1


def test_scratch_file_over_its_size_leaves_nothing(setup, tmp_path):
    mnt, conn = setup()
    img = custom(mnt, WEB)
    fd = os.open(os.path.join(img, 'info~'), WRITE, 0o644)
    try:
        write_all(fd, b'x' * SCRATCH_MAX_BYTES)
        expect_errno(errno.EFBIG, write_all, fd, b'y')
        expect_errno(errno.EFBIG, write_all, fd, b'y')
    finally:
        os.close(fd)
    assert listing(img) == ['info']
    big = tmp_path / 'big'
    big.write_bytes(b'z' * (2 * SCRATCH_MAX_BYTES))
    r = run(['cp', os.fspath(big), os.path.join(img, 'info~')])
    assert r.returncode != 0
    assert listing(img) == ['info']


def test_info_is_never_renamed(setup):
    mnt, conn = setup()
    img = custom(mnt, WEB)
    before = snapshot(conn)
    text = open(os.path.join(img, 'info')).read()
    for new in ('info.bak', 'info~', '.info.Yankia'):
        expect_errno(errno.EPERM, os.rename, os.path.join(img, 'info'),
                     os.path.join(img, new))
    expect_errno(errno.EPERM, renameat2, os.path.join(img, 'info'),
                 os.path.join(img, 'info.bak'), RENAME_NOREPLACE)
    for cmd in (['mv', 'info', 'info.bak'], ['gio', 'move', 'info', 'x'],
                ['cp', '-b', 'info', 'info']):
        r = run(cmd, cwd=img)
        assert r.returncode != 0, cmd
        assert listing(img) == ['info'], cmd
    assert open(os.path.join(img, 'info')).read() == text
    assert snapshot(conn) == before


def test_mkdir_and_renames_into_an_image_directory(setup):
    mnt, conn = setup()
    expect_errno(errno.EPERM, os.mkdir, os.path.join(custom(mnt, WEB), 'x'))
    expect_errno(errno.EPERM, os.rename, custom(mnt, AGENT),
                 os.path.join(custom(mnt, WEB), AGENT))
    assert listing(custom(mnt)) == [AGENT, WEB]


# --- an image is deleted only by removing its directory ---------------------

def test_making_info_again_refreshes_the_image(setup, tmp_path):
    """tar -x, cp --remove-destination and install unlink info and make it
    again: the same image, nothing charged when nothing changes."""
    mnt, conn = setup()
    ident = image_id(conn, WEB)
    saved = tmp_path / 'info'
    saved.write_bytes(open(info_of(mnt, WEB), 'rb').read())
    tarball = tmp_path / 'web.tar'
    r = run(['tar', '-C', custom(mnt), '-cf', os.fspath(tarball), WEB])
    assert r.returncode == 0, r.stderr
    for cmd in (['tar', '-C', custom(mnt), '-xf', os.fspath(tarball)],
                ['cp', '--remove-destination', os.fspath(saved),
                 info_of(mnt, WEB)],
                ['install', '-m', '644', os.fspath(saved), info_of(mnt, WEB)],
                ['rm', info_of(mnt, WEB)], ['touch', info_of(mnt, WEB)]):
        r = run(cmd)
        assert r.returncode == 0, (cmd, r.stderr)
    for _ in range(2):
        r = run(['tar', '-C', custom(mnt), '-xf', os.fspath(tarball)])
        assert r.returncode == 0, r.stderr
    assert read_info(info_of(mnt, WEB))['ID'] == ident
    assert listing(custom(mnt, WEB)) == ['info']
    assert committed(conn, GZ)[WEB] == ident
    assert ops_count(conn, GZ) == 0
    # a changed text: one edit of the same image
    saved.write_text(''.join('DESCRIPTION="refreshed"\n'
                             if line.startswith('DESCRIPTION=') else line
                             for line in open(info_of(mnt, WEB))))
    r = run(['install', '-m', '644', os.fspath(saved), info_of(mnt, WEB)])
    assert r.returncode == 0, r.stderr
    got = read_info(info_of(mnt, WEB))
    assert got['ID'] == ident and got['DESCRIPTION'] == 'refreshed'
    assert ops_count(conn, GZ) == 1


def test_gui_delete(setup):
    mnt, conn = setup()
    ident = image_id(conn, AGENT)
    r = run(['gio', 'remove', info_of(mnt, AGENT)])
    assert r.returncode == 0, r.stderr
    r = run(['gio', 'remove', custom(mnt, AGENT)])
    assert r.returncode == 0, r.stderr
    assert image_row(conn, ident) is None
    assert listing(custom(mnt)) == [WEB]


def test_refusals_come_at_the_unlink(setup):
    mnt, conn = setup(ops={GZ: MAX_OPS})
    before = snapshot(conn)
    expect_errno(errno.EAGAIN, os.unlink, info_of(mnt, WEB))
    r = run(['rm', '-r', custom(mnt, WEB)])
    assert r.returncode != 0
    assert listing(custom(mnt, WEB)) == ['info']
    assert snapshot(conn) == before


@pytest.mark.local_only     # libfaketime: the cloud refuses old timestamps
def test_a_mark_lapses(mount, seeded_db, catalog, tmp_path):
    if not os.path.exists(FAKETIME_LIB):
        pytest.skip('libfaketime not installed (apt-get install faketime)')
    db = seeded_db()
    conn = catalog(db)
    clock = tmp_path / 'faketime'
    clock.write_text('@2026-11-28 10:00:00\n')
    mnt = mount(db=db, env=faketime_env(clock))
    ident = image_id(conn, WEB)
    info = info_of(mnt, WEB)
    os.unlink(info)
    assert listing(custom(mnt, WEB)) == []
    clock.write_text('@2026-11-28 10:00:%02d\n' % (MARK_SECONDS - 5))
    assert not os.path.exists(info)             # not yet
    clock.write_text('@2026-11-28 10:01:%02d\n' % 5)
    assert wait_for(lambda: os.path.exists(info), 10 * SLOW), \
        'the mark did not lapse'
    assert wait_for(lambda: listing(custom(mnt, WEB)) == ['info'],
                    10 * SLOW)
    expect_errno(errno.ENOTEMPTY, os.rmdir, custom(mnt, WEB))
    assert read_info(info)['ID'] == ident
    assert ops_count(conn, GZ, day='2026-11-28') == 0


# --- the same source again onto its copy -----------------------------------

def test_cp_r_again_charges_nothing(setup):
    mnt, conn = setup()
    for n in range(3):
        r = run(['cp', '-r', custom(mnt, WEB), custom(mnt, '', BJ)])
        assert r.returncode == 0, (n, r.stderr)
    copy = committed(conn, BJ)
    assert list(copy) == [WEB]
    assert read_info(info_of(mnt, WEB, BJ))['ID'] == copy[WEB]
    assert ops_count(conn, GZ) == 1             # the copy, once
    assert ops_count(conn, BJ) == 0


def test_rsync_a_again_charges_nothing(setup):
    mnt, conn = setup()
    for n in range(2):
        r = run(['rsync', '-a', custom(mnt, WEB), custom(mnt, '', BJ)])
        assert r.returncode == 0, (n, r.stderr)
    assert list(committed(conn, BJ)) == [WEB]
    assert ops_count(conn, GZ) == 1
    assert ops_count(conn, BJ) == 0
    assert listing(custom(mnt, WEB, BJ)) == ['info']


def test_tar_x_again_charges_nothing(setup, tmp_path):
    mnt, conn = setup()
    tarball = tmp_path / 'web.tar'
    r = run(['tar', '-C', custom(mnt), '-cf', os.fspath(tarball), WEB])
    assert r.returncode == 0, r.stderr
    for n in range(2):
        r = run(['tar', '-C', custom(mnt, '', BJ), '-xf', os.fspath(tarball)])
        assert r.returncode == 0, (n, r.stderr)
    copy = committed(conn, BJ)
    assert list(copy) == [WEB]
    info = read_info(info_of(mnt, WEB, BJ))
    assert info['ID'] == copy[WEB]
    assert info['SOURCE'] == 'copy:%s@%s' % (image_id(conn, WEB), GZ)
    assert ops_count(conn, GZ) == 1
    assert ops_count(conn, BJ) == 0


# --- rename onto a pending directory is one change --------------------------

def test_failed_rename_onto_pending_keeps_it(setup):
    mnt, conn = setup(ops={GZ: MAX_OPS})
    os.mkdir(custom(mnt, 'slot'))
    slots = statvfs_slots(custom(mnt))
    expect_errno(errno.EAGAIN, os.rename, custom(mnt, WEB),
                 custom(mnt, 'slot'))
    assert listing(custom(mnt)) == [AGENT, 'slot', WEB]
    assert statvfs_slots(custom(mnt)) == slots
    os.rmdir(custom(mnt, 'slot'))


@pytest.mark.local_only     # pending rows are the catalog's
def test_rename_onto_pending_with_a_file_is_refused(setup):
    mnt, conn = setup()
    os.mkdir(custom(mnt, 'slot'))
    write_file(os.path.join(custom(mnt, 'slot'), '.info.swp'), 'vim')
    expect_errno(errno.ENOTEMPTY, os.rename, custom(mnt, WEB),
                 custom(mnt, 'slot'))
    assert pending(conn, GZ) == ['slot']


# --- everyday tools through the mount ---------------------------------------

def description_line(text):
    return next(n for n, line in enumerate(text.splitlines(), 1)
                if line.startswith('DESCRIPTION='))


def check_edited(mnt, conn, ident, description):
    info = read_info(info_of(mnt, WEB))
    assert info['ID'] == ident and info['DESCRIPTION'] == description
    assert listing(custom(mnt, WEB)) == ['info']
    assert ops_count(conn, GZ) == 1


def test_nano(setup, tmp_path):
    mnt, conn = setup()
    ident = image_id(conn, WEB)
    line = description_line(open(info_of(mnt, WEB)).read())
    env = tool_env(tmp_path, TERM='xterm')
    status = drive_tty(['nano', '-B', '+%d' % line, 'info'], [
        (b'DESCRIPTION', b'\x0b'),              # ^K: cut the line
        (b'', b'DESCRIPTION="edited in nano"\r'),
        (b'edited in nano', b'\x0f'),           # ^O: write out
        (b'File Name to Write', b'\r'),
        (b'Wrote', b'\x18')],                   # ^X: exit
        cwd=custom(mnt, WEB), env=env)
    assert status == 0
    assert wait_for(lambda: '.info.swp' not in listing(custom(mnt, WEB)),
                    5 * SLOW)
    for f in ('info~',):                        # nano -B's backup
        if f in listing(custom(mnt, WEB)):
            os.unlink(os.path.join(custom(mnt, WEB), f))
    check_edited(mnt, conn, ident, 'edited in nano')


@pytest.mark.parametrize('backups', [False, True], ids=['plain', 'backup'])
def test_emacs(setup, tmp_path, backups):
    mnt, conn = setup()
    ident = image_id(conn, WEB)
    setq = ('(setq make-backup-files t backup-enable-predicate '
            '(lambda (f) t))' if backups else '(setq make-backup-files nil)')
    # info~ is not made by renaming info: emacs keeps its backup there
    os.makedirs(tmp_path / 'home' / '.emacs.d', exist_ok=True)
    r = run(['emacs', '-Q', '--batch', '--eval', setq, 'info', '--eval',
             '(progn (goto-char (point-min)) '
             '(re-search-forward "^DESCRIPTION=.*$") '
             '(replace-match "DESCRIPTION=\\"edited in emacs\\"" t t) '
             '(save-buffer))'],
            cwd=custom(mnt, WEB), env=tool_env(tmp_path), timeout=60)
    assert r.returncode == 0, r.stderr
    check_edited(mnt, conn, ident, 'edited in emacs')


@pytest.mark.parametrize('tool', ['perl', 'patch', 'gio-copy'])
def test_tools_that_write_a_temporary_file(setup, tmp_path, tool):
    mnt, conn = setup()
    ident = image_id(conn, WEB)
    text = open(info_of(mnt, WEB)).read()
    new = ''.join('DESCRIPTION="by %s"\n' % tool
                  if line.startswith('DESCRIPTION=') else line
                  for line in text.splitlines(True))
    (tmp_path / 'new').write_text(new)
    if tool == 'perl':
        cmd = ['perl', '-i', '-pe',
               's/^DESCRIPTION=.*/DESCRIPTION="by perl"/', 'info']
    elif tool == 'patch':
        (tmp_path / 'old').write_text(text)
        diff = run(['diff', '-u', os.fspath(tmp_path / 'old'),
                    os.fspath(tmp_path / 'new')]).stdout
        (tmp_path / 'diff').write_bytes(diff)
        cmd = ['patch', 'info', os.fspath(tmp_path / 'diff')]
    else:
        cmd = ['gio', 'copy', os.fspath(tmp_path / 'new'), 'info']
    r = run(cmd, cwd=custom(mnt, WEB), env=tool_env(tmp_path))
    assert r.returncode == 0, r.stderr
    check_edited(mnt, conn, ident, 'by %s' % tool)


def test_mv_info_out_of_its_directory_loses_nothing(setup):
    """rename(2) of info to another directory is EXDEV, so mv copies and
    unlinks: the copy is made, the source is only marked."""
    mnt, conn = setup()
    ident = image_id(conn, WEB)
    os.mkdir(custom(mnt, 'moved-here', BJ))
    expect_errno(errno.EXDEV, os.rename, info_of(mnt, WEB),
                 info_of(mnt, 'moved-here', BJ))
    r = run(['mv', info_of(mnt, WEB), custom(mnt, 'moved-here', BJ) + '/'])
    assert r.returncode == 0, r.stderr
    copy = read_info(info_of(mnt, 'moved-here', BJ))
    assert copy['SOURCE'] == 'copy:%s@%s' % (ident, GZ)
    assert committed(conn, GZ)[WEB] == ident    # marked, not deleted
    write_file(info_of(mnt, WEB), '')           # info made again: back
    assert read_info(info_of(mnt, WEB))['ID'] == ident


# --- two mounts of one account ----------------------------------------------

@pytest.mark.local_only     # two daemons on one catalog file
def test_two_mounts_through_delete_and_recreate(mount, seeded_db, catalog):
    db = seeded_db()
    conn = catalog(db)
    conn.execute("UPDATE settings SET value = 100 WHERE key = "
                 "'max_daily_ops'")
    conn.commit()
    a = mount(db=db)
    b = mount(db=db)
    seen = []
    for n in range(6):
        maker, other = (a, b) if n % 2 == 0 else (b, a)
        os.mkdir(custom(maker, 'cycle'))
        write_file(info_of(maker, 'cycle'), 'DESCRIPTION="round %d"\n' % n)
        ident = read_info(info_of(maker, 'cycle'))['ID']
        assert ident not in seen
        seen.append(ident)

        def shows(m=other, ident=ident, n=n):
            try:
                got = read_info(info_of(m, 'cycle'))
            except OSError:
                return False
            assert got['ID'] in seen, got       # never anything else
            return got['ID'] == ident and \
                got['DESCRIPTION'] == 'round %d' % n
        assert wait_for(shows, VISIBLE_WITHIN), (n, 'not shown')
        r = run(['rm', '-r', custom(other, 'cycle')])
        assert r.returncode == 0, (n, r.stderr)
        assert wait_for(lambda m=maker: 'cycle' not in listing(custom(m)),
                        VISIBLE_WITHIN), (n, 'still listed')
        expect_errno(errno.ENOENT, os.stat, info_of(maker, 'cycle'))
    assert 'cycle' not in committed(conn, GZ)
    assert pending(conn, GZ) == []
