# SPDX-License-Identifier: GPL-2.0
"""Mounted tests of the security model (issue 12; README "Security model").

1. One key per line: names and texts written through the mount refuse
   control characters and the invisible characters of spoofed names; text
   from elsewhere (a hostile peer account on the same catalog, an old
   catalog, the cloud) is shown escaped, so that ls, grep, cut, `. ./info`
   and a terminal see only what is there.
2. Imports only for their owner: a daemon downloads only the imports of
   its own account and Unix user; file:// only under -o import_dirs, only
   regular files, without following symlinks.
3. Secrets stay secret: SOURCE, xattrs, errors and the log never show a
   URL's user info, query or fragment; the catalog is 0600; signing keys
   are wiped from the daemon's memory; the cloud's words are logged
   escaped.

What a hostile peer holds is written into the catalog with sqlite3, as an
older imagefs or a peer's own tool would have left it: the mount refuses
it. Every wait polls with a deadline.
"""

import errno
import os
import re
import stat
import subprocess
import time
import unicodedata
import urllib.parse

import pytest

from conftest import CLOUD, DEMO_ACCOUNT, PEER_ACCOUNT, SLOW, charged
from tcserver import SCHEMA_VERSION
from helpers import (TOOL_ENV, expect_errno, listing, parse_info_pairs,
                     quote, read_info, run, write_file)
import test_import
from test_import import (FAIL_WITHIN, IMPORT_WITHIN, image_dir, sha256,
                         start_import, wait_state)

# the import suite's fixtures: disks made with qemu-img, their HTTP server
disks = test_import.disks
server = test_import.server

GZ = 'ap-guangzhou'
A = DEMO_ACCOUNT
B = PEER_ACCOUNT
ML = 'ml-training-base'         # B's image, shared with A in the seed
WEB = 'web-server-2026'         # A's
BUILD = 'build-agent'           # A's


# --- what the file and the listing show (README "The info file") ------------

def _escape(ch):
    cp = ord(ch)
    if 0xdc80 <= cp <= 0xdcff:          # a byte that is not UTF-8
        return '\\x%02X' % (cp - 0xdc00)
    return '\\u%04X' % cp if cp <= 0xffff else '\\U%08X' % cp


def _decode(raw):
    if isinstance(raw, str):
        raw = raw.encode('utf-8', 'surrogateescape')
    return raw.decode('utf-8', 'surrogateescape')


def text_refused(ch):
    """Cc, Zl, Zp, and bytes that are not UTF-8."""
    return unicodedata.category(ch) in ('Cc', 'Zl', 'Zp', 'Cs')


def name_refused(ch):
    return text_refused(ch) or unicodedata.category(ch) == 'Cf'


def shown_text(raw):
    """A text as info shows it: controls, separators, bad bytes escaped."""
    return ''.join(_escape(c) if text_refused(c) else c
                   for c in _decode(raw))


def shown_name(raw):
    """A name as info and the listing show it: as it is when the mount
    would take it, else with Cf, Cc, Zl, Zp and backslashes escaped, and
    every character of a blank name."""
    s = _decode(raw)
    blank = all(unicodedata.category(c) == 'Zs' for c in s)
    if not blank and not any(name_refused(c) for c in s):
        return s
    return ''.join(_escape(c) if blank or name_refused(c) or c == '\\'
                   else c for c in s)


def terminal_safe(data):
    """What reaches a terminal: valid UTF-8 with no control character but
    the newlines that end lines, no ESC, no C1, no U+2028/U+2029."""
    text = data.decode('utf-8')        # raises on bytes that are not UTF-8
    bad = [c for c in text if c != '\n' and (
        unicodedata.category(c) in ('Cc', 'Zl', 'Zp'))]
    assert not bad, 'control characters reach the terminal: %r' % bad
    return text


