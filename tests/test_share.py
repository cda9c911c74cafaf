# SPDX-License-Identifier: GPL-2.0
"""Mounted tests of sharing (issue 4; DESIGN.md sections 2 to 4).

Two and three daemons, mounted as different accounts, share one catalog
(the seed of backend/local/seed.sql): 100000000001 owns web-server-2026 and
build-agent in ap-guangzhou, 100000000002 owns ml-training-base (shared
with 100000000001) and staging-db. The owner shares with a symlink in
shared/<uin>/, cancels with rm, and the recipient sees the image read-only
in its own mount. Errors are checked by errno symbol from the real syscall;
what other daemons see is polled with a deadline, never a fixed sleep.
"""

import errno
import os
import stat
import threading

import pytest

from helpers import (create_exclusive, expect_errno, listing, read_info,
                     run)
from conftest import (CACHE_TTL, CLOUD, DEMO_ACCOUNT, PEER_ACCOUNT, SLOW,
                      charged, wait_for)
from tcserver import TcServer

GZ = 'ap-guangzhou'
BJ = 'ap-beijing'
A = DEMO_ACCOUNT                # owns WEB and BUILD
B = PEER_ACCOUNT                # owns ML (shared with A) and STAGING
C = '100000000003'              # a third account, owns nothing
D = '100000000004'
WEB = 'web-server-2026'
BUILD = 'build-agent'
ML = 'ml-training-base'
STAGING = 'staging-db'
MAX_SHARES = 50                 # accounts per image (settings)
# s until another daemon sees a change: through the same catalog, or (with
# tencentcloud) the cloud, within cache_ttl and a second (README)
VISIBLE = (CACHE_TTL + 10.0 if CLOUD else 10.0) * SLOW  # s: a deadline, not a claim
BJ_IMAGE = 'beijing-image'      # an own custom image in another region
BJ_ID = 'img-zz00bj01'

# Writes into a shared image: EROFS; EACCES from the mode bits for non-root.
WRITE_ERRNOS = (errno.EROFS,) if os.getuid() == 0 else (errno.EROFS,
                                                         errno.EACCES)


# --- helpers ---------------------------------------------------------------

def shared(mnt, peer=None, name=None, region=GZ):
    """mnt/region/shared[/peer[/name]]."""
    parts = [mnt, region, 'shared'] + [p for p in (peer, name) if p]
    return os.path.join(*parts)


def custom(mnt, name=None, region=GZ):
    parts = [mnt, region, 'custom'] + ([name] if name else [])
    return os.path.join(*parts)


def rel_target(name):
    return '../../custom/' + name


def share(mnt, peer, name, target=None):
    """ln -s ../../custom/name mnt/GZ/shared/peer/name."""
    os.symlink(target or rel_target(name), shared(mnt, peer, name))


def unshare(mnt, peer, name):
    os.unlink(shared(mnt, peer, name))


def exists(path):
    return os.path.lexists(path)


def shares_of(conn, name, owner=A, region=GZ):
    """The accounts an image is shared with, from the catalog."""
    rows = conn.execute(
        "SELECT s.account FROM shares s JOIN images i ON i.row = s.image "
        "WHERE i.kind = 'custom' AND i.owner = ? AND i.region = ? AND "
        "i.name = ? ORDER BY s.account", (owner, region, name)).fetchall()
    return [r[0] for r in rows]


def ops_count(conn, account=A, region=GZ):
    """Operations charged to account in region (a fresh catalog: today)."""
    return conn.execute(
        'SELECT COALESCE(SUM(count), 0) FROM ops WHERE account = ? AND '
        'region = ?', (account, region)).fetchone()[0]


def image_id(conn, name, owner, region=GZ):
    return conn.execute(
        "SELECT id FROM images WHERE kind = 'custom' AND owner = ? AND "
        "region = ? AND name = ?", (owner, region, name)).fetchone()[0]


def committed_names(conn, owner, region=GZ):
    return sorted(r[0] for r in conn.execute(
        "SELECT name FROM images WHERE kind = 'custom' AND owner = ? AND "
        "region = ? AND id IS NOT NULL", (owner, region)))


def first_entry(mnt, folder):
    return listing(os.path.join(mnt, GZ, folder))[0]


def prepare(seeded_db, catalog, max_ops=1000, sql=()):
    """A seeded catalog with max_daily_ops raised and sql applied.

    sql: (statement, args) pairs, run before any daemon holds the catalog.
    """
    db = seeded_db()
    conn = catalog(db)
    conn.execute("UPDATE settings SET value = ? WHERE key = 'max_daily_ops'",
                 (max_ops,))
    for stmt, args in sql:
        conn.execute(stmt, args)
    conn.commit()
    conn.close()
    return db


def fill_shares(image_owner, image_name, n, base=200000000000):
    """SQL that shares an image with n made-up accounts."""
    return [("INSERT INTO shares (image, account) SELECT row, ? FROM images "
             "WHERE kind = 'custom' AND owner = ? AND region = ? AND "
             "name = ?", (str(base + i), image_owner, GZ, image_name))
            for i in range(n)]


def add_peers(account, peers):
    return [('INSERT INTO peers (account, region, peer) VALUES (?, ?, ?)',
             (account, GZ, p)) for p in peers]


def visible_to(mnt, owner, name):
    """mnt sees name in shared/<owner>/ as an image (listing and lookup)."""
    folder = shared(mnt, owner)
    try:
        return (name in os.listdir(folder) and
                os.path.isfile(os.path.join(folder, name, 'info')))
    except FileNotFoundError:
        return False


def gone_from(mnt, owner, name):
    """mnt no longer sees name in shared/<owner>/ (listing nor lookup)."""
    folder = shared(mnt, owner)
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        names = []
    return name not in names and not exists(os.path.join(folder, name))


def links_in(mnt, peer):
    """The share links of mnt's shared/<peer>/: {name: target}."""
    folder = shared(mnt, peer)
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return {}
    out = {}
    for n in names:
        p = os.path.join(folder, n)
        try:
            if stat.S_ISLNK(os.lstat(p).st_mode):
                out[n] = os.readlink(p)
        except FileNotFoundError:
            pass
    return out


