# SPDX-License-Identifier: GPL-2.0
"""Mounted tests of importing a custom image from a URL (issue 5).

mkdir R/custom/N, then a text with IMPORT_URL= and the OS keys written to
its info commits an import: STATE=IMPORTING with PROGRESS while the daemon
downloads the file with libcurl in its background threads, then NORMAL with
FORMAT, SHA256 and SIZE_GB from the file's own bytes, or IMPORTFAILED with
an ERROR naming the cause.

The disks are real ones, made once per session with qemu-img (qcow2, vmdk
sparse and text descriptors, vpc fixed and dynamic, raw), served by a
loopback HTTP(S) server (tests/imageserver.py) that can also answer 404,
500, 500-then-200, trickle, cut a body short, redirect and hang. Every wait
polls the mount with a deadline; nothing sleeps to wait for a state.
"""

import errno
import hashlib
import math
import os
import random
import re
import signal
import struct
import subprocess
import time
import urllib.parse
from collections import namedtuple

import pytest

from conftest import DEMO_ACCOUNT, SLOW, fusermount, wait_for
from imageserver import ImageServer, make_cert, refused_port
from helpers import (ename, expect_errno, listing, quote, read_info,
                     write_all, write_file)
from test_custom import (BJ, CREATED_RE, GZ, ID_RE, ops_count, pending,
                         prepare, rows, statvfs_slots)

KEY_ORDER = ['ID', 'NAME', 'TYPE', 'REGION', 'OWNER', 'OS_NAME', 'OS_TYPE',
             'PLATFORM', 'ARCH', 'BITS', 'SIZE_GB', 'STATE', 'PROGRESS',
             'CREATED', 'DESCRIPTION', 'SOURCE', 'FORMAT', 'SHA256',
             'PROVIDER', 'PRICE', 'SHARED_WITH', 'ERROR']

GIB = 1 << 30
MIB = 1 << 20

IMPORT_WITHIN = 15.0 * SLOW     # s: a plain import (or a trickle) is over
FAIL_WITHIN = 30.0 * SLOW       # s: a failure, retries with backoff included
RESTART_WITHIN = 20.0 * SLOW    # s: after a remount, the import is over
VISIBLE_WITHIN = 10.0 * SLOW    # s: a deadline to poll to, not a claim
UNMOUNT_WITHIN = 4.0 * SLOW     # s: "a few seconds" for the daemon to exit
IMPORT_TIMEOUT = 2      # s: -o import_timeout= of the timeout test
POLL = 0.02

# 64 KiB every 0.1 s: 1.5 MiB last ~2.4 s (progress, EBUSY, restarts)
TRICKLE = dict(chunk=64 * 1024, delay=0.1)

OS_KEYS = dict(OS_TYPE='linux', PLATFORM='Ubuntu', ARCH='x86_64')


# --- the disks, made once per session ---------------------------------------