def sh_values(cwd, *keys):
    """The values sh reads from ./info, joined with '|'."""
    script = '. ./info && printf "%s" ' + '"|"'.join(
        '"$%s"' % k for k in keys)
    r = subprocess.run(['sh', '-c', script], cwd=cwd, env=TOOL_ENV,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode('utf-8')


def ops_count(conn, account=A, region=GZ):
    return conn.execute(
        'SELECT COALESCE(SUM(count), 0) FROM ops WHERE account = ? AND '
        'region = ?', (account, region)).fetchone()[0]


def custom(mnt, name=None, region=GZ):
    return os.path.join(mnt, region, 'custom', *([name] if name else []))


def peer_dir(mnt, peer=B, region=GZ):
    return os.path.join(mnt, region, 'shared', peer)


# --- 1. names and texts written through the mount ---------------------------

SPOOFED_NAMES = {
    'zero-width space': BUILD + '\u200b',
    'zero-width joiner': 'build\u200dagent',
    'word joiner': 'build\u2060agent',
    'right-to-left override': 'evil\u202etxt.exe',
    'left-to-right isolate': '\u2066build-agent\u2069',
    'right-to-left mark': 'build-agent\u200f',
    'byte order mark': '\ufeffbuild-agent',
    'soft hyphen': 'build\u00adagent',
    'tag character': 'build-agent\U000e0041',
    'only no-break spaces': '\u00a0\u00a0',
    'only ideographic space': '\u3000',
    'only em and thin spaces': '\u2003\u2009 ',
    'line separator': 'build\u2028agent',
    'paragraph separator': 'build\u2029agent',
    'escape sequence': '\x1b[2Jclear',
    'C1 control': 'csi\x9b31m',
    'newline': 'x\nARCH=arm64',
    'tab': 'tab\there',
    'DEL': 'del\x7f',
}

# still names: spaces inside, characters next to the refused ones
GOOD_NAMES = ['build agent', 'no\u00a0break', 'narrow\u202fspace',
              'en\u2013dash', '\u6570\u636e\u5e93 \u4e3b\u673a', 'caf\u00e9',
              'a\u3000b']


def expect_nothing_changed(conn, before, what):
    after = conn.execute("SELECT row, name, description FROM images WHERE "
                         "kind = 'custom' ORDER BY row").fetchall()
    assert after == before, '%s changed the catalog' % what


def expect_write_einval(path, text):
    """open, write text: EINVAL at the write(2), and at close(2) (a refused
    text is refused whole: nothing is committed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        expect_errno(errno.EINVAL, os.write, fd,
                     text if isinstance(text, bytes) else text.encode())
    finally:
        expect_errno(errno.EINVAL, os.close, fd)


def custom_rows(conn):
    return conn.execute("SELECT row, name, description FROM images WHERE "
                        "kind = 'custom' ORDER BY row").fetchall()


@pytest.mark.parametrize('case', list(SPOOFED_NAMES))
def test_spoofing_names_refused(mount, catalog, case):
    """mkdir, mv and NAME= refuse a name that could pass for another."""
    mnt = mount()
    conn = catalog(mnt.db)
    name = SPOOFED_NAMES[case]
    before = custom_rows(conn)
    expect_errno(errno.EINVAL, os.mkdir, custom(mnt, name))
    expect_errno(errno.EINVAL, os.rename, custom(mnt, WEB),
                 custom(mnt, name))
    expect_write_einval(os.path.join(custom(mnt, WEB), 'info'),
                        'NAME=%s\n' % quote(name))
    expect_nothing_changed(conn, before, case)
    assert ops_count(conn) == 0
    assert sorted(listing(custom(mnt))) == sorted([WEB, BUILD])


def test_good_names_kept(mount, catalog):
    mnt = mount()
    for name in GOOD_NAMES:
        os.mkdir(custom(mnt, name))
        assert name in listing(custom(mnt))
        os.rmdir(custom(mnt, name))


CONTROL_TEXTS = {
    'newline': 'line one\nARCH=arm64',
    'carriage return': 'a\rb',
    'tab': 'a\tb',
    'escape sequence': '\x1b]0;title\x07',
    'C1 control': 'a\x85b',
    'DEL': 'a\x7fb',
    'line separator': 'a\u2028b',
}


@pytest.mark.parametrize('case', list(CONTROL_TEXTS))
def test_texts_refuse_controls(mount, catalog, case):
    """DESCRIPTION of a committed image; DESCRIPTION, OS_NAME and
    PLATFORM of a new one: EINVAL at the write, nothing made."""
    mnt = mount()
    conn = catalog(mnt.db)
    text = CONTROL_TEXTS[case]
    before = custom_rows(conn)
    lines = ['DESCRIPTION=%s\n' % quote(text)]
    if not CLOUD:
        lines += ['OS_NAME=%s\n' % quote(text), 'PLATFORM=%s\n' % quote(text)]
    os.mkdir(custom(mnt, 'new'))
    for path, line in [(custom(mnt, WEB), lines[0])] + [
            (custom(mnt, 'new'), line) for line in lines]:
        expect_write_einval(os.path.join(path, 'info'), line)
    assert listing(custom(mnt, 'new')) == []
    os.rmdir(custom(mnt, 'new'))
    expect_nothing_changed(conn, before, case)
    assert ops_count(conn) == 0


# --- 1. a hostile peer on the same catalog ----------------------------------

# (name, description) of images a second account shares with A, as bytes
# where they are not UTF-8: every trick of issue 12
HOSTILE = [
    (BUILD + '\u200b', 'x\nARCH=arm64\nOWNER=tencentcloud\nSOURCE=import:'
     'https://evil.example/x.qcow2'),
    ('\u00a0\u00a0', '\nID=img-evil0000\nTYPE=custom\n'),
    (WEB + '\u202e', '\x1b]0;pwned\x07\x1b[2J\x1b[31mred\x1b[0m'),
    ('\ufeff' + ML, 'csi\x9b31m nel\x85line st\x9c'),
    ('x\nARCH=arm64\nOWNER=tencentcloud', 'del\x7f bell\x07 \x01\x1f'),
    ('\x1b[2J\x1b[1;1Hclear', 'ls\u2028ARCH=arm64\u2029OWNER=x'),
    ('soft\u00adhyphen', 'cr\rARCH=arm64\r\n'),
    ('tab\there', '$(touch PWNED) `touch PWNED` ${HOME}'),
    ('\u2066isolate\u2069', 'tab\there "quoted" \\ back\\'),
    ('\u3000', 'zero\u200bwidth is text'),
    (' ', '\n'),
    ('back\\slash\u200b', 'back\\slash \\u000A'),
    ('build/agent\u200b', 'slash'),
]
# not UTF-8: a peer's tool or an old catalog, never the cloud (JSON)
HOSTILE_BYTES = [
    (b'bad\xff\xfe' + BUILD.encode(), b'bad\xc0\xaf \xed\xa0\x80 \xe4\xb8'),
]


def add_hostile(conn, owner, images, share_with=None, first=0):
    """Insert images (name, description) of owner into the catalog, as a
    copy of ML with a new id, OS_NAME = the description; shared with
    share_with. Returns their ids."""
    ids = []
    for n, (name, desc) in enumerate(images):
        ident = 'img-evil%04d' % (first + n)
        if isinstance(name, bytes):
            name_sql, desc_sql = 'CAST(? AS TEXT)', 'CAST(? AS TEXT)'
        else:
            name_sql, desc_sql = '?', '?'
        conn.execute(
            'INSERT INTO images (id, region, kind, owner, name, os_name, '
            'os_type, platform, arch, bits, size_gb, state, created, mtime, '
            'description, source) SELECT ?, region, kind, ?, %s, %s, '
            'os_type, platform, arch, bits, size_gb, state, created, mtime, '
            '%s, source FROM images WHERE name = ?' % (
                name_sql, desc_sql, desc_sql),
            (ident, owner, name, desc, desc, ML))
        if share_with:
            conn.execute('INSERT INTO shares (image, account) VALUES '
                         '((SELECT row FROM images WHERE id = ?), ?)',
                         (ident, share_with))
        ids.append(ident)
    conn.commit()
    return ids


def hostile_images():
    images = list(HOSTILE)
    if not CLOUD:
        images += HOSTILE_BYTES
    return images


def entry(name, ident):
    shown = shown_name(name).replace('/', '\uff0f')
    return shown if shown == _decode(name) else '%s (%s)' % (shown, ident)


def tool(cmd, cwd):
    r = run(['sh', '-c', cmd], cwd=cwd)
    assert r.returncode in (0, 1), (cmd, r.stderr)
    return r.stdout


def test_hostile_peer_tells_the_truth(mount, seeded_db, catalog, tmp_path):
    """B shares images whose names and descriptions try every trick; A's
    ls, grep, cut, `. ./info`, xattrs and terminal see only the truth."""
    db = seeded_db()
    conn = catalog(db)
    images = hostile_images()
    ids = add_hostile(conn, B, images, share_with=A)
    truth = dict(zip(ids, images))
    mnt = mount(db=db, extra_opts=[] if CLOUD else ['xattr'])
    folder = peer_dir(mnt)

    # ls: one line an image, each an entry that says what it is
    out = tool('ls', folder)
    shown = terminal_safe(out).splitlines()
    want = sorted([ML] + [entry(n, i) for i, (n, _) in truth.items()])
    assert sorted(shown) == want
    for i, (name, _) in truth.items():
        e = entry(name, i)
        assert e.endswith(' (%s)' % i) and '\\' in e, e
    assert shown.count(ML) == 1
    assert not set(shown) & {BUILD, WEB}
    # ls -l reaches every one of them: nothing listed is unreachable
    r = run(['ls', '-l', folder])
    assert r.returncode == 0, r.stderr
    terminal_safe(r.stdout)
    assert '?' not in r.stdout.decode()

    # find and cat: what a terminal gets
    terminal_safe(tool('find .', folder))
    cat = terminal_safe(tool('cat */info', folder))
    assert len(re.findall(r'^ID=', cat, re.M)) == len(want)

    for i, (name, desc) in truth.items():
        d = os.path.join(folder, entry(name, i))
        with open(os.path.join(d, 'info'), 'rb') as f:
            data = f.read()
        text = terminal_safe(data)
        pairs = parse_info_pairs(data, d)       # one key a line, no repeats
        info = dict(pairs)
        assert len(text.splitlines()) == len(pairs)
        assert info['ID'] == i
        assert info['OWNER'] == B and info['TYPE'] == 'shared'
        assert info['ARCH'] == 'x86_64'
        assert info['NAME'] == shown_name(name)
        assert info['DESCRIPTION'] == shown_text(desc)
        assert info['OS_NAME'] == shown_text(desc)
        # grep finds each key once, with the true value
        assert tool("grep -c '^ID=' info", d) == b'1\n'
        assert tool("grep '^ID=' info", d) == ('ID=%s\n' % i).encode()
        assert tool("grep -c '^ARCH=' info", d) == b'1\n'
        assert tool("grep -c '^OWNER=' info", d) == b'1\n'
        assert tool("grep -c '^SOURCE=' info", d) == \
            (b'1\n' if 'SOURCE' in info else b'0\n')
        # cut gives the value as quoted, and the truth for bare ones
        assert tool("grep '^OWNER=' info | cut -d= -f2-", d) == \
            (B + '\n').encode()
        assert tool("grep '^DESCRIPTION=' info | cut -d= -f2-", d) == \
            (quote(shown_text(desc)) + '\n').encode()
        # sh reads the same values, and runs nothing
        assert sh_values(d, 'ID', 'OWNER', 'ARCH', 'TYPE') == \
            '%s|%s|x86_64|shared' % (i, B)
        assert sh_values(d, 'NAME') == shown_name(name)
        assert sh_values(d, 'DESCRIPTION') == shown_text(desc)
        if not CLOUD:
            for key, value in (('name', shown_name(name)),
                               ('description', shown_text(desc))):
                x = os.getxattr(d, 'user.imagefs.' + key)
                assert terminal_safe(x) == value
    # README: grep -l '^ARCH=arm64' finds only images that are arm64
    assert tool("grep -l '^ARCH=arm64' */info", folder) == b''
    assert tool("grep -h '^OWNER=' */info | cut -d= -f2- | sort -u",
                folder) == (B + '\n').encode()
    assert sorted(tool("grep -h '^ID=' */info", folder).decode().split()) \
        == sorted('ID=' + i for i in list(ids) + [
            conn.execute('SELECT id FROM images WHERE name = ?',
                         (ML,)).fetchone()[0]])
    assert not os.path.exists(os.path.join(folder, 'PWNED'))
    assert not list(tmp_path.rglob('PWNED'))
    assert ops_count(conn) == 0 and ops_count(conn, B) == 0


def test_old_catalog_image_written_back(mount, seeded_db, catalog, tmp_path):
    """A's own image from an old catalog, its name and description holding
    what the mount now refuses: reading info and writing it back unchanged
    changes nothing and charges nothing; sed changes only what it changes;
    mv reaches the entry and gives it a valid name."""
    db = seeded_db()
    conn = catalog(db)
    name = 'old\u200bname\n'
    desc = 'line one\nline two\x1b[0m'
    ident, = add_hostile(conn, A, [(name, desc)])
    mnt = mount(db=db)
    e = entry(name, ident)
    assert e in listing(custom(mnt))
    info = os.path.join(custom(mnt, e), 'info')
    before = custom_rows(conn)
    # cp out and back, as a backup restored
    saved = tmp_path / 'info.saved'
    r = run(['cp', info, os.fspath(saved)])
    assert r.returncode == 0, r.stderr
    r = run(['cp', os.fspath(saved), info])
    assert r.returncode == 0, r.stderr
    expect_nothing_changed(conn, before, 'writing back the text read')
    assert ops_count(conn) == 0
    # an editor's change of the description only
    r = run(['sed', '-i', 's/^DESCRIPTION=.*/DESCRIPTION="clean now"/', info])
    assert r.returncode == 0, r.stderr
    row = conn.execute('SELECT name, description FROM images WHERE id = ?',
                       (ident,)).fetchone()
    assert tuple(row) == (name, 'clean now')
    assert ops_count(conn) == charged(1)
    # a new description with a newline is still refused
    expect_write_einval(info, 'DESCRIPTION="two\nlines"\n')
    # mv to a name the mount takes
    os.rename(custom(mnt, e), custom(mnt, 'renamed'))
    assert read_info(os.path.join(custom(mnt, 'renamed'), 'info'))[
        'ID'] == ident
    assert conn.execute('SELECT name FROM images WHERE id = ?',
                        (ident,)).fetchone()[0] == 'renamed'


@pytest.mark.local_only
def test_old_catalog_share_link_reachable(mount, seeded_db, catalog):
    """A's old image with a refused name, shared with B: its link in
    shared/B/ is listed escaped, reachable, and points at its entry."""
    db = seeded_db()
    conn = catalog(db)
    name = 'old\x1b[2Jname'
    ident, = add_hostile(conn, A, [(name, 'x')], share_with=B)
    mnt = mount(db=db)
    link = shown_name(name)
    assert listing(peer_dir(mnt)) == sorted([link, ML])
    path = os.path.join(peer_dir(mnt), link)
    assert stat.S_ISLNK(os.lstat(path).st_mode)
    assert os.readlink(path) == '../../custom/' + entry(name, ident)
    assert read_info(os.path.join(path, 'info'))['ID'] == ident
    os.unlink(path)                     # stops sharing
    assert not conn.execute('SELECT 1 FROM shares s JOIN images i ON '
                            'i.row = s.image WHERE i.id = ?',
                            (ident,)).fetchall()


# --- 2. imports only for their owner -----------------------------------------

def queue_import(conn, owner, url, uid, n):
    """An IMPORTING image of owner whose download nobody has claimed, as a
    daemon commits it: owner's account and the Unix user uid."""
    ident = 'img-imp%05d' % n
    conn.execute(
        "INSERT INTO images (id, region, kind, owner, name, os_name, "
        "os_type, platform, arch, bits, state, progress, created, mtime, "
        "source) VALUES (?, ?, 'custom', ?, ?, 'Linux', 'linux', 'Ubuntu', "
        "'x86_64', 64, 'IMPORTING', 0, 1767225600, 1767225600, ?)",
        (ident, GZ, owner, 'queued-%d' % n, 'import:' + url))
    conn.execute("INSERT INTO imports (image, url, account, uid) VALUES "
                 "((SELECT row FROM images WHERE id = ?), ?, ?, ?)",
                 (ident, url, owner, uid))
    conn.commit()
    return ident


def import_row(conn, ident):
    return conn.execute(
        'SELECT p.pid, i.state FROM images i LEFT JOIN imports p ON '
        'p.image = i.row WHERE i.id = ?', (ident,)).fetchone()


@pytest.mark.local_only
def test_import_records_account_and_uid(mount, server, disks, catalog):
    mnt = mount()
    conn = catalog(mnt.db)
    url = server.url('slow.raw', chunk=64 * 1024, delay=0.1)
    path = start_import(mnt, 'recorded', url)
    row = conn.execute('SELECT account, uid FROM imports').fetchall()
    assert [tuple(r) for r in row] == [(A, os.geteuid())]
    wait_state(path, ('NORMAL', 'IMPORTFAILED'), IMPORT_WITHIN)


@pytest.mark.local_only
def test_import_claimed_only_by_its_owner(mount, seeded_db, catalog, server,
                                          disks):
    """Imports of another account, or of another Unix user, are left alone:
    each daemon takes the lowest import it may, so a foreign one queued
    first would be taken first."""
    db = seeded_db()
    conn = catalog(db)
    me = os.geteuid()
    foreign = {
        'other account': queue_import(conn, A, server.url(
            'disk.raw', tag='a'), me, 1),
        'other user': queue_import(conn, B, server.url(
            'disk.raw', tag='u'), me + 1, 2),
    }
    own = queue_import(conn, B, server.url('disk.raw', tag='b'), me, 3)
    b = mount(account=B, db=db)
    wait_state(image_dir(b, 'queued-3'), ('NORMAL', 'IMPORTFAILED'),
               IMPORT_WITHIN)
    assert import_row(conn, own)['state'] == 'NORMAL'
    for what, ident in foreign.items():
        r = import_row(conn, ident)
        assert (r['pid'], r['state']) == (None, 'IMPORTING'), what
    assert server.hits(server.url('disk.raw', tag='a')) == 0
    assert server.hits(server.url('disk.raw', tag='u')) == 0
    # A's own daemon takes A's
    a = mount(db=db)
    info = wait_state(image_dir(a, 'queued-1'), ('NORMAL', 'IMPORTFAILED'),
                      IMPORT_WITHIN)
    assert info['STATE'] == 'NORMAL'
    assert import_row(conn, foreign['other user'])['pid'] is None
    assert server.hits(server.url('disk.raw', tag='u')) == 0


def expect_refused_import(mnt, conn, name, url):
    """The text of an import of url: EINVAL at the write, nothing made."""
    path = custom(mnt, name)
    os.mkdir(path)
    before = custom_rows(conn)
    text = ('IMPORT_URL=%s\nOS_TYPE=linux\nPLATFORM=Ubuntu\nARCH=x86_64\n'
            % quote(url))
    expect_write_einval(os.path.join(path, 'info'), text)
    assert listing(path) == []
    expect_nothing_changed(conn, before, url)
    os.rmdir(path)


@pytest.mark.local_only
def test_file_url_refused_by_default(mount, catalog, tmp_path):
    mnt = mount()
    conn = catalog(mnt.db)
    disk = tmp_path / 'disk.raw'
    disk.write_bytes(b'\0' * 4096)
    for n, url in enumerate(['file:///etc/passwd', 'file://' + str(disk),
                             'FILE://' + str(disk),
                             'file://localhost' + str(disk)]):
        expect_refused_import(mnt, conn, 'f%d' % n, url)
    assert ops_count(conn) == 0


@pytest.fixture
def import_dir(tmp_path):
    """A directory of -o import_dirs with what a hostile user may leave
    in it, and a secret beside it."""
    d = tmp_path / 'images'
    d.mkdir()
    (d / 'sub').mkdir()
    (d / 'disk.raw').write_bytes(os.urandom(3 * 4096 + 7))
    (d / 'sub' / 'disk 2.raw').write_bytes(os.urandom(4096))
    secret = tmp_path / 'secret'
    secret.write_bytes(b'root:$6$secret$hash:19000::::::\n' * 100)
    os.chmod(secret, 0o600)
    os.symlink(secret, d / 'link.raw')
    os.symlink(tmp_path, d / 'outside')
    os.symlink('/dev/zero', d / 'zero.raw')
    os.mkfifo(d / 'fifo.raw')
    with open(d / 'huge.raw', 'wb') as f:
        f.truncate(64 << 30)            # sparse: 64 GiB it never reads
    return d, secret


@pytest.mark.local_only
def test_file_url_under_import_dirs(mount, catalog, import_dir, tmp_path):
    d, secret = import_dir
    other = tmp_path / 'other'
    other.mkdir()
    mnt = mount(extra_opts=['import_dirs=%s:%s/' % (other, d)])
    conn = catalog(mnt.db)
    conn.execute("UPDATE settings SET value = 1000 WHERE key = "
                 "'max_daily_ops'")
    conn.execute("UPDATE settings SET value = ? WHERE key = "
                 "'max_import_bytes'", (1 << 30,))
    conn.commit()
    # refused at the write: outside, dot-dot, another host
    for n, url in enumerate([
            'file://' + str(secret), 'file:///etc/passwd',
            'file://%s/../secret' % d, 'file://%s/%%2e%%2e/secret' % d,
            'file://%s/sub/../../secret' % d, 'file://%s' % d,
            'file://%s/' % d, 'file://otherhost%s/disk.raw' % d,
            'file://%s-x/disk.raw' % d]):
        expect_refused_import(mnt, conn, 'refused-%d' % n, url)
    # read: regular files below it, %-encoded names too
    for name, rel in (('plain', 'disk.raw'), ('encoded', 'sub/disk%202.raw')):
        path = start_import(mnt, name, 'file://%s/%s' % (d, rel))
        info = wait_state(path, ('NORMAL', 'IMPORTFAILED'), IMPORT_WITHIN)
        data = (d / urllib.parse.unquote(rel)).read_bytes()
        assert info['STATE'] == 'NORMAL', info
        assert info['SHA256'] == sha256(data)
        assert info['FORMAT'] == 'raw'
    # failed, quickly and saying why: symlinks out, FIFOs, devices, the
    # endless; no hash or size of what lies behind them
    cases = {'link.raw': 'symbolic link', 'outside/secret': 'cannot read',
             'zero.raw': 'symbolic link', 'fifo.raw': 'not a regular file',
             'huge.raw': 'too large'}
    if _mknod_zero(d / 'zero.dev'):
        cases['zero.dev'] = 'not a regular file'
    paths = {rel: start_import(mnt, 'bad-%d' % n, 'file://%s/%s' % (d, rel))
             for n, rel in enumerate(cases)}
    for rel, words in cases.items():
        info = wait_state(paths[rel], ('NORMAL', 'IMPORTFAILED'),
                          FAIL_WITHIN)
        assert info['STATE'] == 'IMPORTFAILED', (rel, info)
        assert words in info['ERROR'], (rel, info)
        assert 'SHA256' not in info and 'SIZE_GB' not in info, info
        os.unlink(os.path.join(paths[rel], 'info'))     # frees its slot
        os.rmdir(paths[rel])
    # the workers are free again: one more import goes through
    path = start_import(mnt, 'after', 'file://%s/disk.raw' % d)
    info = wait_state(path, ('NORMAL', 'IMPORTFAILED'), IMPORT_WITHIN)
    assert info['STATE'] == 'NORMAL'


def _mknod_zero(path):
    """A character device like /dev/zero at path (root only)."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 5))
        return True
    except OSError:
        return False


@pytest.mark.local_only
def test_checksum_mismatch_says_only_that(mount, catalog, server, disks):
    mnt = mount(extra_opts=['xattr'])
    path = start_import(mnt, 'wrong-sum', server.url('disk.qcow2'),
                        sha='0' * 64)
    info = wait_state(path, ('NORMAL', 'IMPORTFAILED'), FAIL_WITHIN)
    assert info['STATE'] == 'IMPORTFAILED'
    assert 'checksum' in info['ERROR']
    real = sha256(disks['disk.qcow2'].data)
    shown = [open(os.path.join(path, 'info')).read(), mnt.log_text()] + [
        os.getxattr(path, k).decode() for k in os.listxattr(path)]
    for text in shown:
        assert real not in text
        assert not re.search(r'[0-9a-f]{64}', text.replace('0' * 64, '')), \
            text


@pytest.mark.local_only
def test_old_catalog_imports_fail_and_sources_lose_secrets(
        mount, seeded_db, catalog, server):
    """A version 2 catalog: its imports recorded no owner, so none is
    downloaded (each fails, saying why); its SOURCEs lose their query."""
    db = seeded_db()
    conn = catalog(db)
    url = server.url('disk.raw', tag='old') + '&X-Amz-Signature=s3cr3t#frag'
    ident = queue_import(conn, A, url, os.geteuid(), 7)
    conn.execute("UPDATE images SET source = ? WHERE id = ?",
                 ('import:' + url, ident))
    conn.execute('ALTER TABLE imports DROP COLUMN account')
    conn.execute('ALTER TABLE imports DROP COLUMN uid')
    conn.execute('PRAGMA user_version = 2')
    conn.commit()
    mnt = mount(db=db)
    info = read_info(os.path.join(image_dir(mnt, 'queued-7'), 'info'))
    assert info['STATE'] == 'IMPORTFAILED'
    assert 'import it again' in info['ERROR']
    assert info['SOURCE'] == 'import:' + url.split('?')[0]
    assert conn.execute('PRAGMA user_version').fetchone()[0] == \
        SCHEMA_VERSION
    assert conn.execute('SELECT count(*) FROM imports').fetchone()[0] == 0
    assert server.hits(url) == 0


# --- 3. secrets stay secret ---------------------------------------------------

@pytest.fixture
def umask0():
    old = os.umask(0)
    yield
    os.umask(old)


@pytest.mark.local_only
def test_catalog_created_0600(mount, umask0):
    """Under umask 0 the new catalog, its -wal and -shm are 0600."""
    mnt = mount()
    os.mkdir(custom(mnt, 'writes-the-wal'))
    for suffix in ('', '-wal', '-shm'):
        st = os.stat(mnt.db + suffix)
        assert stat.S_IMODE(st.st_mode) == 0o600, (suffix, oct(st.st_mode))
    assert 'open to group or others' not in mnt.log_text()


@pytest.mark.local_only
def test_catalog_open_to_others_draws_a_warning(mount, seeded_db):
    db = seeded_db()
    os.chmod(db, 0o644)
    mnt = mount(db=db)
    assert 'catalog %s is open to group or others (mode 0644)' % db in \
        mnt.log_text()


SIGNATURE = 'Zx9sig4Secret'
PASSWORD = 'pw8Secret'


@pytest.mark.local_only
def test_url_secrets_never_shown(mount, catalog, server, disks):
    """A presigned URL with user info: SOURCE, xattrs, ERROR and the -d
    log show neither the user info nor the query nor the fragment."""
    mnt = mount(extra_opts=['xattr', 'debug'])
    server.credentials = 'alice:' + PASSWORD
    query = '&X-Amz-Signature=%s&q-signature=%s#frag%s' % (
        SIGNATURE, SIGNATURE, SIGNATURE)
    good = server.url('disk.qcow2', userinfo='alice:' + PASSWORD,
                      auth=1) + query
    bad = server.url('nothing', userinfo='alice:' + PASSWORD,
                     status=404) + query
    paths = [start_import(mnt, 'presigned', good),
             start_import(mnt, 'presigned-404', bad)]
    shown = [open(os.path.join(p, 'info')).read() for p in paths]
    infos = [wait_state(p, ('NORMAL', 'IMPORTFAILED'), FAIL_WITHIN)
             for p in paths]
    assert [i['STATE'] for i in infos] == ['NORMAL', 'IMPORTFAILED']
    for info, url in zip(infos, (good, bad)):
        assert info['SOURCE'] == 'import:' + url.split('?')[0].replace(
            'alice:%s@' % PASSWORD, '')
    # a refused edit leaves its error in user.imagefs.error
    expect_errno(errno.EPERM, write_file, os.path.join(paths[0], 'info'),
                 'SOURCE=x\n')
    for p in paths + [custom(mnt)]:
        shown += [open(os.path.join(p, 'info')).read()
                  if os.path.exists(os.path.join(p, 'info')) else '']
        shown += [os.getxattr(p, k).decode() for k in os.listxattr(p)]
    shown.append(mnt.log_text())
    for text in shown:
        for secret in (SIGNATURE, PASSWORD, 'alice'):
            assert secret not in text, (secret, text)


FORGED = ('boom\nimagefs: import of image 1: done\r\x1b]0;pwned\x07'
          '\x1b[2J\x9b31m\u2028end')


def test_cloud_error_words_logged_as_data(mount, tmp_path):
    """The cloud's error Message, with controls in it, reaches the log and
    user.imagefs.error as data: it starts no line, drives no terminal."""
    from tcserver import TcServer
    db = os.fspath(tmp_path / 'imagefs.db')
    server = mount.servers[db] = TcServer(db, market=True)
    # every answer, from the first listings of the mount on
    server.fail('InternalError', times=10 ** 6, message=FORGED)
    m = mount(backend='tencentcloud', extra_opts=['xattr'])
    expect_errno(errno.EIO, os.listdir, os.path.join(m, GZ, 'public'))
    m.server.stop()             # nothing more from it
    log = m.log_text()
    lines = log.splitlines()
    assert not [ln for ln in lines if ln.startswith('imagefs: import')], log
    said = [ln for ln in lines if 'boom' in ln]
    assert said, log
    for line in said:
        terminal_safe(line.encode())
        assert 'boom\\x0Aimagefs: import of image 1: done\\x0D' \
            '\\x1B]0;pwned\\x07\\x1B[2J\\u009B31m\\u2028end' in line, line


def daemon_memory(pid):
    """The writable memory of process pid (root reads /proc/pid/mem)."""
    chunks = []
    with open('/proc/%d/maps' % pid) as maps, \
            open('/proc/%d/mem' % pid, 'rb', 0) as mem:
        for line in maps:
            f = line.split()
            lo, hi = (int(x, 16) for x in f[0].split('-'))
            name = f[5] if len(f) > 5 else ''
            if f[1][:2] != 'rw' or hi - lo > (256 << 20) or \
                    name in ('[vvar]', '[vsyscall]'):
                continue
            try:
                mem.seek(lo)
                chunks.append(mem.read(hi - lo))
            except (OSError, ValueError, OverflowError):
                pass
    return chunks


def tc3_keys(secret_key, date, service='cvm'):
    """TC3-HMAC-SHA256's derived keys of one UTC date."""
    import hashlib
    import hmac

    def mac(key, msg):
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()
    k_date = mac(('TC3' + secret_key).encode(), date)
    k_service = mac(k_date, service)
    return k_date, k_service, mac(k_service, 'tc3_request')


SECRET_ID = 'AKIDwipeTest0000000000000000000000001'
SECRET_KEY = 'wipeTestSecretKey4e6c2b9a1f0d8c7b'
TOKEN = 'wipeTestSessionToken' + 'x' * 40


def test_secrets_wiped_from_memory(mount, tmp_path):
    """After signed calls, the daemon's memory holds the secret key once
    (signing needs it) and none of: the keys derived from it, the text
    of the credential file, jansson's copies of its values. (libcurl keeps
    its own copies of the request's header lines, the token's among them,
    out of our reach; tests/unit.c checks the signing stack itself.)"""
    import datetime
    from tcserver import TcServer
    db = tmp_path / 'imagefs.db'
    mount.servers[os.fspath(db)] = TcServer(os.fspath(db), accounts={
        SECRET_ID: dict(key=SECRET_KEY, uin=A, token=TOKEN)})
    cred = tmp_path / 'wipe.credential'
    cred.write_text('{\n  "secretId": "%s",\n  "secretKey": "%s",\n'
                    '  "token": "%s"\n}\n' % (SECRET_ID, SECRET_KEY, TOKEN))
    os.chmod(cred, 0o600)
    m = mount(db=db, backend='tencentcloud',
              extra_opts=['credentials=%s' % cred])
    # what reading the file left behind, before other work reuses memory
    early = daemon_memory(m.proc.pid)
    for what, needle in (('the file text', b'"secretKey": "'),
                         ('a JSON string', b'"' + SECRET_KEY.encode()),
                         ('a JSON string', b'"' + TOKEN.encode()),
                         ('a JSON key', b'secretKey\0')):
        assert not any(needle in c for c in early), what
    for folder in ('public', 'custom', 'market'):
        listing(os.path.join(m, GZ, folder))       # signed requests
    assert len(m.server.requests) >= 3
    now = datetime.datetime.now(datetime.timezone.utc)
    derived = []
    for days in (-1, 0, 1):
        date = (now + datetime.timedelta(days=days)).strftime('%Y-%m-%d')
        derived += tc3_keys(SECRET_KEY, date)
    needles = [('TC3 + secret key', b'TC3' + SECRET_KEY.encode()),
               ('the file text', b'"secretKey": "'),
               ('a JSON string', b'"' + SECRET_KEY.encode()),
               ('a JSON string', b'"' + TOKEN.encode())] + [
        ('a derived key', k) for k in derived]

    def copies():
        memory = daemon_memory(m.proc.pid)
        found = [what for what, needle in needles
                 if any(needle in c for c in memory)]
        keys = sum(c.count(SECRET_KEY.encode()) for c in memory)
        return found + (['the secret key %d times' % keys] if keys != 1
                        else [])

    # the cache's workers may still sign a request, whose keys are on
    # their stack until it ends: only a copy that stays is a leak
    deadline = time.monotonic() + 30 * SLOW
    found = copies()
    while found and time.monotonic() < deadline:
        time.sleep(0.05)
        found = copies()
    assert found == []


# --- 4. what allow_other exposes ---------------------------------------------

NOBODY = 65534

OTHER_USER_SCRIPT = r'''
cat ap-guangzhou/custom/build-agent/info >/dev/null && echo read-custom
cat ap-guangzhou/shared/100000000002/ml-training-base/info >/dev/null &&
    echo read-shared
mkdir ap-guangzhou/custom/theirs 2>/dev/null || echo mkdir-refused
mv ap-guangzhou/custom/build-agent ap-guangzhou/custom/x 2>/dev/null ||
    echo mv-refused
echo 'DESCRIPTION="mine now"' 2>/dev/null \
    >ap-guangzhou/custom/build-agent/info || echo write-refused
ln -s ../../custom/build-agent ap-guangzhou/shared/100000000002/build-agent \
    2>/dev/null || echo share-refused
rm -r ap-guangzhou/custom/web-server-2026 2>/dev/null || echo rm-refused
'''


def as_other_user(mnt, script):
    """script run by sh as user nobody, in the mount (no path to walk)."""
    r = subprocess.run(['sh', '-c', script], cwd=mnt, user=NOBODY,
                       group=NOBODY, extra_groups=[], env=TOOL_ENV,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    return r.stdout.decode().split()


@pytest.mark.skipif(os.geteuid() != 0, reason='runs a shell as nobody')
def test_allow_other_lets_others_read_only(mount, catalog):
    """Without allow_other no other user gets in; with it, every user reads
    what the account sees, and the mode bits (default_permissions) keep
    all but root from changing anything."""
    private = mount()
    assert as_other_user(private, 'ls ap-guangzhou >/dev/null 2>&1 || '
                         'echo refused') == ['refused']
    private.unmount()
    mnt = mount(db=private.db, extra_opts=['allow_other'])
    conn = catalog(mnt.db)
    before = custom_rows(conn)
    assert as_other_user(mnt, OTHER_USER_SCRIPT) == [
        'read-custom', 'read-shared', 'mkdir-refused', 'mv-refused',
        'write-refused', 'share-refused', 'rm-refused']
    expect_nothing_changed(conn, before, 'another user')
    assert ops_count(conn) == 0