# --- 1. peer folders -------------------------------------------------------

@pytest.mark.local_only  # peer folders live in the cache
def test_mkdir_peer_folder(mount, catalog):
    mnt = mount()
    other = mount(db=mnt.db)            # a second daemon of the same account
    conn = catalog(mnt.db)
    assert C not in listing(shared(other))   # cached by the second daemon
    os.mkdir(shared(mnt, C))
    st = os.lstat(shared(mnt, C))
    assert stat.S_ISDIR(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o755
    assert listing(shared(mnt, C)) == []
    assert listing(shared(mnt)) == sorted([B, C])
    # kept in the catalog, no cloud operation, not charged
    assert conn.execute(
        'SELECT COUNT(*) FROM peers WHERE account = ? AND region = ? AND '
        'peer = ?', (A, GZ, C)).fetchone()[0] == 1
    assert ops_count(conn) == charged(0)  # per region
    assert C not in listing(shared(mnt, region=BJ))
    # the other daemon of the account sees it
    assert wait_for(lambda: C in os.listdir(shared(other)), VISIBLE), \
        'the second mount of %s does not list shared/%s after %.0f s' % (
            A, C, VISIBLE)
    assert os.path.isdir(shared(other, C))
    # it exists already
    expect_errno(errno.EEXIST, os.mkdir, shared(mnt, C))


@pytest.mark.local_only  # the limit of peer folders lives in the cache
def test_peer_folders_are_limited(mount, seeded_db, catalog):
    """mkdir shared/<uin> beyond settings.max_peer_folders of the account
    in the region is EMLINK (issue 11: a thousand were free to make)."""
    db = prepare(seeded_db, catalog, sql=[
        ("UPDATE settings SET value = 3 WHERE key = 'max_peer_folders'", ())])
    mnt = mount(db=db)
    conn = catalog(db)
    peers = [str(300000000000 + i) for i in range(4)]
    for p in peers[:3]:
        os.mkdir(shared(mnt, p))
    expect_errno(errno.EMLINK, os.mkdir, shared(mnt, peers[3]))
    expect_errno(errno.EEXIST, os.mkdir, shared(mnt, peers[0]))
    assert peers[3] not in listing(shared(mnt))
    assert conn.execute('SELECT count(*) FROM peers WHERE account = ? AND '
                        'region = ?', (A, GZ)).fetchone()[0] == 3
    # per region, and a folder removed frees its place
    os.mkdir(shared(mnt, peers[3], region=BJ))
    os.rmdir(shared(mnt, peers[0]))
    os.mkdir(shared(mnt, peers[3]))
    # and sharing into it works as ever
    os.symlink(rel_target(WEB), os.path.join(shared(mnt, peers[3]), WEB))
    assert ops_count(conn) == 1


@pytest.mark.parametrize('name', ['abc', '12345x', '1.5', '+100000000003',
                                  '-1', '0x10', '１２３', A])
def test_mkdir_peer_folder_bad_uin(mount, catalog, name):
    mnt = mount()
    before = listing(shared(mnt))
    expect_errno(errno.EINVAL, os.mkdir, shared(mnt, name))
    assert listing(shared(mnt)) == before
    conn = catalog(mnt.db)
    assert conn.execute('SELECT COUNT(*) FROM peers').fetchone()[0] == 0


def test_rmdir_empty_peer_folder(mount, catalog):
    mnt = mount()
    conn = catalog(mnt.db)
    os.mkdir(shared(mnt, C))
    os.rmdir(shared(mnt, C))
    assert C not in listing(shared(mnt))
    expect_errno(errno.ENOENT, os.lstat, shared(mnt, C))
    assert conn.execute('SELECT COUNT(*) FROM peers').fetchone()[0] == 0
    assert ops_count(conn) == charged(0)
    expect_errno(errno.ENOENT, os.rmdir, shared(mnt, D))


def test_rmdir_peer_folder_with_outgoing_share(mount, catalog):
    mnt = mount()
    conn = catalog(mnt.db)
    os.mkdir(shared(mnt, C))
    share(mnt, C, WEB)
    expect_errno(errno.ENOTEMPTY, os.rmdir, shared(mnt, C))
    assert links_in(mnt, C) == {WEB: rel_target(WEB)}
    assert shares_of(conn, WEB) == [C]
    unshare(mnt, C, WEB)
    os.rmdir(shared(mnt, C))
    assert C not in listing(shared(mnt))


def test_rmdir_peer_folder_with_incoming_share(mount, catalog):
    mine = mount()
    owner = mount(account=B, db=mine.db)
    conn = catalog(mine.db)
    # B shares ML with A (the seed): neither may remove the other's folder
    expect_errno(errno.ENOTEMPTY, os.rmdir, shared(mine, B))
    expect_errno(errno.ENOTEMPTY, os.rmdir, shared(owner, A))
    share(owner, A, STAGING)
    assert wait_for(lambda: visible_to(mine, B, STAGING), VISIBLE)
    expect_errno(errno.ENOTEMPTY, os.rmdir, shared(mine, B))
    assert visible_to(mine, B, ML) and visible_to(mine, B, STAGING)
    assert shares_of(conn, ML, owner=B) == [A]
    assert shares_of(conn, STAGING, owner=B) == [A]


def test_rmdir_own_peer_folder_with_incoming_share(mount, catalog):
    owner = mount()
    rcpt = mount(account=C, db=owner.db)
    conn = catalog(owner.db)
    os.mkdir(shared(rcpt, A))           # C made the folder itself
    os.mkdir(shared(owner, C))
    share(owner, C, WEB)
    assert wait_for(lambda: visible_to(rcpt, A, WEB), VISIBLE)
    expect_errno(errno.ENOTEMPTY, os.rmdir, shared(rcpt, A))
    assert visible_to(rcpt, A, WEB)
    unshare(owner, C, WEB)
    assert wait_for(lambda: gone_from(rcpt, A, WEB), VISIBLE)
    os.rmdir(shared(rcpt, A))
    assert A not in listing(shared(rcpt))
    assert conn.execute('SELECT COUNT(*) FROM peers WHERE account = ?',
                        (C,)).fetchone()[0] == 0


# --- 2. share --------------------------------------------------------------

def test_share_relative_link(mount, catalog):
    mnt = mount()
    conn = catalog(mnt.db)
    os.mkdir(shared(mnt, C))
    os.symlink(rel_target(WEB), shared(mnt, C, WEB))
    link = shared(mnt, C, WEB)
    st = os.lstat(link)
    assert stat.S_ISLNK(st.st_mode)
    assert st.st_size == len(rel_target(WEB))
    assert os.readlink(link) == rel_target(WEB)
    assert listing(shared(mnt, C)) == [WEB]
    # the link resolves to the image
    assert os.path.isdir(link)
    assert read_info(os.path.join(link, 'info')) == \
        read_info(os.path.join(custom(mnt, WEB), 'info'))
    # one operation, charged to the region; the catalog holds the share
    assert ops_count(conn) == charged(1)
    assert shares_of(conn, WEB) == [C]
    assert read_info(os.path.join(custom(mnt, WEB), 'info'))['SHARED_WITH'] \
        == C
    # nothing else was shared
    assert shares_of(conn, BUILD) == []


def test_share_absolute_link_with_ln(mount, catalog):
    mnt = mount()
    conn = catalog(mnt.db)
    os.mkdir(shared(mnt, C))
    r = run(['ln', '-s', custom(mnt, BUILD), shared(mnt, C, BUILD)])
    assert r.returncode == 0, r.stderr
    assert os.readlink(shared(mnt, C, BUILD)) == rel_target(BUILD)
    assert shares_of(conn, BUILD) == [C]
    assert ops_count(conn) == charged(1)  # a relative link from the shell, too
    os.mkdir(shared(mnt, D))
    r = run(['ln', '-s', rel_target(BUILD), BUILD],
            cwd=shared(mnt, D))
    assert r.returncode == 0, r.stderr
    assert shares_of(conn, BUILD) == [C, D]
    assert ops_count(conn) == charged(2)


def _bj_image():
    """SQL: an own custom image of A in ap-beijing."""
    return [("INSERT INTO images (id, region, kind, owner, name, os_name, "
             "os_type, platform, arch, bits, size_gb, state, created, mtime) "
             "VALUES (?, ?, 'custom', ?, ?, 'TencentOS Server 3.1 64-bit', "
             "'linux', 'TencentOS', 'x86_64', 64, 50, 'NORMAL', "
             "1767225600, 1767225600)", (BJ_ID, BJ, A, BJ_IMAGE))]


SHARE_ERRORS = {
    # target image in another region
    'other region': (errno.EXDEV, BJ_IMAGE,
                     lambda m: '../../../%s/custom/%s' % (BJ, BJ_IMAGE)),
    'other region, absolute': (errno.EXDEV, BJ_IMAGE,
                               lambda m: custom(m, BJ_IMAGE, region=BJ)),
    # not the account's own custom image
    'public image': (errno.EPERM, 'PUBLIC',
                     lambda m: '../../public/' + first_entry(m, 'public')),
    'market image': (errno.EPERM, 'MARKET',
                     lambda m: '../../market/' + first_entry(m, 'market')),
    'incoming shared image': (errno.EPERM, ML,
                              lambda m: '../%s/%s' % (B, ML)),
    'incoming shared image, absolute': (errno.EPERM, ML,
                                        lambda m: shared(m, B, ML)),
    'a folder': (errno.EPERM, 'custom', lambda m: '../../custom'),
    'an info file': (errno.EPERM, WEB,
                     lambda m: '../../custom/%s/info' % WEB),
    'a region': (errno.EPERM, GZ, lambda m: '../../../' + GZ),
    # nothing there
    'missing image': (errno.ENOENT, 'no-such-image',
                      lambda m: '../../custom/no-such-image'),
    'missing region': (errno.ENOENT, WEB,
                       lambda m: '../../../xx-nowhere/custom/' + WEB),
    # the link's name is not the image's name
    'other name': (errno.EINVAL, 'web-server', lambda m: rel_target(WEB)),
    'other name, absolute': (errno.EINVAL, BUILD + '-2',
                             lambda m: custom(m, BUILD)),
}


@pytest.mark.parametrize('case', list(SHARE_ERRORS))
def test_share_refused(mount, seeded_db, catalog, case):
    err, name, build = SHARE_ERRORS[case]
    sql = _bj_image() if name == BJ_IMAGE else []
    db = prepare(seeded_db, catalog, max_ops=5, sql=sql)
    mnt = mount(db=db)
    conn = catalog(db)
    target = build(mnt)
    if name == 'PUBLIC':
        name = first_entry(mnt, 'public')
    elif name == 'MARKET':
        name = first_entry(mnt, 'market')
    os.mkdir(shared(mnt, C))
    shares_before = conn.execute('SELECT COUNT(*) FROM shares').fetchone()[0]
    expect_errno(err, os.symlink, target, shared(mnt, C, name))
    assert listing(shared(mnt, C)) == []
    expect_errno(errno.ENOENT, os.lstat, shared(mnt, C, name))
    assert conn.execute('SELECT COUNT(*) FROM shares').fetchone()[0] == \
        shares_before
    assert ops_count(conn) == charged(0), 'a failed share was charged'
    assert ops_count(conn, region=BJ) == charged(0), \
        'a failed share was charged'


def test_share_with_oneself_has_no_folder(mount, catalog):
    mnt = mount()
    expect_errno(errno.EINVAL, os.mkdir, shared(mnt, A))
    expect_errno(errno.ENOENT, os.symlink, rel_target(WEB),
                 shared(mnt, A, WEB))
    assert shares_of(catalog(mnt.db), WEB) == []


def test_share_with_oneself(mount, seeded_db, catalog):
    # a folder of the account's own uin cannot be made with mkdir (EINVAL);
    # even a stray one in the catalog is never shown, so there is no place
    # to put a link that would share with oneself
    db = prepare(seeded_db, catalog, max_ops=5, sql=add_peers(A, [A]))
    mnt = mount(db=db)
    conn = catalog(db)
    assert A not in listing(os.path.dirname(shared(mnt, A)))
    expect_errno(errno.ENOENT, os.listdir, shared(mnt, A))
    expect_errno(errno.ENOENT, os.symlink, rel_target(WEB),
                 shared(mnt, A, WEB))
    assert shares_of(conn, WEB) == []
    assert ops_count(conn) == charged(0)


def test_share_not_normal_image(mount, seeded_db, catalog):
    db = prepare(seeded_db, catalog, max_ops=5, sql=[
        ("UPDATE images SET state = 'CREATING' WHERE kind = 'custom' AND "
         "owner = ? AND name = ?", (A, WEB))])
    mnt = mount(db=db)
    conn = catalog(db)
    assert read_info(os.path.join(custom(mnt, WEB), 'info'))['STATE'] == \
        'CREATING'
    os.mkdir(shared(mnt, C))
    expect_errno(errno.EBUSY, os.symlink, rel_target(WEB),
                 shared(mnt, C, WEB))
    assert shares_of(conn, WEB) == []
    assert ops_count(conn) == charged(0)
    assert listing(shared(mnt, C)) == []
    # a NORMAL image of the same account still can
    share(mnt, C, BUILD)
    assert shares_of(conn, BUILD) == [C]


@pytest.mark.local_only  # the cloud documents no daily limit
def test_share_daily_limit(mount, seeded_db, catalog):
    db = prepare(seeded_db, catalog, max_ops=2)
    mnt = mount(db=db)
    conn = catalog(db)
    os.mkdir(shared(mnt, C))
    share(mnt, C, WEB)                  # operation 1
    unshare(mnt, C, WEB)                # operation 2
    assert ops_count(conn) == charged(2)
    expect_errno(errno.EAGAIN, os.symlink, rel_target(WEB),
                 shared(mnt, C, WEB))
    assert shares_of(conn, WEB) == []
    assert ops_count(conn) == charged(2)
    assert listing(shared(mnt, C)) == []
    # peer folders are not operations: still possible
    os.mkdir(shared(mnt, D))
    expect_errno(errno.EAGAIN, os.symlink, rel_target(BUILD),
                 shared(mnt, D, BUILD))
    os.rmdir(shared(mnt, D))
    assert ops_count(conn) == charged(2)


@pytest.mark.local_only  # the cloud documents no daily limit
def test_share_daily_limit_blocks_cancel(mount, seeded_db, catalog):
    db = prepare(seeded_db, catalog, max_ops=1)
    mnt = mount(db=db)
    conn = catalog(db)
    os.mkdir(shared(mnt, C))
    share(mnt, C, WEB)
    expect_errno(errno.EAGAIN, os.unlink, shared(mnt, C, WEB))
    assert shares_of(conn, WEB) == [C]
    assert links_in(mnt, C) == {WEB: rel_target(WEB)}


@pytest.mark.parametrize('limit', [MAX_SHARES, 3])
def test_share_account_limit(mount, seeded_db, catalog, limit):
    # the catalog prepared one account short of the limit
    db = prepare(seeded_db, catalog, sql=[
        ("UPDATE settings SET value = ? WHERE key = 'max_share_accounts'",
         (limit,))] + fill_shares(A, WEB, limit - 1))
    if CLOUD:   # the cloud's limit (500), made smaller in the stand-in
        mount.servers[db] = TcServer(db, market=True, share_limit=limit)
    mnt = mount(db=db)
    conn = catalog(db)
    os.mkdir(shared(mnt, C))
    os.mkdir(shared(mnt, D))
    share(mnt, C, WEB)                  # the limit-th account
    assert len(shares_of(conn, WEB)) == limit
    expect_errno(errno.EMLINK, os.symlink, rel_target(WEB),
                 shared(mnt, D, WEB))
    assert len(shares_of(conn, WEB)) == limit
    assert D not in shares_of(conn, WEB)
    assert listing(shared(mnt, D)) == []
    assert ops_count(conn) == charged(1)  # the limit is per image
    share(mnt, D, BUILD)
    # a cancelled share frees a place
    unshare(mnt, C, WEB)
    share(mnt, D, WEB)
    assert len(shares_of(conn, WEB)) == limit
    assert D in shares_of(conn, WEB) and C not in shares_of(conn, WEB)


def test_share_again_is_eexist(mount, catalog):
    mnt = mount()
    other = mount(db=mnt.db)            # a second daemon of the same account
    conn = catalog(mnt.db)
    os.mkdir(shared(mnt, C))
    share(mnt, C, WEB)
    expect_errno(errno.EEXIST, os.symlink, rel_target(WEB),
                 shared(mnt, C, WEB))
    expect_errno(errno.EEXIST, os.symlink, custom(mnt, WEB),
                 shared(mnt, C, WEB))
    assert wait_for(lambda: links_in(other, C) == {WEB: rel_target(WEB)},
                    VISIBLE)
    expect_errno(errno.EEXIST, os.symlink, rel_target(WEB),
                 shared(other, C, WEB))
    assert shares_of(conn, WEB) == [C]
    assert ops_count(conn) == charged(1)


def test_ln_sfn_replaces_a_share_link(mount, catalog):
    mnt = mount()
    conn = catalog(mnt.db)
    os.mkdir(shared(mnt, C))
    share(mnt, C, WEB)
    for target in (rel_target(WEB), custom(mnt, WEB)):
        r = run(['ln', '-sfn', target, shared(mnt, C, WEB)])
        assert r.returncode == 0, r.stderr.decode()
        assert shares_of(conn, WEB) == [C]
        assert links_in(mnt, C) == {WEB: rel_target(WEB)}
        assert read_info(os.path.join(custom(mnt, WEB), 'info'))[
            'SHARED_WITH'] == C
    # and from inside the folder, as people type it
    r = run(['ln', '-sfn', rel_target(WEB), WEB], cwd=shared(mnt, C))
    assert r.returncode == 0, r.stderr.decode()
    assert shares_of(conn, WEB) == [C]
    assert links_in(mnt, C) == {WEB: rel_target(WEB)}


# --- 3. cancel -------------------------------------------------------------

def test_cancel_share(mount, catalog):
    mnt = mount()
    conn = catalog(mnt.db)
    info = os.path.join(custom(mnt, WEB), 'info')
    os.mkdir(shared(mnt, C))
    share(mnt, C, WEB)
    assert read_info(info)['SHARED_WITH'] == C     # cat, ls -l, then rm
    os.stat(info)
    share(mnt, C, BUILD)
    assert ops_count(conn) == charged(2)
    os.unlink(shared(mnt, C, WEB))
    assert 'SHARED_WITH' not in read_info(info)
    assert os.stat(info).st_size == len(open(info, 'rb').read())
    assert ops_count(conn) == charged(3)
    assert shares_of(conn, WEB) == []
    assert shares_of(conn, BUILD) == [C]
    assert links_in(mnt, C) == {BUILD: rel_target(BUILD)}
    expect_errno(errno.ENOENT, os.lstat, shared(mnt, C, WEB))
    # the image itself stays
    assert WEB in listing(custom(mnt))
    # rm, the tool
    r = run(['rm', shared(mnt, C, BUILD)])
    assert r.returncode == 0, r.stderr.decode()
    assert shares_of(conn, BUILD) == []
    assert ops_count(conn) == charged(4)  # nothing left to cancel
    expect_errno(errno.ENOENT, os.unlink, shared(mnt, C, WEB))
    assert ops_count(conn) == charged(4)


def test_rename_keeps_shares(mount, catalog):
    owner = mount()
    rcpt = mount(account=C, db=owner.db)
    conn = catalog(owner.db)
    os.mkdir(shared(owner, C))
    os.mkdir(shared(owner, D))
    share(owner, C, WEB)
    share(owner, D, WEB)
    assert wait_for(lambda: visible_to(rcpt, A, WEB), VISIBLE)
    ident = read_info(os.path.join(shared(rcpt, A, WEB), 'info'))['ID']
    new = 'web-server-2026-v2'
    os.rename(custom(owner, WEB), custom(owner, new))
    assert ops_count(conn) == charged(3)
    assert shares_of(conn, new) == [C, D]
    assert links_in(owner, C) == {new: rel_target(new)}
    assert links_in(owner, D) == {new: rel_target(new)}
    assert read_info(os.path.join(custom(owner, new), 'info'))[
        'SHARED_WITH'] == ','.join([C, D])
    assert os.path.isdir(shared(owner, C, new))
    # the recipient sees the new name, the same image
    assert wait_for(lambda: visible_to(rcpt, A, new) and
                    gone_from(rcpt, A, WEB), VISIBLE), \
        'recipient: %r after %.0f s' % (listing(shared(rcpt, A)), VISIBLE)
    info = read_info(os.path.join(shared(rcpt, A, new), 'info'))
    assert info['ID'] == ident and info['NAME'] == new
    # the old link names are gone in the owner's mount, by lookup too,
    # soon (names that can change have short entry timeouts)
    for peer in (C, D):
        assert wait_for(lambda: not os.path.lexists(shared(owner, peer, WEB)),
                        VISIBLE)
        expect_errno(errno.ENOENT, os.lstat, shared(owner, peer, WEB))
        expect_errno(errno.ENOENT, os.readlink, shared(owner, peer, WEB))


@pytest.mark.parametrize('where', [
    'same', pytest.param('other', marks=pytest.mark.local_only)])
def test_renamed_link_gives_the_new_target(mount, where):
    """A link whose target the kernel holds (readlink), in the mount that
    renames its image or in another mount of the owner (two daemons, one
    catalog): once a listing shows the new name, readlink gives the new
    target, never the one the kernel kept of the old link (a renamed
    image's links are new links, with inodes of their own)."""
    owner = mount()
    reader = owner if where == 'same' else mount(db=owner.db)
    os.mkdir(shared(owner, C))
    share(owner, C, WEB)
    assert wait_for(lambda: links_in(reader, C) == {WEB: rel_target(WEB)},
                    VISIBLE), links_in(reader, C)   # in the kernel now
    for old, new in ((WEB, 'web-server-renamed'),
                     ('web-server-renamed', WEB)):
        os.rename(custom(owner, old), custom(owner, new))
        assert wait_for(lambda: new in os.listdir(shared(reader, C)),
                        VISIBLE), listing(shared(reader, C))
        assert os.readlink(shared(reader, C, new)) == rel_target(new)
        assert wait_for(lambda: links_in(reader, C) ==
                        {new: rel_target(new)}, VISIBLE), links_in(reader, C)
        assert os.path.isdir(shared(reader, C, new))   # it resolves


def test_delete_shared_image_is_ebusy(mount, catalog):
    mnt = mount()
    conn = catalog(mnt.db)
    os.mkdir(shared(mnt, C))
    os.mkdir(shared(mnt, D))
    share(mnt, C, WEB)
    share(mnt, D, WEB)
    info = os.path.join(custom(mnt, WEB), 'info')
    expect_errno(errno.EBUSY, os.unlink, info)
    r = run(['rm', '-r', custom(mnt, WEB)])
    assert r.returncode != 0
    assert WEB in listing(custom(mnt)) and os.path.isfile(info)
    assert WEB in committed_names(conn, A)
    assert ops_count(conn) == charged(2), 'a refused delete was charged'
    unshare(mnt, C, WEB)
    expect_errno(errno.EBUSY, os.unlink, info)      # still shared with D
    assert WEB in committed_names(conn, A)
    unshare(mnt, D, WEB)
    r = run(['rm', '-r', custom(mnt, WEB)])
    assert r.returncode == 0, r.stderr.decode()
    assert WEB not in listing(custom(mnt))
    assert WEB not in committed_names(conn, A)


def test_delete_image_shared_by_other_daemon_is_ebusy(mount, catalog):
    mnt = mount()
    other = mount(db=mnt.db)
    conn = catalog(mnt.db)
    info = os.path.join(custom(mnt, BUILD), 'info')
    read_info(info)                     # cached by the first daemon
    os.mkdir(shared(other, C))
    share(other, C, BUILD)
    expect_errno(errno.EBUSY, os.unlink, info)
    assert BUILD in committed_names(conn, A)


# --- 4. the recipient's view -----------------------------------------------

def test_share_and_cancel_seen_by_recipient(mount, catalog):
    owner = mount()
    rcpt = mount(account=C, db=owner.db)
    bystander = mount(account=B, db=owner.db)
    conn = catalog(owner.db)
    # what the recipient's kernel caches before the share
    assert listing(shared(rcpt)) == []
    expect_errno(errno.ENOENT, os.lstat, shared(rcpt, A))
    expect_errno(errno.ENOENT, os.lstat, shared(rcpt, A, WEB))
    os.mkdir(shared(owner, C))
    share(owner, C, WEB)
    assert wait_for(lambda: visible_to(rcpt, A, WEB), VISIBLE), \
        '%s does not see %s/%s %.0f s after the share: %r' % (
            C, A, WEB, VISIBLE, os.listdir(shared(rcpt)))
    # listings follow within the same second (lookups may come first)
    assert wait_for(lambda: listing(shared(rcpt)) == [A], VISIBLE)
    assert wait_for(lambda: listing(shared(rcpt, A)) == [WEB], VISIBLE)
    img = shared(rcpt, A, WEB)
    st = os.lstat(img)
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o555
    assert listing(img) == ['info']
    st = os.lstat(os.path.join(img, 'info'))
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o444
    info = read_info(os.path.join(img, 'info'))
    own = read_info(os.path.join(custom(owner, WEB), 'info'))
    assert info['TYPE'] == 'shared'
    assert info['OWNER'] == A
    assert info['ID'] == own['ID'] == image_id(conn, WEB, A)
    assert info['NAME'] == WEB
    assert info['REGION'] == GZ
    assert 'SHARED_WITH' not in info    # the owner's business
    # the third account sees nothing of it
    assert WEB not in links_in(bystander, A)
    assert gone_from(bystander, A, WEB)
    # cancel: gone soon, and so is the folder nothing else holds
    unshare(owner, C, WEB)
    assert wait_for(lambda: gone_from(rcpt, A, WEB), VISIBLE), \
        '%s still sees %s/%s %.0f s after the cancel' % (C, A, WEB, VISIBLE)
    expect_errno(errno.ENOENT, os.stat, os.path.join(img, 'info'))
    assert wait_for(lambda: A not in os.listdir(shared(rcpt)), VISIBLE), \
        'shared/ of %s: %r' % (C, os.listdir(shared(rcpt)))


def test_three_daemons(mount, catalog):
    owner = mount()
    b = mount(account=B, db=owner.db)
    c = mount(account=C, db=owner.db)
    conn = catalog(owner.db)
    assert gone_from(b, A, WEB) and gone_from(c, A, WEB)
    os.mkdir(shared(owner, C))
    share(owner, B, WEB)                # shared/B exists: B shares ML with A
    share(owner, C, WEB)
    share(owner, C, BUILD)
    assert wait_for(lambda: visible_to(b, A, WEB) and
                    visible_to(c, A, WEB) and visible_to(c, A, BUILD),
                    VISIBLE)
    # B sees its own link to A (ML) beside the image A shares with it
    assert listing(shared(b, A)) == sorted([ML, WEB])
    assert stat.S_ISLNK(os.lstat(shared(b, A, ML)).st_mode)
    assert gone_from(b, A, BUILD)       # shared with C only
    assert listing(shared(c, A)) == sorted([BUILD, WEB])
    assert read_info(os.path.join(custom(owner, WEB), 'info'))[
        'SHARED_WITH'] == ','.join([B, C])
    assert shares_of(conn, WEB) == [B, C]
    # B loses it, C keeps it
    unshare(owner, B, WEB)
    assert wait_for(lambda: gone_from(b, A, WEB), VISIBLE)
    assert visible_to(c, A, WEB)
    assert listing(shared(b, A)) == [ML]
    assert read_info(os.path.join(custom(owner, WEB), 'info'))[
        'SHARED_WITH'] == C


@pytest.fixture
def recipient(mount):
    """A mounted as the recipient of ML (shared by B in the seed)."""
    mnt = mount()
    owner = mount(account=B, db=mnt.db)
    return mnt, owner


def _write_file(path):
    with open(path, 'w') as f:
        f.write('NAME=changed\n')


RECIPIENT_REFUSED = {
    'rename in its folder': (errno.EPERM, lambda m: (
        os.rename, shared(m, B, ML), shared(m, B, 'renamed'))),
    'rename into custom': (errno.EPERM, lambda m: (
        os.rename, shared(m, B, ML), custom(m, ML))),
    'delete (unlink info)': (errno.EPERM, lambda m: (
        os.unlink, os.path.join(shared(m, B, ML), 'info'))),
    'rmdir': ((errno.EPERM, errno.ENOTEMPTY), lambda m: (
        os.rmdir, shared(m, B, ML))),
    'rmdir of the owner folder': (errno.ENOTEMPTY, lambda m: (
        os.rmdir, shared(m, B))),
    'write info': (WRITE_ERRNOS, lambda m: (
        _write_file, os.path.join(shared(m, B, ML), 'info'))),
    'truncate info': (WRITE_ERRNOS, lambda m: (
        os.truncate, os.path.join(shared(m, B, ML), 'info'), 0)),
    'create a file': (WRITE_ERRNOS, lambda m: (
        create_exclusive, os.path.join(shared(m, B, ML), 'notes'))),
    'create a scratch file': (WRITE_ERRNOS, lambda m: (
        create_exclusive, os.path.join(shared(m, B, ML), '.info.swp'))),
    'mkdir in it': (WRITE_ERRNOS, lambda m: (
        os.mkdir, os.path.join(shared(m, B, ML), 'sub'))),
    'symlink in it': (WRITE_ERRNOS, lambda m: (
        os.symlink, 'x', os.path.join(shared(m, B, ML), 'x'))),
    'rename info': (WRITE_ERRNOS + (errno.EPERM,), lambda m: (
        os.rename, os.path.join(shared(m, B, ML), 'info'),
        os.path.join(shared(m, B, ML), 'info~'))),
}


@pytest.mark.parametrize('case', list(RECIPIENT_REFUSED))
def test_recipient_cannot_change_shared_image(recipient, catalog, case):
    mnt, owner = recipient
    conn = catalog(mnt.db)
    errnos, build = RECIPIENT_REFUSED[case]
    func, *args = build(mnt)
    img = shared(mnt, B, ML)
    before = read_info(os.path.join(img, 'info'))
    expect_errno(errnos, func, *args)
    assert listing(shared(mnt, B)) == [ML]
    assert listing(img) == ['info']
    assert read_info(os.path.join(img, 'info')) == before
    assert committed_names(conn, B) == sorted([ML, STAGING])
    assert ML not in listing(custom(mnt))
    assert shares_of(conn, ML, owner=B) == [A]
    assert ops_count(conn, account=A) == charged(0)
    # and the owner's image is untouched
    assert ops_count(conn, account=B) == charged(0)
    assert read_info(os.path.join(custom(owner, ML), 'info'))['NAME'] == ML


def test_recipient_cannot_share_it_on(recipient, catalog):
    mnt, owner = recipient
    conn = catalog(mnt.db)
    os.mkdir(shared(mnt, C))
    for target in ('../%s/%s' % (B, ML), shared(mnt, B, ML),
                   '../../shared/%s/%s' % (B, ML)):
        expect_errno(errno.EPERM, os.symlink, target, shared(mnt, C, ML))
    # not back to its owner's other folders either, nor anywhere else
    expect_errno(errno.EPERM, os.symlink, '../%s/%s' % (B, ML),
                 os.path.join(custom(mnt), ML))
    assert listing(shared(mnt, C)) == []
    assert shares_of(conn, ML, owner=B) == [A]
    assert ops_count(conn) == charged(0)


@pytest.mark.local_only  # the cloud syncs a shared image into its region
def test_recipient_cannot_copy_it(recipient, catalog):
    mnt, owner = recipient
    conn = catalog(mnt.db)
    ident = image_id(conn, ML, B)
    dst = custom(mnt, 'ml-copy')
    os.mkdir(dst)                       # a pending image: allowed
    fd = os.open(os.path.join(dst, 'info'), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        expect_errno(errno.EPERM, os.write, fd, b'ID=%s\n' % ident.encode())
    finally:
        expect_errno(errno.EPERM, os.close, fd)     # the refused text
    assert committed_names(conn, A) == sorted([BUILD, WEB])
    assert ops_count(conn) == charged(0)
    os.rmdir(dst)
    # cp -r, the tool, into the recipient's custom/
    r = run(['cp', '-r', shared(mnt, B, ML), custom(mnt) + '/'])
    assert r.returncode != 0
    assert committed_names(conn, A) == sorted([BUILD, WEB])
    assert ops_count(conn) == charged(0)  # no image in any region came of it
    assert conn.execute(
        "SELECT COUNT(*) FROM images WHERE kind = 'custom' AND owner = ? "
        "AND id IS NOT NULL", (A,)).fetchone()[0] == 2


def test_private_images_stay_private(mount):
    owner = mount()
    b = mount(account=B, db=owner.db)
    c = mount(account=C, db=owner.db)
    os.mkdir(shared(owner, C))
    share(owner, C, WEB)
    assert wait_for(lambda: visible_to(c, A, WEB), VISIBLE)
    # C sees WEB only; BUILD is nowhere, under any name
    assert listing(shared(c, A)) == [WEB]
    for m in (b, c):
        expect_errno(errno.ENOENT, os.lstat, shared(m, A, BUILD))
        expect_errno(errno.ENOENT, os.lstat, custom(m, BUILD))
        expect_errno(errno.ENOENT, os.lstat, custom(m, WEB))
    assert listing(custom(c)) == []
    # B sees none of A's images (its own link to A is ML)
    assert listing(shared(b, A)) == [ML]
    # no path lets C change WEB or BUILD
    expect_errno(errno.EPERM, os.rename, shared(c, A, WEB),
                 shared(c, A, 'stolen'))
    expect_errno(errno.EPERM, os.unlink,
                 os.path.join(shared(c, A, WEB), 'info'))
    os.mkdir(shared(c, B))
    expect_errno(errno.ENOENT, os.symlink, '../../custom/' + BUILD,
                 shared(c, B, BUILD))
    expect_errno(errno.EPERM, os.symlink, '../%s/%s' % (A, WEB),
                 shared(c, B, WEB))
    assert listing(custom(owner)) == sorted([BUILD, WEB])
    assert read_info(os.path.join(custom(owner, WEB), 'info'))[
        'SHARED_WITH'] == C


# --- 5. the owner's view ---------------------------------------------------

def test_shared_with_is_sorted(mount, seeded_db, catalog):
    db = prepare(seeded_db, catalog)    # six operations
    mnt = mount(db=db, extra_opts=['xattr'])
    conn = catalog(mnt.db)
    img = custom(mnt, WEB)
    info = os.path.join(img, 'info')
    assert 'SHARED_WITH' not in read_info(info)
    expect_errno(errno.ENODATA, os.getxattr, img, 'user.imagefs.shared_with')
    os.mkdir(shared(mnt, D))
    os.mkdir(shared(mnt, C))
    share(mnt, D, WEB)                  # not in order
    share(mnt, C, WEB)
    share(mnt, B, WEB)
    want = ','.join([B, C, D])
    assert read_info(info)['SHARED_WITH'] == want
    assert os.stat(info).st_size == len(open(info, 'rb').read())
    assert os.getxattr(img, 'user.imagefs.shared_with') == want.encode()
    assert 'user.imagefs.shared_with' in os.listxattr(img)
    assert shares_of(conn, WEB) == [B, C, D]
    unshare(mnt, C, WEB)
    want = ','.join([B, D])
    assert read_info(info)['SHARED_WITH'] == want
    assert os.getxattr(img, 'user.imagefs.shared_with') == want.encode()
    unshare(mnt, B, WEB)
    unshare(mnt, D, WEB)
    assert 'SHARED_WITH' not in read_info(info)
    expect_errno(errno.ENODATA, os.getxattr, img, 'user.imagefs.shared_with')


def test_ls_l_shows_outgoing_links(mount):
    mnt = mount()
    os.mkdir(shared(mnt, C))
    os.mkdir(shared(mnt, D))
    share(mnt, C, WEB)
    share(mnt, C, BUILD)
    share(mnt, D, WEB)
    share(mnt, B, BUILD)
    r = run(['sh', '-c', 'ls -l %s/shared/*/' % GZ], cwd=mnt)
    assert r.returncode == 0, r.stderr.decode()
    links, dirs, folder = set(), set(), None
    for line in r.stdout.decode().splitlines():
        if line.endswith('/:'):
            folder = line[:-2].split('/')[-1]
        elif line.startswith('l'):
            name, _, target = line.split(None, 8)[8].partition(' -> ')
            links.add((folder, name, target))
        elif line.startswith('d'):
            dirs.add((folder, line.split(None, 8)[8]))
    assert links == {(C, WEB, rel_target(WEB)), (C, BUILD, rel_target(BUILD)),
                     (D, WEB, rel_target(WEB)), (B, BUILD, rel_target(BUILD))}
    assert dirs == {(B, ML)}            # incoming, an image directory
    # the links resolve: ls -lL follows them
    r = run(['ls', '-lL', shared(mnt, C)])
    assert r.returncode == 0, r.stderr.decode()
    assert sum(line.startswith('d') for line in
               r.stdout.decode().splitlines()) == 2


# --- 6. several daemons ----------------------------------------------------

def test_share_and_cancel_seen_by_other_mount_of_owner(mount, catalog):
    a1 = mount()
    a2 = mount(db=a1.db)
    conn = catalog(a1.db)
    os.mkdir(shared(a1, C))
    if CLOUD:   # peer folders live in each mount's own cache
        os.mkdir(shared(a2, C))
    assert wait_for(lambda: os.path.isdir(shared(a2, C)), VISIBLE)
    assert links_in(a2, C) == {}        # cached empty by a2
    share(a1, C, WEB)
    assert wait_for(lambda: links_in(a2, C) == {WEB: rel_target(WEB)},
                    VISIBLE), 'a2: %r' % links_in(a2, C)
    assert wait_for(lambda: read_info(os.path.join(custom(a2, WEB), 'info'))
                    .get('SHARED_WITH') == C, VISIBLE)
    # the second mount cancels; the first sees it go
    unshare(a2, C, WEB)
    assert shares_of(conn, WEB) == []
    assert wait_for(lambda: links_in(a1, C) == {} and
                    not exists(shared(a1, C, WEB)), VISIBLE), \
        'a1: %r' % links_in(a1, C)
    assert wait_for(lambda: 'SHARED_WITH' not in read_info(
        os.path.join(custom(a1, WEB), 'info')), VISIBLE)
    assert ops_count(conn) == charged(2)


def _race(jobs):
    """Run the callables at once (a barrier); their errno, 0 for success."""
    barrier = threading.Barrier(len(jobs))
    results = [None] * len(jobs)

    def worker(i, job):
        barrier.wait()
        try:
            job()
            results[i] = 0
        except OSError as e:
            results[i] = e.errno

    threads = [threading.Thread(target=worker, args=(i, j))
               for i, j in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), 'a share hangs'
    return results


RACERS = [str(300000000000 + i) for i in range(10)]


@pytest.mark.local_only  # peer folders live in the cache
def test_concurrent_shares_never_exceed_the_limit(mount, seeded_db, catalog):
    db = prepare(seeded_db, catalog,
                 sql=fill_shares(A, WEB, MAX_SHARES - 1) +
                 add_peers(A, RACERS))
    a1 = mount(db=db)
    a2 = mount(db=db)
    conn = catalog(db)
    for m in (a1, a2):
        assert all(os.path.isdir(shared(m, p)) for p in RACERS)
    # half the peers from each daemon
    jobs = [(lambda m=(a1, a2)[i % 2], p=p: share(m, p, WEB))
            for i, p in enumerate(RACERS)]
    results = _race(jobs)
    names = [errno.errorcode.get(r, r) if r else 'ok' for r in results]
    assert results.count(0) == 1, names
    assert all(r == errno.EMLINK for r in results if r), names
    assert len(shares_of(conn, WEB)) == MAX_SHARES
    assert ops_count(conn) == charged(1)
    winner = RACERS[results.index(0)]
    assert winner in shares_of(conn, WEB)
    for m in (a1, a2):
        assert wait_for(lambda m=m: [p for p in RACERS if links_in(m, p)] ==
                        [winner], VISIBLE)


@pytest.mark.local_only  # peer folders live in the cache
def test_concurrent_shares_with_one_account(mount, seeded_db, catalog):
    db = prepare(seeded_db, catalog, sql=add_peers(A, [C]))
    a1 = mount(db=db)
    a2 = mount(db=db)
    conn = catalog(db)
    jobs = [(lambda m=m: share(m, C, WEB)) for m in (a1, a2, a1, a2)]
    results = _race(jobs)
    names = [errno.errorcode.get(r, r) if r else 'ok' for r in results]
    assert results.count(0) == 1, names
    assert all(r == errno.EEXIST for r in results if r), names
    assert shares_of(conn, WEB) == [C]
    assert ops_count(conn) == charged(1)
    for m in (a1, a2):
        assert wait_for(lambda m=m: links_in(m, C) == {WEB: rel_target(WEB)},
                        VISIBLE)