Disk = namedtuple('Disk', 'name path format size_gb data')


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def _qemu_img(cwd, *args):
    r = subprocess.run(['qemu-img', *args], cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    assert r.returncode == 0, 'qemu-img %s: %s' % (
        ' '.join(args), r.stdout.decode(errors='replace'))


def _vhd_footer_size(data):
    footer = data[-512:]
    assert footer[:8] == b'conectix', 'no VHD footer'
    return struct.unpack('>Q', footer[48:56])[0]


def _descriptor_size(text):
    sectors = sum(int(m.group(1)) for m in re.finditer(
        r'^R[WD]\s+(\d+)\s+\w+', text, re.M))
    return sectors * 512


@pytest.fixture(scope='session')
def disks(tmp_path_factory):
    """{name: Disk}: real disk images of each format, a few MiB at most,
    each with the virtual size its SIZE_GB must come from."""
    for tool in ('qemu-img', 'qemu-io'):
        if subprocess.run(['sh', '-c', 'command -v %s' % tool],
                          stdout=subprocess.DEVNULL).returncode:
            pytest.fail('%s not found: apt-get install qemu-utils' % tool,
                        pytrace=False)
    d = tmp_path_factory.mktemp('disks')
    rnd = random.Random(5)
    out = {}

    def add(name, fmt, virtual, path=None):
        path = d / (path or name)
        data = path.read_bytes()
        out[name] = Disk(name, os.fspath(path), fmt,
                         math.ceil(virtual / GIB), data)

    # raw: its length is its size; a few MiB not a whole number of sectors
    raw = rnd.randbytes(3 * MIB + 12345)
    (d / 'disk.raw').write_bytes(raw)
    add('disk.raw', 'raw', len(raw))
    # the trickled one (raw too): 1.5 MiB
    (d / 'slow.raw').write_bytes(rnd.randbytes(3 * MIB // 2))
    add('slow.raw', 'raw', 3 * MIB // 2)
    (d / 'data2m').write_bytes(rnd.randbytes(2 * MIB))

    # qcow2: 2 MiB of data, then grown to 2.5 GiB: SIZE_GB 3, not 1
    _qemu_img(d, 'convert', '-f', 'raw', '-O', 'qcow2', 'data2m',
              'disk.qcow2')
    _qemu_img(d, 'resize', '-f', 'qcow2', 'disk.qcow2', '2560M')
    q = (d / 'disk.qcow2').read_bytes()
    assert q[:4] == b'QFI\xfb' and \
        struct.unpack('>Q', q[24:32])[0] == 2560 * MIB
    add('disk.qcow2', 'qcow2', 2560 * MIB)
    # a qcow2 header cut short
    (d / 'cut.qcow2').write_bytes(q[:20])
    out['cut.qcow2'] = Disk('cut.qcow2', os.fspath(d / 'cut.qcow2'),
                            None, None, q[:20])

    # vmdk, monolithic sparse (KDMV): 1.5 GiB capacity, 2 MiB written
    _qemu_img(d, 'create', '-f', 'vmdk', 'sparse.vmdk', '1536M')
    r = subprocess.run(['qemu-io', '-f', 'vmdk', '-c', 'write -P 0x5a 0 2M',
                        'sparse.vmdk'], cwd=d, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    assert r.returncode == 0, r.stdout
    v = (d / 'sparse.vmdk').read_bytes()
    assert v[:4] == b'KDMV' and \
        struct.unpack('<Q', v[12:20])[0] * 512 == 1536 * MIB
    add('sparse.vmdk', 'vmdk', 1536 * MIB)

    # vmdk text descriptors: one flat extent of 1025 MiB (SIZE_GB 2), and
    # three extents (2 GiB + 2 GiB + 1 MiB: SIZE_GB 5, the sum)
    for name, sub, size in (('flat.vmdk', 'monolithicFlat', 1025),
                            ('split.vmdk', 'twoGbMaxExtentFlat', 4097)):
        _qemu_img(d, 'create', '-f', 'vmdk', '-o', 'subformat=' + sub, name,
                  '%dM' % size)
        text = (d / name).read_text()
        assert text.startswith('# Disk DescriptorFile'), text
        assert _descriptor_size(text) == size * MIB, text
        for extent in re.findall(r'^R[WD]\s+\d+\s+\w+\s+"([^"]+)"', text,
                                 re.M):
            os.unlink(d / extent)               # only the descriptor is served
        add(name, 'vmdk', size * MIB)
    assert len(re.findall(r'^RW ', (d / 'split.vmdk').read_text(),
                          re.M)) == 3

    # vhd (vpc): fixed (data + footer) and dynamic; qemu-img rounds the
    # size to a CHS geometry, so the expected size is the footer's
    _qemu_img(d, 'create', '-f', 'vpc', '-o', 'subformat=fixed',
              'fixed.vhd', '4M')
    add('fixed.vhd', 'vhd', _vhd_footer_size((d / 'fixed.vhd').read_bytes()))
    _qemu_img(d, 'create', '-f', 'vpc', '-o', 'subformat=dynamic',
              'dynamic.vhd', '2560M')
    size = _vhd_footer_size((d / 'dynamic.vhd').read_bytes())
    assert 2560 * MIB <= size < 2561 * MIB, size
    add('dynamic.vhd', 'vhd', size)
    return out


@pytest.fixture(scope='session')
def cert(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1: (certfile, keyfile)."""
    return make_cert(os.fspath(tmp_path_factory.mktemp('tls')))


@pytest.fixture
def server(disks):
    """The loopback HTTP server of the disks, stopped at teardown."""
    srv = ImageServer({n: d.path for n, d in disks.items()}).start()
    yield srv
    srv.stop()


@pytest.fixture
def tls_server(disks, cert):
    srv = ImageServer({n: d.path for n, d in disks.items()}, *cert).start()
    yield srv
    srv.stop()


@pytest.fixture
def importer(server, mount, seeded_db, catalog):
    """importer(settings=, ops=, opts=, xattr=True) -> (mnt, conn).

    A fresh seeded catalog with a high daily limit (many operations per
    test), prepared with sqlite3, then mounted with -o xattr.
    """
    def factory(settings=None, ops=None, opts=(), xattr=True):
        db = seeded_db()
        conn = catalog(db)
        prepare(conn, dict({'max_daily_ops': 1000}, **(settings or {})), ops)
        mnt = mount(db=db, extra_opts=(['xattr'] if xattr else []) +
                    list(opts))
        return mnt, conn

    return factory


# --- helpers -----------------------------------------------------------------

def import_text(url, sha=None, description=None, **keys):
    """The info text of an import: IMPORT_URL and the OS keys."""
    keys = dict(OS_KEYS, **keys)
    lines = ['IMPORT_URL=%s' % quote(url)]
    lines += ['%s=%s' % (k, quote(v)) for k, v in keys.items()
              if v is not None]
    if sha is not None:
        lines.append('SHA256=%s' % quote(sha))
    if description is not None:
        lines.append('DESCRIPTION=%s' % quote(description))
    return ''.join(line + '\n' for line in lines)


def image_dir(mnt, name, region=GZ):
    return os.path.join(mnt, region, 'custom', name)


def start_import(mnt, name, url, region=GZ, **kw):
    """mkdir + write info + close: the import's directory."""
    path = image_dir(mnt, name, region)
    os.mkdir(path)
    write_file(os.path.join(path, 'info'), import_text(url, **kw))
    return path


def shown_url(url):
    """A URL as SOURCE shows it: no user info, no query, no fragment."""
    u = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((u.scheme, u.netloc.rpartition('@')[2],
                                    u.path, '', ''))


def check_order(info):
    keys = list(info)
    unknown = [k for k in keys if k not in KEY_ORDER]
    assert not unknown, 'unknown keys %s in %s' % (unknown, keys)
    assert keys == sorted(keys, key=KEY_ORDER.index), \
        'keys out of order: %s' % keys


def check_progress(info):
    if info.get('STATE') == 'IMPORTING':
        assert re.fullmatch(r'\d+', info.get('PROGRESS', '')), \
            'IMPORTING without a PROGRESS=<n>: %r' % info


def wait_state(path, states, timeout, seen=None):
    """Poll the info of image directory path until its STATE is one of
    states; its info then. seen collects every info read."""
    if isinstance(states, str):
        states = (states,)
    deadline = time.monotonic() + timeout
    while True:
        info = read_info(os.path.join(path, 'info'))
        check_progress(info)
        if seen is not None:
            seen.append(info)
        if info.get('STATE') in states:
            return info
        if time.monotonic() > deadline:
            pytest.fail('%s: STATE=%s after %.0f s, expected %s: %r' % (
                path, info.get('STATE'), timeout, '/'.join(states), info))
        time.sleep(POLL)


def xattr(path, key):
    """user.imagefs.<key> of path as text, None when absent (ENODATA)."""
    try:
        return os.getxattr(path, 'user.imagefs.' + key).decode()
    except OSError as e:
        assert e.errno == errno.ENODATA, '%s %s: %s' % (path, key,
                                                        ename(e.errno))
        return None


def all_xattrs(path):
    return {k: os.getxattr(path, k) for k in os.listxattr(path)}


def check_imported(mnt, conn, path, url, disk, region=GZ, last_error=False,
                   **kw):
    """The image of a finished import: every key as issue 5 says.

    last_error: the test made a syscall on the image fail before, which
    user.imagefs.error (the last error of the directory) may still show.
    """
    info = wait_state(path, ('NORMAL', 'IMPORTFAILED'), IMPORT_WITHIN)
    assert info['STATE'] == 'NORMAL', info
    keys = dict(OS_KEYS, **{k: v for k, v in kw.items() if k.isupper()})
    check_order(info)
    assert ID_RE.match(info['ID']), info
    assert info['NAME'] == os.path.basename(path)
    assert info['TYPE'] == 'custom'
    assert info['REGION'] == region
    assert info['OWNER'] == DEMO_ACCOUNT
    assert CREATED_RE.match(info['CREATED']), info
    for k, v in keys.items():
        if v is None:
            assert k not in info, (k, info)
        else:
            assert info.get(k) == v, (k, info)
    if kw.get('description') is not None:
        assert info['DESCRIPTION'] == kw['description']
    assert info['SOURCE'] == 'import:' + shown_url(url), info
    assert info.get('FORMAT') == disk.format, info
    assert info.get('SHA256') == sha256(disk.data), info
    assert info.get('SIZE_GB') == str(disk.size_gb), (disk.name, info)
    for k in ('PROGRESS', 'ERROR', 'IMPORT_URL'):
        assert k not in info, (k, info)
    assert listing(path) == ['info']
    # the kernel's attributes follow the text: st_size is its exact length
    info_path = os.path.join(path, 'info')
    with open(info_path, 'rb') as f:
        data = f.read()
    assert wait_for(lambda: os.stat(info_path).st_size == len(data), 1.0), \
        'st_size %d, info is %d bytes' % (os.stat(info_path).st_size,
                                          len(data))
    # the xattrs say the same (-o xattr)
    assert xattr(path, 'state') == 'NORMAL'
    assert xattr(path, 'format') == disk.format
    assert xattr(path, 'sha256') == sha256(disk.data)
    assert xattr(path, 'size_gb') == str(disk.size_gb)
    assert xattr(path, 'progress') is None
    if not last_error:
        assert not xattr(path, 'error'), xattr(path, 'error')
    # and the catalog
    r = rows(conn, 'SELECT * FROM images WHERE id = ?', info['ID'])
    assert r and r[0]['state'] == 'NORMAL' and r[0]['name'] == info['NAME']
    return info


def check_failed(mnt, conn, path, words, timeout=FAIL_WITHIN):
    """The image fails with words in ERROR (and user.imagefs.error), holds
    its slot until rm -r, and unlink + rmdir free it."""
    info = wait_state(path, ('IMPORTFAILED', 'NORMAL'), timeout)
    assert info['STATE'] == 'IMPORTFAILED', info
    check_order(info)
    assert 'PROGRESS' not in info, info
    err = info.get('ERROR', '')
    if words:
        assert words.lower() in err.lower(), \
            'ERROR=%r does not say %r' % (err, words)
    else:
        assert err, 'IMPORTFAILED without an ERROR: %r' % info
    xerr = xattr(path, 'error') or ''
    if words:
        assert words.lower() in xerr.lower(), \
            'user.imagefs.error=%r does not say %r' % (xerr, words)
    else:
        assert xerr
    assert xattr(path, 'state') == 'IMPORTFAILED'
    assert xattr(path, 'progress') is None
    # the slot stays held until rm -r
    custom = os.path.dirname(path)
    total, free = statvfs_slots(custom)
    ident = info['ID']
    assert rows(conn, 'SELECT state FROM images WHERE id = ?',
                ident)[0]['state'] == 'IMPORTFAILED'
    os.unlink(os.path.join(path, 'info'))       # marks the image
    assert listing(path) == []
    assert statvfs_slots(custom) == (total, free), 'the directory holds it'
    os.rmdir(path)                              # deletes it
    assert not rows(conn, 'SELECT 1 FROM images WHERE id = ?', ident)
    assert statvfs_slots(custom) == (total, free + 1)
    assert os.path.basename(path) not in listing(custom)
    return info


# --- imports that work: each format, its SIZE_GB, FORMAT and SHA256 ---------

FORMATS = {
    'qcow2': ('disk.qcow2', dict(PLATFORM='Ubuntu', ARCH='arm64')),
    'vmdk-sparse': ('sparse.vmdk', dict(OS_NAME='Debian 12 64-bit',
                                        PLATFORM=None)),
    'vmdk-descriptor-flat': ('flat.vmdk', {}),
    'vmdk-descriptor-3-extents': ('split.vmdk', {}),
    'vhd-fixed': ('fixed.vhd', dict(OS_TYPE='windows', PLATFORM=None,
                                    OS_NAME='Windows Server 2022')),
    'vhd-dynamic': ('dynamic.vhd', dict(OS_TYPE='windows',
                                        PLATFORM='Windows')),
    'raw': ('disk.raw', dict(ARCH='i386', PLATFORM='CentOS',
                             OS_NAME='CentOS 7.9 32-bit')),
}


@pytest.mark.parametrize('case', list(FORMATS))
def test_import_format(importer, server, disks, case):
    name, keys = FORMATS[case]
    disk = disks[name]
    mnt, conn = importer()
    url = server.url(name)
    desc = 'imported %s: "%s"' % (case, name)
    path = start_import(mnt, 'imp-' + case, url, description=desc, **keys)
    info = check_imported(mnt, conn, path, url, disk, description=desc,
                          **keys)
    assert ops_count(conn, GZ) == 1             # the commit, once
    assert server.hits(url) == 1
    assert info['SIZE_GB'] == str(disk.size_gb)


def test_import_with_right_sha256(importer, server, disks):
    disk = disks['disk.qcow2']
    mnt, conn = importer()
    url = server.url(disk.name)
    path = start_import(mnt, 'checked', url, sha=sha256(disk.data))
    check_imported(mnt, conn, path, url, disk)


def test_import_without_content_length(importer, server, disks):
    mnt, conn = importer()
    for n, q in enumerate((dict(length=0), dict(chunked=1))):
        disk = disks['disk.qcow2' if n else 'disk.raw']
        url = server.url(disk.name, **q)
        path = start_import(mnt, 'nolen-%d' % n, url)
        check_imported(mnt, conn, path, url, disk)


def test_file_url(importer, disks, tmp_path):
    disk = disks['disk.qcow2']
    mnt, conn = importer(opts=['import_dirs=%s:%s' % (
        os.path.dirname(disk.path), tmp_path)])
    url = 'file://' + disk.path
    assert os.path.isabs(disk.path)
    path = start_import(mnt, 'from-file', url)
    check_imported(mnt, conn, path, url, disk)
    gone = 'file://' + os.fspath(tmp_path / 'no-such-disk.qcow2')
    path = start_import(mnt, 'from-no-file', gone)
    check_failed(mnt, conn, path, None)


def test_deleted_import_leaves_no_key_behind(importer, disks):
    # rm -r deletes the image whole: the next image committed under the
    # same name shows none of the import's FORMAT and SHA256
    disk = disks['disk.qcow2']
    mnt, conn = importer(opts=['import_dirs=' + os.path.dirname(disk.path)])
    url = 'file://' + disk.path
    path = start_import(mnt, 'twice', url)
    first = check_imported(mnt, conn, path, url, disk)
    os.unlink(os.path.join(path, 'info'))
    os.rmdir(path)
    os.mkdir(path)
    assert listing(path) == []
    write_file(os.path.join(path, 'info'), 'DESCRIPTION=second\n')
    info = read_info(os.path.join(path, 'info'))
    assert info['ID'] != first['ID'], info
    assert info['SOURCE'].startswith('instance:'), info
    assert 'FORMAT' not in info and 'SHA256' not in info, info
    r = rows(conn, 'SELECT format, sha256 FROM images WHERE id = ?',
             info['ID'])
    assert (r[0]['format'], r[0]['sha256']) == (None, None), dict(r[0])


def test_redirects_followed_up_to_5(importer, server, disks):
    mnt, conn = importer()
    disk = disks['disk.qcow2']
    for n in (1, 5):
        url = server.url(disk.name, redirect=n)
        path = start_import(mnt, 'redirected-%d' % n, url)
        info = check_imported(mnt, conn, path, url, disk)
        # as written (no query), not the target
        assert info['SOURCE'] == 'import:' + shown_url(url)
    # the 6th redirect is not followed: the file itself is never asked for
    url = server.url(disk.name, redirect=6, tag='six')
    path = start_import(mnt, 'redirected-6', url)
    check_failed(mnt, conn, path, None)
    assert server.hits(url) >= 1
    assert server.hits(server.url(disk.name, redirect=0, tag='six')) == 0


def test_import_text_in_several_writes(importer, server, disks):
    """A text written line by line (each write ends a line) commits at
    close like one written at once."""
    mnt, conn = importer()
    disk = disks['disk.raw']
    url = server.url(disk.name)
    path = image_dir(mnt, 'in-lines')
    os.mkdir(path)
    fd = os.open(os.path.join(path, 'info'), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for line in import_text(url).splitlines(keepends=True):
            write_all(fd, line)
    finally:
        os.close(fd)
    check_imported(mnt, conn, path, url, disk)
    assert ops_count(conn, GZ) == 1


# --- while it runs ---------------------------------------------------------

def test_committed_as_importing(importer, server, disks):
    mnt, conn = importer()
    disk = disks['slow.raw']
    url = server.url(disk.name, **TRICKLE)
    custom = os.path.join(mnt, GZ, 'custom')
    before = statvfs_slots(custom)
    path = start_import(mnt, 'running', url, description='still coming')
    info = read_info(os.path.join(path, 'info'))
    assert info['STATE'] == 'IMPORTING', info
    assert re.fullmatch(r'\d+', info.get('PROGRESS', '')), info
    assert 0 <= int(info['PROGRESS']) <= 100
    assert ID_RE.match(info['ID'])
    assert info['SOURCE'] == 'import:' + shown_url(url)
    assert info['DESCRIPTION'] == 'still coming'
    for k, v in OS_KEYS.items():
        assert info[k] == v
    assert 'IMPORT_URL' not in info and 'ERROR' not in info
    check_order(info)
    assert listing(path) == ['info']
    assert xattr(path, 'state') == 'IMPORTING'
    assert re.fullmatch(r'\d+', xattr(path, 'progress') or ''), \
        xattr(path, 'progress')
    assert statvfs_slots(custom) == (before[0], before[1] - 1)  # mkdir
    assert ops_count(conn, GZ) == 1
    r = rows(conn, 'SELECT state FROM images WHERE id = ?', info['ID'])
    assert r[0]['state'] == 'IMPORTING'
    check_imported(mnt, conn, path, url, disk, description='still coming')
    assert ops_count(conn, GZ) == 1             # charged once


@pytest.mark.parametrize('known', [True, False], ids=['length', 'no-length'])
def test_progress_rises(importer, server, disks, known):
    """PROGRESS in info and user.imagefs.progress rise while it runs:
    a percentage of Content-Length, or the bytes so far without one."""
    mnt, conn = importer()
    disk = disks['slow.raw']
    q = dict(TRICKLE) if known else dict(TRICKLE, length=0)
    url = server.url(disk.name, **q)
    path = start_import(mnt, 'progress', url)
    seen, xseen = [], []
    deadline = time.monotonic() + IMPORT_WITHIN
    while True:
        info = read_info(os.path.join(path, 'info'))
        check_progress(info)
        if info['STATE'] != 'IMPORTING':
            break
        seen.append(int(info['PROGRESS']))
        x = xattr(path, 'progress')
        if x is not None:                       # it may just have ended
            xseen.append(int(x))
        assert time.monotonic() < deadline, 'still IMPORTING: %r' % info
        time.sleep(POLL)
    assert info['STATE'] == 'NORMAL', info
    distinct = sorted(set(seen))
    assert len(distinct) >= 2, \
        'PROGRESS did not move in info: %s' % distinct
    assert seen == sorted(seen), 'PROGRESS went back: %s' % seen
    assert len(set(xseen)) >= 2, \
        'user.imagefs.progress did not move: %s' % sorted(set(xseen))
    assert xseen == sorted(xseen), xseen
    top = 100 if known else len(disk.data)
    assert all(0 <= v <= top for v in seen + xseen), (seen, xseen)
    if not known:
        assert max(seen) > 100, \
            'without Content-Length PROGRESS counts bytes: %s' % distinct
    check_imported(mnt, conn, path, url, disk)


def test_delete_while_importing_is_ebusy(importer, server, disks):
    mnt, conn = importer()
    disk = disks['slow.raw']
    url = server.url(disk.name, **TRICKLE)
    path = start_import(mnt, 'busy', url)
    info = read_info(os.path.join(path, 'info'))
    assert info['STATE'] == 'IMPORTING', info
    expect_errno(errno.EBUSY, os.unlink, os.path.join(path, 'info'))
    r = subprocess.run(['rm', '-r', path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=10)
    assert r.returncode != 0
    assert b'busy' in r.stderr, r.stderr
    assert listing(path) == ['info']
    assert read_info(os.path.join(path, 'info'))['ID'] == info['ID']
    check_imported(mnt, conn, path, url, disk, last_error=True)
    # once NORMAL, rm -r works
    r = subprocess.run(['rm', '-r', path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=10)
    assert r.returncode == 0, r.stderr
    assert 'busy' not in listing(os.path.join(mnt, GZ, 'custom'))


def test_two_at_once_third_queued(importer, server, disks):
    mnt, conn = importer()
    disk = disks['slow.raw']
    urls = {t: server.url(disk.name, tag=t, **TRICKLE) for t in 'abc'}
    paths = {t: start_import(mnt, 'queue-' + t, urls[t]) for t in 'abc'}
    queued_seen = None
    deadline = time.monotonic() + 3 * IMPORT_WITHIN
    while True:
        infos = {t: read_info(os.path.join(p, 'info'))
                 for t, p in paths.items()}
        for info in infos.values():
            check_progress(info)
        if all(i['STATE'] != 'IMPORTING' for i in infos.values()):
            break
        if queued_seen is None and server.active() == 2:
            waiting = [t for t in 'abc' if server.hits(urls[t]) == 0]
            if len(waiting) == 1:
                t = waiting[0]
                info = read_info(os.path.join(paths[t], 'info'))
                if server.hits(urls[t]) == 0:
                    queued_seen = (t, info)
        assert time.monotonic() < deadline, infos
        assert server.max_active() <= 2, \
            '%d downloads at once' % server.max_active()
        time.sleep(POLL)
    assert server.max_active() == 2, \
        'never two downloads at once: %d' % server.max_active()
    assert queued_seen, 'no moment with two downloads and one queued'
    t, info = queued_seen
    assert info['STATE'] == 'IMPORTING' and info.get('PROGRESS') == '0', \
        'the queued import %s: %r' % (t, info)
    for t in 'abc':
        check_imported(mnt, conn, paths[t], urls[t], disk)
        assert server.hits(urls[t]) == 1
    assert ops_count(conn, GZ) == 3


# --- what is refused at write(2) and close(2) ------------------------------

SHA_OK = 'ab' * 32
# keys that are missing are known only at close: a text may come line by
# line (test_import_text_in_several_writes), so its write(2) succeeds
MISSING_KEYS = ('no-os-type', 'no-os-name-nor-platform', 'no-arch')
EINVAL_TEXTS = {
    'no-os-type': dict(OS_TYPE=None),
    'no-os-name-nor-platform': dict(PLATFORM=None),
    'no-arch': dict(ARCH=None),
    'bad-arch': dict(ARCH='mips'),
    'bad-os-type': dict(OS_TYPE='plan9'),
    'ftp-scheme': dict(url='ftp://127.0.0.1/disk.qcow2'),
    'sftp-scheme': dict(url='sftp://127.0.0.1/disk.qcow2'),
    'gopher-scheme': dict(url='gopher://127.0.0.1/disk.qcow2'),
    'no-scheme': dict(url='127.0.0.1/disk.qcow2'),
    'empty-url': dict(url=''),
    'sha256-upper-case': dict(sha=SHA_OK.upper()),
    'sha256-63-digits': dict(sha=SHA_OK[:63]),
    'sha256-65-digits': dict(sha=SHA_OK + 'a'),
    'sha256-not-hex': dict(sha='g' * 64),
    'sha256-empty': dict(sha=''),
}


@pytest.mark.parametrize('case', list(EINVAL_TEXTS))
def test_bad_import_text_is_einval(importer, server, case):
    mnt, conn = importer()
    kw = dict(EINVAL_TEXTS[case])
    url = kw.pop('url', server.url('disk.qcow2'))
    text = import_text(url, **kw)
    path = image_dir(mnt, 'bad-' + case)
    os.mkdir(path)
    custom = os.path.dirname(path)
    slots = statvfs_slots(custom)
    fd = os.open(os.path.join(path, 'info'), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        if case in MISSING_KEYS:
            assert os.write(fd, text.encode()) == len(text.encode())
        else:
            expect_errno(errno.EINVAL, os.write, fd, text.encode())
    finally:
        expect_errno(errno.EINVAL, os.close, fd)
    assert listing(path) == [], 'refused, yet committed: %s' % text
    assert os.path.basename(path) in pending(conn, GZ)
    assert ops_count(conn, GZ) == 0
    assert statvfs_slots(custom) == slots
    assert xattr(path, 'error'), 'no user.imagefs.error'
    assert server.requests() == [], 'a refused text downloaded'
    os.rmdir(path)


def test_daily_limit_is_eagain(importer, server):
    mnt, conn = importer(settings={'max_daily_ops': 5}, ops={GZ: 5})
    url = server.url('disk.qcow2')
    path = image_dir(mnt, 'sixth')
    os.mkdir(path)
    fd = os.open(os.path.join(path, 'info'), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        expect_errno(errno.EAGAIN, os.write, fd, import_text(url).encode())
    finally:
        expect_errno(errno.EAGAIN, os.close, fd)
    assert listing(path) == []
    assert ops_count(conn, GZ) == 5
    assert server.requests() == []
    # another region has its own day
    path = start_import(mnt, 'elsewhere', url, region=BJ)
    assert read_info(os.path.join(path, 'info'))['STATE'] in (
        'IMPORTING', 'NORMAL')
    assert ops_count(conn, BJ) == 1
    wait_state(path, 'NORMAL', IMPORT_WITHIN)


# --- failures: STATE=IMPORTFAILED, ERROR names the cause --------------------

def _fail_tls(ctx):
    srv = ctx.request.getfixturevalue('tls_server')

    def after():
        assert srv.tls_failures >= 1, 'no TLS handshake was tried'
        assert srv.requests() == [], \
            'a request got through an unverified TLS connection'
    ctx.after = after
    return srv.url('disk.qcow2')


def _fail_refused(ctx):
    sock, port = refused_port()
    ctx.request.addfinalizer(sock.close)
    return 'http://127.0.0.1:%d/files/disk.qcow2' % port


def _fail_500(ctx):
    url = ctx.server.url('disk.qcow2', status=500)

    def after():
        times = [t for t, p, _ in ctx.server.requests()]
        assert len(times) == 3, '%d attempts, not 3' % len(times)
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert all(g >= 0.1 for g in gaps), 'no backoff: %s' % gaps
    ctx.after = after
    return url


class FailCtx:
    def __init__(self, request, server, disks):
        self.request = request
        self.server = server
        self.disks = disks
        self.after = None


FAILURES = {
    # case: (url from ctx, words in ERROR, importer kwargs, text kwargs)
    'http-404': (lambda c: c.server.url('disk.qcow2', status=404),
                 'HTTP 404', {}, {}),
    'http-500-always': (_fail_500, 'HTTP 500', {}, {}),
    'tls-self-signed': (_fail_tls, 'TLS', {}, {}),
    'timeout': (lambda c: c.server.url('disk.qcow2', hang=1), 'timeout',
                dict(opts=['import_timeout=%d' % IMPORT_TIMEOUT]), {}),
    'truncated': (lambda c: c.server.url(
        'disk.qcow2', cut=len(c.disks['disk.qcow2'].data) // 2),
        'truncated', {}, {}),
    'checksum': (lambda c: c.server.url('disk.qcow2'), 'checksum', {},
                 dict(sha='0' * 64)),
    'too-large': (lambda c: c.server.url('disk.raw'), 'too large',
                  dict(settings={'max_import_bytes': MIB}), {}),
    'too-large-no-length': (lambda c: c.server.url('disk.raw', length=0),
                            'too large',
                            dict(settings={'max_import_bytes': MIB}), {}),
    'too-large-chunked': (lambda c: c.server.url('disk.raw', chunked=1),
                          'too large',
                          dict(settings={'max_import_bytes': MIB}), {}),
    'qcow2-header-cut': (lambda c: c.server.url('cut.qcow2'), 'qcow2', {},
                         {}),
    'connection-refused': (_fail_refused, 'connect', {}, {}),
}


@pytest.mark.parametrize('case', list(FAILURES))
def test_import_fails(request, importer, server, disks, case):
    url_of, words, mount_kw, text_kw = FAILURES[case]
    ctx = FailCtx(request, server, disks)
    url = url_of(ctx)
    mnt, conn = importer(**mount_kw)
    t0 = time.monotonic()
    path = start_import(mnt, 'fails-' + case, url, **text_kw)
    info = read_info(os.path.join(path, 'info'))
    assert info['STATE'] in ('IMPORTING', 'IMPORTFAILED'), info
    assert info['SOURCE'] == 'import:' + shown_url(url)
    assert ops_count(conn, GZ) == 1
    check_failed(mnt, conn, path, words)
    if case == 'timeout':
        assert time.monotonic() - t0 >= IMPORT_TIMEOUT * 0.9, \
            'failed before the low-speed time'
    if ctx.after:
        ctx.after()


def test_500_then_200_is_retried(importer, server, disks):
    mnt, conn = importer()
    disk = disks['disk.qcow2']
    url = server.url(disk.name, fail=1)
    path = start_import(mnt, 'flaky', url)
    check_imported(mnt, conn, path, url, disk)
    assert server.hits(url) == 2


def test_failed_image_removed_with_rm_r(importer, server):
    mnt, conn = importer()
    custom = os.path.join(mnt, GZ, 'custom')
    free = statvfs_slots(custom)[1]
    path = start_import(mnt, 'missing', server.url('nothing', status=404))
    info = wait_state(path, ('IMPORTFAILED', 'NORMAL'), FAIL_WITHIN)
    assert info['STATE'] == 'IMPORTFAILED'
    assert statvfs_slots(custom)[1] == free - 1
    r = subprocess.run(['df', '--output=iavail', custom],
                       stdout=subprocess.PIPE, timeout=10)
    assert r.stdout.decode().split()[-1] == str(free - 1)
    r = subprocess.run(['rm', '-r', path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=10)
    assert r.returncode == 0, r.stderr
    assert 'missing' not in listing(custom)
    assert statvfs_slots(custom)[1] == free


# --- credentials in the URL --------------------------------------------------

SECRET = 'pw-Zq81xKv'


def test_credentials_never_shown(importer, server, disks):
    mnt, conn = importer()
    disk = disks['disk.qcow2']
    cred = 'alice:' + SECRET
    server.credentials = cred
    url = server.url(disk.name, userinfo=cred, auth=1)
    plain = server.url(disk.name, auth=1)
    path = start_import(mnt, 'with-creds', url)
    running = open(os.path.join(path, 'info')).read()
    info = check_imported(mnt, conn, path, plain, disk)
    assert info['SOURCE'] == 'import:' + shown_url(plain)
    # the server asked for them (401 otherwise), so they were used
    assert any(h.get('Authorization') for _, _, h in server.requests())
    # a failing one too: its ERROR must not carry them either
    bad = server.url('nothing', userinfo=cred, status=404)
    bad_path = start_import(mnt, 'with-creds-404', bad)
    failed = wait_state(bad_path, ('IMPORTFAILED', 'NORMAL'), FAIL_WITHIN)
    assert failed['STATE'] == 'IMPORTFAILED'
    assert failed['SOURCE'] == 'import:' + shown_url(
        server.url('nothing', status=404))
    custom = os.path.dirname(path)
    shown = [running, open(os.path.join(path, 'info')).read(),
             open(os.path.join(bad_path, 'info')).read()]
    for p in (path, bad_path, custom, os.path.dirname(custom)):
        shown += [repr(v) for v in all_xattrs(p).values()]
    for text in shown:
        assert SECRET not in text and 'alice' not in text, text
    assert SECRET not in mnt.log_text(), 'the password is in the log'


# --- daemons that go away, and other daemons --------------------------------

def _wait_downloading(server, url, timeout=IMPORT_WITHIN):
    assert wait_for(lambda: server.sent(url) > 0, timeout), \
        'the download of %s did not start' % url


def test_sigkill_mid_import_then_remount(importer, server, disks, mount):
    mnt, conn = importer()
    disk = disks['slow.raw']
    url = server.url(disk.name, **TRICKLE)
    path = start_import(mnt, 'killed', url)
    ident = read_info(os.path.join(path, 'info'))['ID']
    _wait_downloading(server, url)
    mnt.killed = True
    os.kill(mnt.proc.pid, signal.SIGKILL)
    mnt.proc.wait(10)
    fusermount(mnt, '-u', '-z')
    mnt.reap()
    assert rows(conn, 'PRAGMA integrity_check')[0][0] == 'ok'
    again = mount(db=mnt.db, extra_opts=['xattr'])
    path = image_dir(again, 'killed')
    info = wait_state(path, ('NORMAL', 'IMPORTFAILED'), RESTART_WITHIN)
    assert info['ID'] == ident
    if info['STATE'] == 'IMPORTFAILED':
        assert 'interrupted' in info.get('ERROR', '').lower(), info
    else:
        check_imported(again, conn, path, url, disk)
        assert server.hits(url) >= 2, 'NORMAL without downloading again'
    assert ops_count(conn, GZ) == 1             # the restart is not charged


def test_unmount_mid_import_then_remount(importer, server, disks, mount):
    mnt, conn = importer()
    disk = disks['slow.raw']
    url = server.url(disk.name, **TRICKLE)
    path = start_import(mnt, 'interrupted', url)
    ident = read_info(os.path.join(path, 'info'))['ID']
    _wait_downloading(server, url)
    t0 = time.monotonic()
    status = mnt.unmount()
    took = time.monotonic() - t0
    assert not mnt.killed, 'the daemon did not exit: killed'
    assert status == 0, 'daemon exit status %s' % status
    assert took < UNMOUNT_WITHIN, 'unmount took %.1f s' % took
    assert server.sent(url) < len(disk.data), 'it finished before unmount'
    # the catalog is consistent: the image is there, still to be imported
    assert rows(conn, 'PRAGMA integrity_check')[0][0] == 'ok'
    r = rows(conn, 'SELECT * FROM images WHERE id = ?', ident)
    assert r and r[0]['name'] == 'interrupted', 'the image is gone'
    assert r[0]['state'] == 'IMPORTING', dict(r[0])
    assert ops_count(conn, GZ) == 1
    hits = server.hits(url)
    again = mount(db=mnt.db, extra_opts=['xattr'])
    path = image_dir(again, 'interrupted')
    info = check_imported(again, conn, path, url, disk)
    assert info['ID'] == ident
    assert server.hits(url) == hits + 1, 'the next mount did not restart it'
    assert ops_count(conn, GZ) == 1


def test_other_daemon_sees_the_end(importer, server, disks,
                                             mount):
    a, conn = importer()
    b = mount(db=a.db, extra_opts=['xattr'])
    disk = disks['slow.raw']
    url = server.url(disk.name, **TRICKLE)
    path = start_import(a, 'seen', url)
    b_path = image_dir(b, 'seen')
    b_info = os.path.join(b_path, 'info')
    assert wait_for(lambda: os.path.exists(b_info), VISIBLE_WITHIN), \
        'the other daemon does not show the commit'
    assert read_info(b_info)['STATE'] == 'IMPORTING'
    ident = read_info(os.path.join(path, 'info'))['ID']

    def state():
        return rows(conn, 'SELECT state FROM images WHERE id = ?',
                    ident)[0]['state']
    assert wait_for(lambda: state() != 'IMPORTING', IMPORT_WITHIN), \
        'still IMPORTING in the catalog'
    ended = time.monotonic()
    assert state() == 'NORMAL'

    def b_normal():
        info = read_info(b_info)
        return info['STATE'] == 'NORMAL' and 'FORMAT' in info
    assert wait_for(b_normal, max(0.0, ended + VISIBLE_WITHIN -
                                  time.monotonic())), \
        'the other daemon shows %r %.0f s after the end' % (
            read_info(b_info), VISIBLE_WITHIN)
    info = read_info(b_info)
    assert info['SHA256'] == sha256(disk.data)
    assert 'PROGRESS' not in info
    assert xattr(b_path, 'state') == 'NORMAL'
    check_imported(a, conn, path, url, disk)
