# SPDX-License-Identifier: GPL-2.0
"""Mounted tests of the tencentcloud backend (issue 10; DESIGN.md 1 to 4).

Each test mounts ./imagefs with -o backend=tencentcloud (the cache over
the cloud client) on the loopback stand-in API server of tests/tcserver.py
(one per test, over its own seeded state file) and checks, through real
syscalls on the mount and the requests the server received:

- listings: every folder's first listing right after mounting, several at
  a time within the cloud's rate limit; DescribeImages per folder kind
  (paging until TotalCount); a listed folder served while the cloud holds
  another call; market/ empty (said once) when the cloud refuses its
  filter; DescribeImageSharePermission only when SHARED_WITH or shared/
  needs it; the quota of DescribeImageQuota with pending images counted;
  no daily limit;
- changes: the exact request of each command (CreateImage; ImportImage with
  the cloud's Architecture, OsType and OsVersion from
  DescribeImportImageOs, a COS URL, Force for ISO files, its ImageId;
  SyncImages with ImageSetRequired; DeleteImages; ModifyImageAttribute;
  ModifyImageSharePermission), what the cloud cannot take refused before
  any change, no ghost entry, and never a source deleted while its copy
  runs;
- images that settle (CREATING, SYNCING, IMPORTING) as the stand-in's clock
  moves, polled by id a page at a time;
- headers, TC3-HMAC-SHA256, X-TC-Language, the Host signed as sent, plain
  http refused but on loopback, answers that are not the API's (EIO);
- failures: throttling retried with backoff then EAGAIN, 5xx, dropped
  connections and slow replies retried for Describe* only, a change
  without an answer not retried (EIO), an unknown error code (EIO, with the
  code and RequestId in the log and user.imagefs.error), and the cloud's
  codes mapped to the errno of section 4 with nothing changed;
- Ctrl-C of a process waiting on the cloud, unmount with calls in flight;
- credentials: environment, -o credentials, -o profile, $TCCLI_PROFILE,
  which wins, tccli's 0644 files taken with a warning, files others may
  write refused before mounting, and no secret in the log, even with debug;
- the listing cache: one fetch with a long ttl, served while the cloud is
  gone, the cloud's changes shown within seconds in every folder, and where
  the cache file lives.

Errors are checked by errno symbol, never by message text; waiting is
polling with deadlines (stretched by conftest.SLOW), never a fixed sleep.
"""

import errno
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

import conftest
from helpers import (expect_errno, listing, quote, read_info, render, run,
                     write_all, write_file)
from conftest import (DEMO_ACCOUNT, PEER_ACCOUNT, SLOW, fusermount,
                      imagefs_bin, in_mount_table, wait_for)
from tcserver import TcServer, test_keys

GZ = 'ap-guangzhou'             # the seed's custom images; copy supported
BJ = 'ap-beijing'               # copy supported
SG = 'ap-singapore'             # no copy
ME = DEMO_ACCOUNT               # owns WEB and AGENT in GZ
PEER = PEER_ACCOUNT             # owns ML (shared with ME) and STAGING
OTHER = '100000000003'          # an account with nothing
WEB = 'web-server-2026'
AGENT = 'build-agent'
ML = 'ml-training-base'
STAGING = 'staging-db'

TC = 'tencentcloud'
PAGE = 100                      # DescribeImages' Limit
IMAGE_TYPES = {'public': 'PUBLIC_IMAGE', 'market': 'MARKET_IMAGE',
               'custom': 'PRIVATE_IMAGE', 'shared': 'SHARED_IMAGE'}
SHOWS_WITHIN = 5.0 * SLOW       # s: a change behind the daemon's back
GRACE = 5.0                     # s: a change nobody collects is applied
BACKOFF_TOTAL = 0.2 + 0.4 + 0.8  # s: the least the three retries wait

AUTH_RE = re.compile(
    r'TC3-HMAC-SHA256 Credential=([^/]+)/(\d{4}-\d{2}-\d{2})/cvm/'
    r'tc3_request, SignedHeaders=content-type;host, '
    r'Signature=[0-9a-f]{64}\Z')
UUID_RE = r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'
ID_RE = re.compile(r'img-[0-9a-z]{8}\Z')


# --- helpers ---------------------------------------------------------------

def requests_of(server, action, region=None, dry_run=False):
    """The requests of action (to region) the server received, in order.

    A request with DryRun true (a check the daemon may make at write(2),
    which changes nothing) counts only with dry_run=True; DryRun false is
    left out of the bodies, being the same request as without it.
    """
    found = []
    for r in list(server.requests):
        if r['action'] != action or \
                (region is not None and r['region'] != region):
            continue
        body = dict(r['body'] or {})
        if body.get('DryRun') is not dry_run and \
                (dry_run or 'DryRun' in body):
            continue
        body.pop('DryRun', None)
        found.append(dict(r, body=body))
    return found


def sent(server, action):
    """How many requests of action the server received, dry runs too."""
    return len([r for r in list(server.requests) if r['action'] == action])


def bodies(server, action, region=None):
    return [r['body'] for r in requests_of(server, action, region)]


def listing_bodies(server, region, kind):
    """The DescribeImages bodies that listed one folder kind of region."""
    want = [{'Name': 'image-type', 'Values': [IMAGE_TYPES[kind]]}]
    return [b for b in bodies(server, 'DescribeImages', region)
            if b.get('Filters') == want]


def kind_of(body):
    """The folder kind a DescribeImages body lists, or None."""
    for kind, value in IMAGE_TYPES.items():
        if body.get('Filters') == [{'Name': 'image-type',
                                    'Values': [value]}]:
            return kind
    return None


def all_listed(server):
    """Whether every folder of every region was listed."""
    listed = {(b['region'], kind_of(b['body']))
              for b in requests_of(server, 'DescribeImages')}
    return len(listed - {(r, None) for r, _ in listed}) == 16 * 4


def describing(region, kind):
    """A fault's predicate: the listing of one folder."""
    return lambda r: (r['action'] == 'DescribeImages' and
                      r['region'] == region and kind_of(r['body']) == kind)


class Background:
    """func(*args) in a thread: done(), then result() (or its error)."""

    def __init__(self, func, *args):
        self.outcome = None
        self.thread = threading.Thread(target=self._run, args=(func, args),
                                       daemon=True)
        self.thread.start()

    def _run(self, func, args):
        try:
            self.outcome = ('ok', func(*args))
        except BaseException as e:      # handed to result()
            self.outcome = ('error', e)

    def done(self):
        return not self.thread.is_alive()

    def result(self, timeout=30.0 * SLOW):
        self.thread.join(timeout)
        assert self.outcome, 'still running after %.0f s' % timeout
        if self.outcome[0] == 'error':
            raise self.outcome[1]
        return self.outcome[1]


def describe_body(kind, offset=0):
    return {'Filters': [{'Name': 'image-type',
                         'Values': [IMAGE_TYPES[kind]]}],
            'Offset': offset, 'Limit': PAGE}


def folder(mnt, kind, name=None, region=GZ):
    parts = [mnt, region, kind] + ([name] if name else [])
    return os.path.join(*parts)


def info_path(mnt, name, region=GZ, kind='custom'):
    return os.path.join(folder(mnt, kind, name, region), 'info')


def cloud_db(server):
    conn = sqlite3.connect(server.db_path, timeout=10)
    conn.row_factory = sqlite3.Row
    return conn


def cloud_rows(server, sql, *args):
    conn = cloud_db(server)
    try:
        return [tuple(r) for r in conn.execute(sql, args).fetchall()]
    finally:
        conn.close()


def add_cloud_images(server, images):
    """Put images (dicts of the images table's columns, created and mtime
    at 2026-01-01 unless given) into the cloud's state."""
    conn = cloud_db(server)
    with conn:
        for img in images:
            img = dict(dict(created=1767225600, mtime=1767225600), **img)
            cols = sorted(img)
            conn.execute('INSERT INTO images (%s) VALUES (%s)'
                         % (', '.join(cols), ', '.join('?' * len(cols))),
                         [img[c] for c in cols])
    conn.close()


def cloud_exec(server, sql, *args):
    conn = cloud_db(server)
    try:
        with conn:
            conn.execute(sql, args)
    finally:
        conn.close()


def cloud_image(server, name, region=GZ, owner=ME):
    """The cloud's row of my custom image name (a dict), or None."""
    conn = cloud_db(server)
    try:
        r = conn.execute(
            "SELECT * FROM images WHERE kind = 'custom' AND owner = ? AND "
            "region = ? AND name = ? AND state <> 'PENDING'",
            (owner, region, name)).fetchone()
        return dict(r) if r else None
    finally:
        conn.close()


def cloud_id(server, name, region=GZ, owner=ME):
    img = cloud_image(server, name, region, owner)
    assert img, 'the cloud has no image %r of %s in %s' % (name, owner,
                                                         region)
    return img['id']


def snapshot(server):
    """The cloud's state that a change may touch: custom images, shares,
    counted operations."""
    return (cloud_rows(server, "SELECT row, id, region, owner, name, "
                       "description, state, source FROM images WHERE "
                       "kind = 'custom' ORDER BY row"),
            cloud_rows(server, 'SELECT image, account FROM shares '
                       'ORDER BY 1, 2'),
            cloud_rows(server, 'SELECT account, region, day, count FROM '
                       'ops ORDER BY 1, 2, 3'))


def mount_tc(mount, env=None, **kw):
    """mount(backend='tencentcloud', ...).

    Works around conftest.py's _start, which builds the environment with
    dict(os.environ, **base_env, **env) and so raises TypeError when env
    names a variable that cloud_opts sets too (TENCENTCLOUD_SECRET_ID ...):
    those are taken out of cloud_opts' environment for this one mount, the
    test's env then providing them (or, with None, taking them away).
    """
    if not env:
        return mount(backend=TC, **kw)
    original = conftest.cloud_opts

    def cloud_opts(*args, **kwargs):
        opts, base_env = original(*args, **kwargs)
        return opts, {k: v for k, v in base_env.items() if k not in env}

    conftest.cloud_opts = cloud_opts
    try:
        return mount(backend=TC, env=env, **kw)
    finally:
        conftest.cloud_opts = original


def new_server(mount, tmp_path, **kw):
    """A stand-in server of this test's default catalog, made before the
    mount so that the test chooses its settings (settle, lag, market,
    faults ...)."""
    db = os.fspath(tmp_path / 'imagefs.db')
    server = TcServer(db, **dict(dict(market=True), **kw))
    mount.servers[db] = server
    return server


def mkdir_commit(mnt, name, text, region=GZ):
    """mkdir a pending image and write text to its info: the info dict."""
    path = folder(mnt, 'custom', name, region)
    os.mkdir(path)
    write_file(os.path.join(path, 'info'), text)
    return read_info(os.path.join(path, 'info'))


def commit_armed(mnt, name, text, arm, region=GZ):
    """mkdir name, write text to its info, call arm() (to inject a fault
    into the commit itself, after what write(2) may have checked), then
    close: the close's OSError propagates."""
    path = folder(mnt, 'custom', name, region)
    os.mkdir(path)
    fd = os.open(os.path.join(path, 'info'),
                 os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write_all(fd, text)
        arm()
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)


def try_info(path):
    try:
        return read_info(path)
    except OSError:
        return None


def in_listing(path, name):
    try:
        return name in os.listdir(path)
    except OSError:
        return False


def add_behind_the_back(server):
    """The cloud gains my custom image made-elsewhere in GZ (as if made in
    the console), without the daemon's doing."""
    cloud_exec(server,
               "INSERT INTO images (id, region, kind, owner, name, os_name, "
               "os_type, platform, arch, bits, size_gb, state, created, "
               "mtime, description, source) VALUES ('img-bhnd0001', ?, "
               "'custom', ?, 'made-elsewhere', 'TencentOS Server 3.1', "
               "'linux', 'TencentOS', 'x86_64', 64, 50, 'NORMAL', "
               "1767225600, 1767225600, 'made in the console', "
               "'instance:ins-zzzz0001')", GZ, ME)


def cache_dir(tmp_path):
    return tmp_path / 'cache' / 'imagefs'


def is_sqlite(path):
    with open(path, 'rb') as f:
        return f.read(16) == b'SQLite format 3\x00'


def credential_file(path, secret_id, secret_key, token=None, mode=0o600):
    data = {'secretId': secret_id, 'secretKey': secret_key}
    if token is not None:
        data['token'] = token
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    os.chmod(path, mode)
    return path


# environment of a daemon that must find its keys elsewhere
NO_ENV_KEYS = {'TENCENTCLOUD_SECRET_ID': None, 'TENCENTCLOUD_SECRET_KEY': None,
               'TENCENTCLOUD_TOKEN': None,
               'TENCENTCLOUD_SECURITY_TOKEN': None, 'TCCLI_PROFILE': None}


def refused_mount(tmp_path, server, opts, env, name='refused'):
    """Run the daemon in the foreground where it must fail before
    mounting: (exit status, output). Fails the test if it mounts; nothing
    is left mounted either way."""
    mnt = tmp_path / name
    mnt.mkdir()
    out = tmp_path / (name + '.log')
    full_env = dict(os.environ, **env)
    full_env = {k: v for k, v in full_env.items() if v is not None}
    cmd = [imagefs_bin(), '-f', '-o', ','.join(
        ['backend=tencentcloud', 'endpoint=%s' % server.url,
         'account=%s' % ME] + list(opts)), os.fspath(mnt)]
    with open(out, 'wb') as f:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f,
                                stderr=subprocess.STDOUT, env=full_env)
    try:
        done = wait_for(lambda: proc.poll() is not None or
                        in_mount_table(mnt), 10.0 * SLOW)
        mounted = in_mount_table(mnt)
    finally:
        if in_mount_table(mnt):
            fusermount(mnt, '-u')
        try:
            proc.wait(timeout=5.0 * SLOW)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if in_mount_table(mnt):
            fusermount(mnt, '-u', '-z')
    text = out.read_text(errors='replace')
    assert done and not mounted, 'imagefs mounted with %r:\n%s' % (opts,
                                                                   text)
    return proc.returncode, text


# --- listings: item 3 and 4 of issue 10 -----------------------------------

@pytest.mark.parametrize('kind', ['public', 'market', 'custom', 'shared'])
def test_listing_sends_describe_images(mount, kind):
    m = mount_tc(mount)
    region = BJ if kind in ('public', 'market') else GZ
    names = os.listdir(folder(m, kind, region=region))
    pages = [r for r in requests_of(m.server, 'DescribeImages', region)
             if r['body'].get('Filters') == describe_body(kind)['Filters']]
    assert pages and all(r['body'] == describe_body(kind) for r in pages)
    assert pages[0]['uin'] == ME
    if kind == 'custom':
        assert sorted(names) == sorted([WEB, AGENT])
    elif kind == 'shared':
        assert names == [PEER]
        assert listing(folder(m, kind, PEER)) == [ML]
    else:
        assert names, 'the seed has %s images in %s' % (kind, region)


def test_first_listings_of_every_region_right_after_mounting(mount,
                                                            tmp_path):
    """Every folder's first listing is asked for at once, several at a
    time (at most the cloud's 40 DescribeImages a second)."""
    server = new_server(mount, tmp_path, lag=0.05)
    m = mount_tc(mount)
    regions = listing(m)
    assert len(regions) == 16
    assert wait_for(lambda: all_listed(server), 30 * SLOW)
    assert server.most_in_flight > 1, 'one listing at a time'
    times = sorted(r['time'] for r in server.requests
                   if r['action'] == 'DescribeImages')
    # at most the cloud's 40 a second (what the network shifts aside)
    for i, t in enumerate(times):
        assert len([u for u in times[i:] if u < t + 0.9]) <= 40


def test_a_listed_folder_never_waits_on_a_slow_call(mount, tmp_path):
    """ls of a folder the cache has while a listing the cloud holds: the
    mount serves it; only the request that needs the held one waits."""
    server = new_server(mount, tmp_path)
    held = server.hold(when=describing(BJ, 'custom'))
    m = mount_tc(mount)
    assert sorted(listing(folder(m, 'custom'))) == sorted([WEB, AGENT])
    # a new image in BJ needs BJ's first listing, which the cloud holds
    slow = Background(os.mkdir, folder(m, 'custom', 'waits', BJ))
    try:
        assert wait_for(lambda: server.in_flight, 10 * SLOW) or slow.done()
        for _ in range(20):
            assert sorted(listing(folder(m, 'custom'))) == \
                sorted([WEB, AGENT])
            read_info(info_path(m, WEB))
        assert not slow.done(), 'the held listing did not hold'
    finally:
        held.set()
    slow.result()
    assert listing(folder(m, 'custom', region=BJ)) == ['waits']


def test_market_refused_is_empty_and_said_once(mount, tmp_path):
    new_server(mount, tmp_path, market=False)
    m = mount_tc(mount)
    assert listing(folder(m, 'market')) == []
    assert listing(folder(m, 'market', region=BJ)) == []
    assert sorted(listing(os.path.join(m, GZ))) == [
        'custom', 'market', 'public', 'shared']
    assert os.stat(folder(m, 'market')).st_nlink == 2
    assert m.log_text().count('MARKET_IMAGE') == 1


def test_listing_pages_until_total_count(mount, tmp_path):
    server = new_server(mount, tmp_path)
    add_cloud_images(server, [
        dict(id='img-pg%06d' % i, region=SG, kind='public',
             owner='tencentcloud', name='paged-%03d' % i, os_name='Paged OS',
             os_type='linux', platform='Paged', arch='x86_64', bits=64,
             size_gb=20, state='NORMAL') for i in range(230)])
    total = cloud_rows(server, "SELECT count(*) FROM images WHERE "
                       "region = ? AND kind = 'public'", SG)[0][0]
    m = mount_tc(mount)
    names = os.listdir(folder(m, 'public', region=SG))
    assert len(names) == total
    assert {'paged-%03d' % i for i in range(230)} <= set(names)
    pages = listing_bodies(m.server, SG, 'public')
    offsets = list(range(0, total, PAGE))
    assert pages[:len(offsets)] == [describe_body('public', o)
                                    for o in offsets]
    assert read_info(info_path(m, 'paged-229', SG, 'public'))['ID'] == \
        'img-pg000229'


def test_sharing_state_is_asked_when_needed(mount):
    """DescribeImageSharePermission: for SHARED_WITH and the shared/
    listings, once each image, not at every listing of custom/."""
    m = mount_tc(mount, extra_opts=['cache_ttl=3600'])
    for _ in range(3):
        assert sorted(listing(folder(m, 'custom'))) == sorted([WEB, AGENT])
    assert not requests_of(m.server, 'DescribeImageSharePermission')
    web = cloud_id(m.server, WEB)
    read_info(info_path(m, WEB))
    read_info(info_path(m, WEB))
    asked = bodies(m.server, 'DescribeImageSharePermission')
    assert asked == [{'ImageId': web}]
    assert listing(folder(m, 'shared')) == [PEER]
    asked = bodies(m.server, 'DescribeImageSharePermission')
    assert sorted(b['ImageId'] for b in asked) == sorted(
        [web, cloud_id(m.server, AGENT)])
    listing(folder(m, 'shared', PEER))
    read_info(info_path(m, AGENT))
    assert len(bodies(m.server, 'DescribeImageSharePermission')) == 2


def test_quota_from_describe_image_quota(mount, tmp_path):
    server = new_server(mount, tmp_path)
    cloud_exec(server, "UPDATE settings SET value = 4 WHERE "
               "key = 'max_custom_images'")
    m = mount_tc(mount, extra_opts=['xattr'])
    sv = os.statvfs(folder(m, 'custom'))
    assert (sv.f_files, sv.f_ffree) == (4, 2)
    assert bodies(m.server, 'DescribeImageQuota', GZ) == [{}]
    # pending images count against it, in the cache: no request
    os.mkdir(folder(m, 'custom', 'third'))
    os.mkdir(folder(m, 'custom', 'fourth'))
    before = len(m.server.requests)
    expect_errno(errno.EDQUOT, os.mkdir, folder(m, 'custom', 'fifth'))
    assert not [r for r in m.server.requests[before:]
                if not r['action'].startswith('Describe')]
    assert os.getxattr(folder(m, 'custom'), 'user.imagefs.images') == \
        b'4/4'
    # no daily limit: no ops_today
    assert 'user.imagefs.ops_today' not in os.listxattr(folder(m, 'custom'))
    os.rmdir(folder(m, 'custom', 'fourth'))
    os.mkdir(folder(m, 'custom', 'fifth'))


def test_no_daily_limit(mount):
    m = mount_tc(mount)
    name = WEB
    for n in range(8):
        new = 'web-%d' % n
        os.rename(folder(m, 'custom', name), folder(m, 'custom', new))
        name = new
    assert len(requests_of(m.server, 'ModifyImageAttribute')) == 8
    assert cloud_image(m.server, 'web-7')['id']


# --- changes: the request of each command ----------------------------------

def test_create_image_from_instance(mount):
    m = mount_tc(mount)
    info = mkdir_commit(m, 'from-instance', 'INSTANCE=ins-abcd1234\n'
                        'DESCRIPTION=%s\n' % quote('made by $USER'))
    assert bodies(m.server, 'CreateImage') == [
        {'InstanceId': 'ins-abcd1234', 'ImageName': 'from-instance',
         'ImageDescription': 'made by $USER'}]
    assert requests_of(m.server, 'CreateImage')[0]['region'] == GZ
    img = cloud_image(m.server, 'from-instance')
    assert img['source'] == 'instance:ins-abcd1234'
    assert ID_RE.match(info['ID']) and info['ID'] == img['id']
    assert info['NAME'] == 'from-instance'
    assert info['TYPE'] == 'custom' and info['REGION'] == GZ
    assert info['OWNER'] == ME
    assert info['STATE'] == 'NORMAL'
    assert info['SOURCE'] == 'instance:ins-abcd1234'
    assert info['DESCRIPTION'] == 'made by $USER'
    assert 'INSTANCE' not in info
    assert listing(folder(m, 'custom', 'from-instance')) == ['info']


def test_create_image_without_description(mount):
    m = mount_tc(mount)
    mkdir_commit(m, 'bare', 'INSTANCE=ins-0a1b2c3d\n', region=BJ)
    reqs = requests_of(m.server, 'CreateImage')
    assert [r['body'] for r in reqs] == [
        {'InstanceId': 'ins-0a1b2c3d', 'ImageName': 'bare'}]
    assert reqs[0]['region'] == BJ
    assert cloud_image(m.server, 'bare', BJ)['region'] == BJ


@pytest.mark.parametrize('text', ['DESCRIPTION="no source"\n',
                                  'OS_TYPE=linux\nARCH=x86_64\n'],
                         ids=['description', 'os-keys'])
def test_commit_without_instance_or_url_is_einval(mount, text):
    m = mount_tc(mount)
    path = folder(m, 'custom', 'nothing')
    os.mkdir(path)
    before = snapshot(m.server)

    def write_close():
        fd = os.open(os.path.join(path, 'info'), os.O_WRONLY | os.O_CREAT,
                     0o644)
        try:
            write_all(fd, text)
        finally:
            os.close(fd)

    expect_errno(errno.EINVAL, write_close)
    assert snapshot(m.server) == before
    assert not sent(m.server, 'CreateImage')
    assert not sent(m.server, 'ImportImage')
    assert listing(path) == []                  # still pending
    assert 'nothing' in listing(folder(m, 'custom'))


def test_touch_info_is_einval(mount):
    """touch of a pending info: the cloud needs an instance or a URL, and
    close(2) says so (EINVAL), nothing asked of the cloud."""
    m = mount_tc(mount)
    path = folder(m, 'custom', 'touched')
    os.mkdir(path)
    before = snapshot(m.server)
    try:
        fd = os.open(os.path.join(path, 'info'), os.O_WRONLY | os.O_CREAT,
                     0o644)
        expect_errno(errno.EINVAL, os.close, fd)
        r = run(['touch', os.path.join(path, 'info')])
        assert r.returncode != 0, 'touch succeeded'
    finally:
        assert not sent(m.server, 'CreateImage')
        assert snapshot(m.server) == before
        assert listing(path) == []              # still pending


COS = 'https://golden-1250000000.cos.ap-guangzhou.myqcloud.com'


def test_import_image(mount):
    m = mount_tc(mount)
    url = COS + '/golden.qcow2?q-sign-algorithm=sha1&q-signature=secret'
    text = ('IMPORT_URL=%s\nOS_TYPE=linux\nOS_NAME="Ubuntu 22.04 LTS"\n'
            'PLATFORM=Ubuntu\nARCH=arm64\nDESCRIPTION=golden\n' % quote(url))
    info = mkdir_commit(m, 'golden', text)
    reqs = requests_of(m.server, 'ImportImage')
    assert len(reqs) == 1 and reqs[0]['region'] == GZ
    assert reqs[0]['body'] == {
        'ImageUrl': url, 'Architecture': 'arm_64', 'OsType': 'Ubuntu',
        'OsVersion': '22.04', 'ImageName': 'golden',
        'ImageDescription': 'golden'}
    # the id is ImportImage's own answer: no search by name
    assert not [b for b in bodies(m.server, 'DescribeImages')
                if 'image-name' in json.dumps(b)]
    img = cloud_image(m.server, 'golden')
    assert info['ID'] == img['id']
    assert info['SOURCE'] == 'import:%s/golden.qcow2' % COS
    assert info['ARCH'] == 'arm64' and info['PLATFORM'] == 'Ubuntu'
    assert info['STATE'] == 'NORMAL'
    assert 'IMPORT_URL' not in info
    with open(info_path(m, 'golden'), 'rb') as f:
        assert b'secret' not in f.read()


def test_import_os_from_os_name_and_iso_forced(mount):
    m = mount_tc(mount)
    mkdir_commit(m, 'centos', 'IMPORT_URL=%s/c7.raw\nOS_TYPE=linux\n'
                 'OS_NAME="CentOS 7.9 64bit"\nARCH=x86_64\n' % COS)
    mkdir_commit(m, 'installer', 'IMPORT_URL=%s/c6.ISO\nOS_TYPE=linux\n'
                 'PLATFORM=CentOS\nOS_NAME=6\nARCH=i386\n' % COS)
    assert bodies(m.server, 'ImportImage') == [
        {'ImageUrl': COS + '/c7.raw', 'Architecture': 'x86_64',
         'OsType': 'CentOS', 'OsVersion': '7', 'ImageName': 'centos'},
        {'ImageUrl': COS + '/c6.ISO', 'Architecture': 'i386',
         'OsType': 'CentOS', 'OsVersion': '6', 'ImageName': 'installer',
         'Force': True}]
    # the cloud's OS list is asked once
    assert sent(m.server, 'DescribeImportImageOs') == 1


@pytest.mark.parametrize('url, keys', [
    ('https://images.example.com/a.qcow2', 'PLATFORM=Ubuntu\nARCH=x86_64'),
    ('file:///tmp/a.qcow2', 'PLATFORM=Ubuntu\nARCH=x86_64'),
    (COS + '/a.qcow2', 'PLATFORM=Plan9\nARCH=x86_64'),
    (COS + '/a.qcow2', 'PLATFORM=CentOS\nOS_NAME="CentOS 8"\nARCH=x86_64'),
    (COS + '/a.qcow2', 'PLATFORM=CentOS\nARCH=arm64'),
    (COS + '/a.qcow2', 'PLATFORM="Windows Server 2016"\nARCH=x86_64'),
], ids=['not-cos', 'file', 'platform', 'version', 'arch', 'os-type'])
def test_import_refused_before_any_change(mount, url, keys):
    m = mount_tc(mount)
    path = folder(m, 'custom', 'refused')
    os.mkdir(path)
    before = snapshot(m.server)
    expect_errno(errno.EINVAL, write_file, os.path.join(path, 'info'),
                 'IMPORT_URL=%s\nOS_TYPE=linux\n%s\n' % (quote(url), keys))
    assert not sent(m.server, 'ImportImage')
    assert snapshot(m.server) == before
    assert listing(path) == []


def test_import_without_arch_is_einval_before_any_request(mount):
    m = mount_tc(mount)
    path = folder(m, 'custom', 'no-arch')
    os.mkdir(path)
    expect_errno(errno.EINVAL, write_file, os.path.join(path, 'info'),
                 'IMPORT_URL=%s/a.raw\nOS_TYPE=linux\nPLATFORM=Ubuntu\n'
                 % COS)
    assert not sent(m.server, 'ImportImage')
    assert listing(path) == []


def test_cp_r_sends_sync_images_to_the_source_region(mount):
    m = mount_tc(mount)
    src = read_info(info_path(m, WEB))
    r = run(['cp', '-r', folder(m, 'custom', WEB),
             folder(m, 'custom', region=BJ) + '/'])
    assert r.returncode == 0, r.stderr
    reqs = requests_of(m.server, 'SyncImages')
    assert len(reqs) == 1
    assert reqs[0]['region'] == GZ               # the source region
    assert reqs[0]['body'] == {'ImageIds': [src['ID']],
                               'DestinationRegions': [BJ],
                               'ImageName': WEB, 'ImageSetRequired': True}
    copy = read_info(info_path(m, WEB, BJ))
    assert copy['SOURCE'] == 'copy:%s@%s' % (src['ID'], GZ)
    assert copy['ID'] == cloud_id(m.server, WEB, BJ) != src['ID']
    assert copy['REGION'] == BJ
    # within a region: the cloud copies a custom image elsewhere only
    path = folder(m, 'custom', 'twin')
    os.mkdir(path)
    expect_errno(errno.EOPNOTSUPP, write_file, os.path.join(path, 'info'),
                 'ID=%s\n' % src['ID'])
    assert listing(path) == []


def test_cp_r_of_an_image_shared_with_me(mount):
    """The cloud syncs a shared image into its own region only."""
    m = mount_tc(mount)
    src = folder(m, 'shared', PEER + '/' + ML)
    r = run(['cp', '-r', src, folder(m, 'custom') + '/'])
    assert r.returncode == 0, r.stderr
    info = read_info(info_path(m, ML))
    assert info['OWNER'] == ME and info['TYPE'] == 'custom'
    path = folder(m, 'custom', ML, BJ)
    os.mkdir(path)
    expect_errno(errno.EOPNOTSUPP, write_file, os.path.join(path, 'info'),
                 'ID=%s\n' % info['SOURCE'].split(':')[1].split('@')[0])
    assert listing(path) == []


def test_sync_answer_without_an_image_set_leaves_no_ghost(mount):
    m = mount_tc(mount)
    web = cloud_id(m.server, WEB)
    m.server.http_error(200, body=b'{"Response": {"RequestId": "r-1"}}',
                        action='SyncImages',
                        when=lambda r: not r['body'].get('DryRun'))
    path = folder(m, 'custom', WEB, BJ)
    os.mkdir(path)
    expect_errno(errno.EIO, write_file, os.path.join(path, 'info'),
                 'ID=%s\n' % web)
    assert listing(path) == []                  # pending, no id
    assert listing(folder(m, 'custom', region=BJ)) == [WEB]
    assert not sent(m.server, 'DeleteImages')
    m.unmount()
    m2 = mount_tc(mount)
    assert ' ()' not in ' '.join(listing(folder(m2, 'custom', region=BJ)))


def test_mv_across_regions_never_deletes_a_source_still_copying(mount,
                                                                tmp_path):
    """mv copies, then deletes: the delete waits for no copy; while the
    copy is SYNCING the source stays (EBUSY), both images are there."""
    server = new_server(mount, tmp_path, settle=10)
    m = mount_tc(mount)
    web = cloud_id(server, WEB)
    r = run(['mv', folder(m, 'custom', WEB), folder(m, 'custom', region=BJ)
             + '/'])
    assert r.returncode != 0, 'mv deleted a source still copying'
    assert cloud_image(server, WEB)['id'] == web
    assert cloud_image(server, WEB, BJ)['state'] == 'SYNCING'
    assert not sent(server, 'DeleteImages')
    assert read_info(info_path(m, WEB))['ID'] == web
    assert read_info(info_path(m, WEB, BJ))['STATE'] == 'SYNCING'
    server.advance(10)
    assert wait_for(lambda: read_info(info_path(m, WEB, BJ))['STATE'] ==
                    'NORMAL', SHOWS_WITHIN)
    r = run(['rm', '-r', folder(m, 'custom', WEB)])
    assert r.returncode == 0, r.stderr
    assert cloud_image(server, WEB) is None


def test_rm_r_sends_delete_images(mount):
    m = mount_tc(mount)
    ident = cloud_id(m.server, AGENT)
    os.unlink(info_path(m, AGENT))      # marks it: what the cloud would say
    reqs = requests_of(m.server, 'DeleteImages', dry_run=True)
    assert [(r['region'], r['body']) for r in reqs] == \
        [(GZ, {'ImageIds': [ident]})]
    assert cloud_image(m.server, AGENT)['id'] == ident
    assert listing(folder(m, 'custom', AGENT)) == []
    os.rmdir(folder(m, 'custom', AGENT))        # deletes it
    reqs = requests_of(m.server, 'DeleteImages')
    assert [(r['region'], r['body']) for r in reqs] == \
        [(GZ, {'ImageIds': [ident]})]
    assert cloud_image(m.server, AGENT) is None
    assert listing(folder(m, 'custom')) == [WEB]


def test_mv_sends_modify_image_attribute_name(mount):
    m = mount_tc(mount)
    ident = cloud_id(m.server, WEB)
    os.rename(folder(m, 'custom', WEB), folder(m, 'custom', 'web-v2'))
    reqs = requests_of(m.server, 'ModifyImageAttribute')
    assert [(r['region'], r['body']) for r in reqs] == \
        [(GZ, {'ImageId': ident, 'ImageName': 'web-v2'})]
    assert cloud_image(m.server, 'web-v2')['id'] == ident
    assert sorted(listing(folder(m, 'custom'))) == sorted([AGENT, 'web-v2'])
    assert read_info(info_path(m, 'web-v2'))['NAME'] == 'web-v2'


def test_description_write_sends_modify_image_attribute(mount):
    m = mount_tc(mount)
    path = info_path(m, WEB)
    before = read_info(path)
    write_file(path, render(dict(before, DESCRIPTION='nightly "build" $1')))
    reqs = requests_of(m.server, 'ModifyImageAttribute')
    assert [(r['region'], r['body']) for r in reqs] == \
        [(GZ, {'ImageId': before['ID'],
               'ImageDescription': 'nightly "build" $1'})]
    assert cloud_image(m.server, WEB)['description'] == 'nightly "build" $1'
    assert read_info(path) == dict(before, DESCRIPTION='nightly "build" $1')
    # the same text again: nothing to ask
    write_file(path, render(read_info(path)))
    assert len(requests_of(m.server, 'ModifyImageAttribute')) == 1


def test_name_and_description_in_one_text_is_one_call(mount):
    """An info text that changes both: one ModifyImageAttribute of both,
    which the cloud applies whole or not at all."""
    m = mount_tc(mount)
    path = info_path(m, WEB)
    before = read_info(path)
    new = dict(before, NAME='web-both', DESCRIPTION='name and words')
    write_file(path, render(new))
    reqs = requests_of(m.server, 'ModifyImageAttribute')
    assert [(r['region'], r['body']) for r in reqs] == \
        [(GZ, {'ImageId': before['ID'], 'ImageName': 'web-both',
               'ImageDescription': 'name and words'})]
    assert read_info(info_path(m, 'web-both')) == new
    assert sorted(listing(folder(m, 'custom'))) == sorted([AGENT, 'web-both'])
    # refused: neither changes
    m.server.fail('InvalidParameterValue.TooLong',
                  action='ModifyImageAttribute')
    again = dict(new, NAME='web-again', DESCRIPTION='other words')
    fd = os.open(info_path(m, 'web-both'), os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, render(again).encode())
    finally:
        expect_errno(errno.ENAMETOOLONG, os.close, fd)
    assert read_info(info_path(m, 'web-both')) == new
    assert cloud_image(m.server, 'web-both')['description'] == \
        'name and words'


def test_symlink_shares_and_rm_cancels(mount):
    m = mount_tc(mount)
    ident = cloud_id(m.server, WEB)
    os.mkdir(folder(m, 'shared', OTHER))
    assert not sent(m.server, 'ModifyImageSharePermission')
    link = folder(m, 'shared', OTHER + '/' + WEB)
    os.symlink('../../custom/' + WEB, link)
    assert os.readlink(link) == '../../custom/' + WEB
    assert cloud_rows(m.server, 'SELECT account FROM shares s JOIN images i '
                      'ON i.row = s.image WHERE i.id = ?', ident) == \
        [(OTHER,)]
    assert read_info(info_path(m, WEB))['SHARED_WITH'] == OTHER
    os.unlink(link)
    reqs = requests_of(m.server, 'ModifyImageSharePermission')
    assert [(r['region'], r['body']) for r in reqs] == [
        (GZ, {'ImageId': ident, 'AccountIds': [OTHER],
              'Permission': 'SHARE'}),
        (GZ, {'ImageId': ident, 'AccountIds': [OTHER],
              'Permission': 'CANCEL'})]
    assert cloud_rows(m.server, 'SELECT account FROM shares s JOIN images i '
                      'ON i.row = s.image WHERE i.id = ?', ident) == []
    assert 'SHARED_WITH' not in read_info(info_path(m, WEB))
    os.rmdir(folder(m, 'shared', OTHER))


def test_unknown_instance_is_einval(mount):
    """The cloud's own InvalidInstanceId.NotFound: EINVAL, nothing made."""
    m = mount_tc(mount)
    path = folder(m, 'custom', 'ghost')
    os.mkdir(path)
    before = snapshot(m.server)
    expect_errno(errno.EINVAL, write_file, os.path.join(path, 'info'),
                 'INSTANCE=ins-00000000\n')
    assert snapshot(m.server) == before
    assert sent(m.server, 'CreateImage') == 1   # asked once: refused
    assert listing(path) == []


# --- images that settle: the stand-in's clock moves, not time ------------

def watch(path, until):
    """Read the info at path until until(info) holds; the last info."""
    seen = []

    def done():
        info = try_info(path)
        if info is not None:
            seen.append(info)
        return info is not None and until(info)

    assert wait_for(done, SHOWS_WITHIN), 'never: %r' % seen[-3:]
    return seen[-1]


def settles(server, path, state):
    """The image at path goes from state through PROGRESS 50 to NORMAL as
    the server's clock moves."""
    info = read_info(path)
    assert (info['STATE'], info.get('PROGRESS')) == (state, '0'), info
    server.advance(5)
    watch(path, lambda i: i.get('PROGRESS') == '50')
    server.advance(5)
    last = watch(path, lambda i: i['STATE'] == 'NORMAL')
    assert 'PROGRESS' not in last
    return info


def test_created_image_settles_in_the_background(mount, tmp_path):
    server = new_server(mount, tmp_path, settle=10)
    m = mount_tc(mount)
    mkdir_commit(m, 'slow', 'INSTANCE=ins-abcd1234\n')
    info = settles(server, info_path(m, 'slow'), 'CREATING')
    polls = [b for b in bodies(server, 'DescribeImages', GZ)
             if b.get('ImageIds') == [info['ID']]]
    assert polls and all(b['Limit'] == PAGE for b in polls)


def test_copy_settles_in_the_background(mount, tmp_path):
    server = new_server(mount, tmp_path, settle=10)
    m = mount_tc(mount)
    src = read_info(info_path(m, WEB))
    info = mkdir_commit(m, 'web-bj', 'ID=%s\n' % src['ID'], region=BJ)
    assert info['SOURCE'] == 'copy:%s@%s' % (src['ID'], GZ)
    settles(server, info_path(m, 'web-bj', BJ), 'SYNCING')


def test_import_settles_or_fails_in_the_background(mount, tmp_path):
    server = new_server(mount, tmp_path, settle=10)
    m = mount_tc(mount)
    text = ('OS_TYPE=linux\nPLATFORM=Ubuntu\nOS_NAME=20.04\nARCH=x86_64\n'
            'IMPORT_URL=%s\n')
    mkdir_commit(m, 'good', text % (COS + '/good.qcow2'))
    bad = mkdir_commit(m, 'bad', text % (COS + '/fail.qcow2'))
    assert bad['STATE'] == 'IMPORTING'
    settles(server, info_path(m, 'good'), 'IMPORTING')
    last = watch(info_path(m, 'bad'), lambda i: i['STATE'] != 'IMPORTING')
    assert last['STATE'] == 'IMPORTFAILED'
    assert last.get('ERROR')


def test_polling_pages_its_image_ids_within_limit(mount, tmp_path):
    server = new_server(mount, tmp_path)
    add_cloud_images(server, [
        dict(id='img-st%06d' % i, region=BJ, kind='custom', owner=ME,
             name='settling-%03d' % i, state='CREATING', progress=10)
        for i in range(150)])
    m = mount_tc(mount)
    assert len(listing(folder(m, 'custom', region=BJ))) == 150
    want = {'img-st%06d' % i for i in range(150)}

    def polled():
        polls = [b for b in bodies(server, 'DescribeImages', BJ)
                 if 'ImageIds' in b]
        assert all(len(b['ImageIds']) <= PAGE and b['Limit'] == PAGE
                   for b in polls), polls
        return want <= {i for b in polls for i in b['ImageIds']}

    assert wait_for(polled, SHOWS_WITHIN)


# --- headers, signature, token, transport ---------------------------------

def test_every_request_is_signed_with_the_headers(mount):
    m = mount_tc(mount)
    os.listdir(folder(m, 'public'))
    os.listdir(folder(m, 'custom'))
    mkdir_commit(m, 'signed', 'INSTANCE=ins-abcd1234\n', region=BJ)
    os.rename(folder(m, 'custom', 'signed', BJ),
              folder(m, 'custom', 'signed2', BJ))
    reqs = list(m.server.requests)
    assert {'DescribeImages', 'DescribeImageQuota', 'CreateImage',
            'ModifyImageAttribute'} <= {r['action'] for r in reqs}
    secret_id = test_keys(ME)[0]
    now = time.time()
    for r in reqs:
        h = r['headers']
        assert h['x-tc-action'] == r['action']
        assert h['x-tc-version'] == '2017-03-12'
        assert h['content-type'] == 'application/json; charset=utf-8'
        assert h['x-tc-language'] == 'en-US'
        assert h['host'] == '127.0.0.1:%d' % m.server.port
        assert h['x-tc-region'] in listing(m)
        stamp = int(h['x-tc-timestamp'])
        assert abs(now - stamp) < 60 * SLOW, h
        auth = AUTH_RE.match(h['authorization'])
        assert auth, h['authorization']
        assert auth.group(1) == secret_id
        assert auth.group(2) == time.strftime('%Y-%m-%d',
                                              time.gmtime(stamp))
        assert 'x-tc-token' not in h
        assert r['uin'] == ME


def test_language_option(mount):
    m = mount_tc(mount, extra_opts=['language=zh-CN'])
    os.listdir(folder(m, 'public'))
    assert {r['headers']['x-tc-language'] for r in m.server.requests} == \
        {'zh-CN'}


def test_upper_case_endpoint_is_signed_as_sent(mount, tmp_path):
    server = new_server(mount, tmp_path).start()
    m = mount_tc(mount, extra_opts=['endpoint=http://LOCALHOST:%d/' %
                                    server.port])
    assert sorted(os.listdir(folder(m, 'custom'))) == sorted([WEB, AGENT])
    assert {r['headers']['host'] for r in server.requests} == \
        {'localhost:%d' % server.port}


@pytest.mark.parametrize('endpoint', ['http://cvm.tencentcloudapi.com',
                                      'http://10.1.2.3:8080'])
def test_plain_http_is_refused_but_on_loopback(mount, tmp_path, endpoint):
    server = new_server(mount, tmp_path).start()
    status, out = refused_mount(tmp_path, server, ['endpoint=%s' % endpoint],
                                {})
    assert status != 0 and 'https' in out, out
    assert not server.requests


def test_wrong_secret_key_is_eacces(mount):
    m = mount_tc(mount, env={'TENCENTCLOUD_SECRET_KEY': 'not-the-key'})
    expect_errno(errno.EACCES, os.listdir, folder(m, 'custom'))
    expect_errno(errno.EACCES, os.listdir, folder(m, 'public', region=BJ))
    # refused, not retried
    assert len(listing_bodies(m.server, BJ, 'public')) <= 2


@pytest.mark.parametrize('variable', ['TENCENTCLOUD_TOKEN',
                                      'TENCENTCLOUD_SECURITY_TOKEN'])
def test_token_is_sent_when_set(mount, tmp_path, variable):
    server = new_server(mount, tmp_path)
    server.add_account('AKIDsessionKEY01', 'session-secret-key', ME,
                       token='session-token-xyz')
    m = mount_tc(mount, env={'TENCENTCLOUD_SECRET_ID': 'AKIDsessionKEY01',
                             'TENCENTCLOUD_SECRET_KEY': 'session-secret-key',
                             variable: 'session-token-xyz'})
    assert sorted(os.listdir(folder(m, 'custom'))) == sorted([WEB, AGENT])
    assert server.requests
    for r in server.requests:
        assert r['headers']['x-tc-token'] == 'session-token-xyz'
        assert 'Credential=AKIDsessionKEY01/' in r['headers']['authorization']


def test_wrong_token_is_eacces(mount, tmp_path):
    server = new_server(mount, tmp_path)
    server.add_account('AKIDsessionKEY02', 'session-secret-key', ME,
                       token='the-right-token')
    m = mount_tc(mount, env={'TENCENTCLOUD_SECRET_ID': 'AKIDsessionKEY02',
                             'TENCENTCLOUD_SECRET_KEY': 'session-secret-key',
                             'TENCENTCLOUD_TOKEN': 'a-stale-token'})
    expect_errno(errno.EACCES, os.listdir, folder(m, 'custom'))
    assert requests_of(server, 'DescribeImages')[0]['headers'][
        'x-tc-token'] == 'a-stale-token'


@pytest.mark.parametrize('fault', ['empty', 'garbage', 'http404'])
def test_an_answer_that_is_not_the_apis_is_eio(mount, fault):
    """An empty body, a body that is not JSON, a status without an API
    error: EIO, and nothing is taken for done."""
    m = mount_tc(mount)
    listing(folder(m, 'custom'))
    read_info(info_path(m, WEB))
    if fault == 'http404':
        m.server.http_error(404, action='ModifyImageAttribute')
    else:
        getattr(m.server, fault)(action='ModifyImageAttribute')
    expect_errno(errno.EIO, os.rename, folder(m, 'custom', WEB),
                 folder(m, 'custom', 'web-v9'))
    assert sorted(listing(folder(m, 'custom'))) == sorted([WEB, AGENT])
    assert cloud_image(m.server, WEB)
    # the next answer is read as what it is
    os.rename(folder(m, 'custom', WEB), folder(m, 'custom', 'web-v9'))
    assert cloud_image(m.server, 'web-v9')


# --- failures: retries and errno -------------------------------------------

def test_throttling_is_retried_with_backoff(mount, tmp_path):
    server = new_server(mount, tmp_path)
    server.fail('RequestLimitExceeded', times=3,
                when=describing(BJ, 'public'))
    m = mount_tc(mount, extra_opts=['cache_ttl=3600'])
    assert os.listdir(folder(m, 'public', region=BJ))
    pages = [r for r in requests_of(server, 'DescribeImages', BJ)
             if kind_of(r['body']) == 'public']
    assert len(pages) == 4
    waited = pages[-1]['time'] - pages[0]['time']
    assert waited >= BACKOFF_TOTAL * 0.9, waited


def test_throttling_after_four_attempts_is_eagain(mount, tmp_path):
    server = new_server(mount, tmp_path)
    server.fail('RequestLimitExceeded', times=10 ** 6,
                when=describing(BJ, 'public'))
    m = mount_tc(mount, extra_opts=['cache_ttl=3600'])
    expect_errno(errno.EAGAIN, os.listdir, folder(m, 'public', region=BJ))
    pages = [r for r in requests_of(server, 'DescribeImages', BJ)
             if kind_of(r['body']) == 'public']
    assert len(pages) % 4 == 0                  # four attempts each
    server.clear_faults()
    assert wait_for(lambda: in_listing(folder(m, 'public', region=BJ),
                                       'CentOS 7.9 64bit'), SHOWS_WITHIN)


def test_throttled_change_is_retried(mount):
    """Throttling means nothing was done: a change is retried too."""
    m = mount_tc(mount)
    commit_armed(m, 'throttled', 'INSTANCE=ins-abcd1234\n',
                 lambda: m.server.fail('RequestLimitExceeded.UinLimitExceeded',
                                       times=2, action='CreateImage'))
    assert len(requests_of(m.server, 'CreateImage')) == 3
    assert cloud_image(m.server, 'throttled')
    assert read_info(info_path(m, 'throttled'))['STATE'] == 'NORMAL'


@pytest.mark.parametrize('fault', ['http500', 'drop', 'slow'])
def test_describe_is_retried_after_a_network_failure(mount, tmp_path,
                                                     fault):
    server = new_server(mount, tmp_path)
    when = describing(BJ, 'market')
    if fault == 'drop':
        server.drop(times=2, when=when)
    elif fault == 'slow':
        server.delay(3.0 * SLOW, times=1, when=when)
    else:
        server.http_error(int(fault[4:]), times=2, when=when)
    m = mount_tc(mount, extra_opts=['api_timeout=%g' % (1.0 * SLOW),
                                    'cache_ttl=3600'])
    assert os.listdir(folder(m, 'market', region=BJ))
    # retried (more when a loaded machine makes an answer late)
    assert len(listing_bodies(server, BJ, 'market')) >= \
        (2 if fault == 'slow' else 3)


def test_describe_failing_every_attempt_is_eio(mount, tmp_path):
    server = new_server(mount, tmp_path)
    server.http_error(502, times=10 ** 6, when=describing(BJ, 'public'))
    m = mount_tc(mount, extra_opts=['cache_ttl=3600'])
    expect_errno(errno.EIO, os.listdir, folder(m, 'public', region=BJ))
    assert len(listing_bodies(server, BJ, 'public')) % 4 == 0
    # the region is listed all the same: one folder does not fail it
    assert sorted(listing(os.path.join(m, BJ))) == [
        'custom', 'market', 'public', 'shared']


def arm_fault(server, fault, action):
    if fault == 'drop':
        server.drop(action=action)
    elif fault == 'slow':
        server.delay(3.0 * SLOW, action=action)
    else:
        server.http_error(int(fault[4:]), action=action)


@pytest.mark.parametrize('fault', ['http500', 'http502', 'drop', 'slow'])
def test_commit_without_an_answer_is_eio_not_retried(mount, fault):
    m = mount_tc(mount, extra_opts=['api_timeout=%g' % (1.0 * SLOW)])
    with pytest.raises(OSError) as e:
        commit_armed(m, 'unanswered', 'INSTANCE=ins-abcd1234\n',
                     lambda: arm_fault(m.server, fault, 'CreateImage'))
    assert e.value.errno == errno.EIO, e.value
    assert len(requests_of(m.server, 'CreateImage')) == 1
    assert listing(folder(m, 'custom', 'unanswered')) == []  # pending
    if fault != 'slow':                         # (a slow cloud did it)
        assert cloud_image(m.server, 'unanswered') is None


@pytest.mark.parametrize('fault', ['http500', 'drop', 'slow'])
def test_rename_without_an_answer_is_eio_not_retried(mount, fault):
    m = mount_tc(mount, extra_opts=['api_timeout=%g' % (1.0 * SLOW)])
    os.listdir(folder(m, 'custom'))
    read_info(info_path(m, WEB))
    before = snapshot(m.server)
    arm_fault(m.server, fault, 'ModifyImageAttribute')
    expect_errno(errno.EIO, os.rename, folder(m, 'custom', WEB),
                 folder(m, 'custom', 'web-v3'))
    assert sent(m.server, 'ModifyImageAttribute') == 1
    if fault != 'slow':
        assert snapshot(m.server) == before
    assert sorted(listing(folder(m, 'custom'))) == sorted([WEB, AGENT])


def test_unknown_error_code_is_eio_with_the_request_id(mount):
    m = mount_tc(mount, extra_opts=['xattr'])
    img = folder(m, 'custom', WEB)
    before = read_info(os.path.join(img, 'info'))
    m.server.fail('Weird.NewCode', action='ModifyImageAttribute')
    expect_errno(errno.EIO, write_file, os.path.join(img, 'info'),
                 render(dict(before, DESCRIPTION='never')))
    assert sent(m.server, 'ModifyImageAttribute') == 1
    assert read_info(os.path.join(img, 'info'))['DESCRIPTION'] == \
        before['DESCRIPTION']
    err = os.getxattr(img, 'user.imagefs.error').decode()
    assert 'Weird.NewCode' in err, err
    ident = re.search(UUID_RE, err)
    assert ident, 'no RequestId in user.imagefs.error: %r' % err
    log = m.log_text()
    assert 'Weird.NewCode' in log
    assert ident.group(0) in log, 'the RequestId %s is not logged' % \
        ident.group(0)


# The cloud's rule codes, injected on one action: (code, action, errno).
def op_share(m):
    os.mkdir(folder(m, 'shared', OTHER))
    os.symlink('../../custom/' + WEB, folder(m, 'shared', OTHER + '/' + WEB))


def check_share(m):
    assert not os.path.lexists(folder(m, 'shared', OTHER + '/' + WEB))
    assert 'SHARED_WITH' not in read_info(info_path(m, WEB))


def op_delete(m):
    os.unlink(info_path(m, WEB))    # DeleteImages with DryRun: refused now


def check_delete(m):
    assert read_info(info_path(m, WEB))['NAME'] == WEB


def op_copy(m):
    os.mkdir(folder(m, 'custom', WEB, BJ))
    write_file(info_path(m, WEB, BJ), 'ID=%s\n' % cloud_id(m.server, WEB))


def check_copy(m):
    assert listing(folder(m, 'custom', WEB, BJ)) == []     # pending


def op_create(m):
    os.mkdir(folder(m, 'custom', 'new-one'))
    write_file(info_path(m, 'new-one'), 'INSTANCE=ins-abcd1234\n')


def check_create(m):
    assert listing(folder(m, 'custom', 'new-one')) == []   # pending


def op_rename(m):
    os.rename(folder(m, 'custom', WEB), folder(m, 'custom', 'web-new'))


def check_rename(m):
    assert sorted(listing(folder(m, 'custom'))) == sorted([WEB, AGENT])


def op_describe(m):
    path = info_path(m, WEB)
    write_file(path, render(dict(read_info(path), DESCRIPTION='changed')))


def check_describe(m):
    assert read_info(info_path(m, WEB))['DESCRIPTION'] != 'changed'


MAPPED = {
    'share-over-quota': ('OverQuota', 'ModifyImageSharePermission',
                         errno.EMLINK, op_share, check_share),
    'share-image-state': ('InvalidParameterValue.InvalidImageState',
                          'ModifyImageSharePermission', errno.EBUSY,
                          op_share, check_share),
    'share-account-exists': ('FailedOperation.AccountAlreadyExists',
                             'ModifyImageSharePermission', errno.EEXIST,
                             op_share, check_share),
    'delete-in-shared': ('InvalidImageId.InShared', 'DeleteImages',
                         errno.EBUSY, op_delete, check_delete),
    'delete-task-running': ('MutexOperation.TaskRunning', 'DeleteImages',
                            errno.EBUSY, op_delete, check_delete),
    'delete-busy-image': ('FailedOperation.InvalidImageState',
                          'DeleteImages', errno.EBUSY, op_delete,
                          check_delete),
    'delete-not-mine': ('UnauthorizedOperation.ImageNotBelongToAccount',
                        'DeleteImages', errno.EPERM, op_delete,
                        check_delete),
    'copy-region-unavailable': ('InvalidRegion.Unavailable', 'SyncImages',
                                errno.EOPNOTSUPP, op_copy, check_copy),
    'copy-region': ('UnsupportedOperation.Region', 'SyncImages',
                    errno.EOPNOTSUPP, op_copy, check_copy),
    'create-quota': ('ImageQuotaLimitExceeded', 'CreateImage', errno.EDQUOT,
                     op_create, check_create),
    'create-auth': ('AuthFailure.UnauthorizedOperation', 'CreateImage',
                    errno.EACCES, op_create, check_create),
    'rename-duplicate': ('InvalidImageName.Duplicate',
                         'ModifyImageAttribute', errno.EEXIST, op_rename,
                         check_rename),
    'rename-too-large': ('InvalidParameterValue.TooLarge',
                         'ModifyImageAttribute', errno.ENAMETOOLONG,
                         op_rename, check_rename),
    'describe-state': ('InvalidImageId.IncorrectState',
                       'ModifyImageAttribute', errno.EBUSY, op_describe,
                       check_describe),
}


@pytest.mark.parametrize('case', list(MAPPED))
def test_cloud_error_code_maps_to_errno(mount, case):
    code, action, err, op, check = MAPPED[case]
    m = mount_tc(mount)
    assert sorted(listing(folder(m, 'custom'))) == sorted([WEB, AGENT])
    read_info(info_path(m, WEB))
    before = snapshot(m.server)
    m.server.fail(code, times=2, action=action)     # a dry run, the change
    expect_errno(err, op, m)
    assert sent(m.server, action) == 1          # no retry
    assert snapshot(m.server) == before
    check(m)


# --- waiting, interrupts, unmount: item 3 of issue 10 ---------------------

def test_ctrl_c_of_a_process_waiting_on_the_cloud(mount):
    """SIGINT of a process whose change the cloud holds: EINTR at once;
    the change is then made whole (or not at all), never in half."""
    m = mount_tc(mount)
    listing(folder(m, 'custom'))
    read_info(info_path(m, WEB))
    held = m.server.hold(action='ModifyImageAttribute')
    proc = subprocess.Popen(
        [sys.executable, '-c', 'import os, sys\n'
         'try:\n'
         '    os.rename(sys.argv[1], sys.argv[2])\n'
         'except KeyboardInterrupt:\n'
         '    sys.exit(3)\n'
         'except OSError as e:\n'
         '    sys.exit(4 if e.errno == %d else 5)\n' % errno.EINTR,
         folder(m, 'custom', WEB), folder(m, 'custom', 'web-moved')])
    try:
        assert wait_for(lambda: sent(m.server, 'ModifyImageAttribute'),
                        10 * SLOW)
        proc.send_signal(signal.SIGINT)
        status = proc.wait(timeout=5 * SLOW)
    finally:
        held.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert status in (3, 4), status           # interrupted, not done
    # the cloud made the change: the mount shows it whole
    assert wait_for(lambda: in_listing(folder(m, 'custom'), 'web-moved'),
                    GRACE + SHOWS_WITHIN)
    assert not in_listing(folder(m, 'custom'), WEB)
    assert cloud_image(m.server, 'web-moved')
    assert sent(m.server, 'ModifyImageAttribute') == 1


def test_unmount_with_calls_in_flight_is_quick(mount, tmp_path):
    server = new_server(mount, tmp_path)
    held = server.hold(times=10 ** 6, action='DescribeImages')
    m = mount_tc(mount)
    try:
        assert wait_for(lambda: server.in_flight >= 2, 10 * SLOW)
        start = time.monotonic()
        assert m.unmount() == 0
        assert time.monotonic() - start < 1.0 * SLOW + 0.5
    finally:
        held.set()


# --- credentials: item 5 ---------------------------------------------------

def test_credentials_file_option(mount, tmp_path):
    server = new_server(mount, tmp_path)
    server.add_account('AKIDfromFILE0001', 'file-secret-key', ME,
                       token='file-token')
    path = credential_file(tmp_path / 'keys.json', 'AKIDfromFILE0001',
                           'file-secret-key', token='file-token')
    m = mount_tc(mount, env=NO_ENV_KEYS,
                 extra_opts=['credentials=%s' % path])
    assert sorted(os.listdir(folder(m, 'custom'))) == sorted([WEB, AGENT])
    h = server.requests[0]['headers']
    assert 'Credential=AKIDfromFILE0001/' in h['authorization']
    assert h['x-tc-token'] == 'file-token'
    assert 'warning' not in m.log_text()


def test_explicit_credentials_win_over_the_environment(mount, tmp_path):
    server = new_server(mount, tmp_path)
    server.add_account('AKIDfromFILE0002', 'file-secret-key', ME)
    path = credential_file(tmp_path / 'keys.json', 'AKIDfromFILE0002',
                           'file-secret-key')
    # the environment names another account, which would list nothing
    other_id, other_key = test_keys(OTHER)
    m = mount_tc(mount, env={'TENCENTCLOUD_SECRET_ID': other_id,
                             'TENCENTCLOUD_SECRET_KEY': other_key},
                 extra_opts=['credentials=%s' % path])
    assert sorted(os.listdir(folder(m, 'custom'))) == sorted([WEB, AGENT])
    assert {r['uin'] for r in server.requests} == {ME}
    assert all('Credential=AKIDfromFILE0002/' in r['headers']['authorization']
               for r in server.requests)


@pytest.mark.parametrize('how', ['option', 'TCCLI_PROFILE', 'default'])
def test_profile(mount, tmp_path, how):
    server = new_server(mount, tmp_path)
    server.add_account('AKIDprofile00001', 'profile-secret-key', ME)
    home = tmp_path / 'home'
    profile = 'default' if how == 'default' else 'work'
    credential_file(home / '.tccli' / ('%s.credential' % profile),
                    'AKIDprofile00001', 'profile-secret-key')
    env = dict(NO_ENV_KEYS, HOME=os.fspath(home))
    opts = []
    if how == 'option':
        opts = ['profile=work']
        # the option wins over the environment's keys and profile
        env.update(dict(zip(('TENCENTCLOUD_SECRET_ID',
                             'TENCENTCLOUD_SECRET_KEY'), test_keys(OTHER))),
                   TCCLI_PROFILE='default')
    elif how == 'TCCLI_PROFILE':
        env['TCCLI_PROFILE'] = 'work'
    m = mount_tc(mount, env=env, extra_opts=opts)
    assert sorted(os.listdir(folder(m, 'custom'))) == sorted([WEB, AGENT])
    assert all('Credential=AKIDprofile00001/' in r['headers']['authorization']
               for r in server.requests)


def test_tccli_credential_file_readable_by_others_mounts_with_a_warning(
        mount, tmp_path):
    """tccli configure writes 0644: mounted, and said once on stderr."""
    server = new_server(mount, tmp_path)
    server.add_account('AKIDtccliFILE001', 'tccli-secret-key', ME)
    home = tmp_path / 'home'
    path = credential_file(home / '.tccli' / 'default.credential',
                           'AKIDtccliFILE001', 'tccli-secret-key',
                           mode=0o644)
    m = mount_tc(mount, env=dict(NO_ENV_KEYS, HOME=os.fspath(home)))
    assert sorted(os.listdir(folder(m, 'custom'))) == sorted([WEB, AGENT])
    log = m.log_text()
    assert log.count('chmod 600 %s' % path) == 1, log
    assert 'tccli-secret-key' not in log


@pytest.mark.parametrize('mode', [0o664, 0o646], ids=['0664', '0646'])
def test_credential_file_others_may_write_is_refused(mount, tmp_path, mode):
    server = new_server(mount, tmp_path).start()
    path = credential_file(tmp_path / 'keys.json', 'AKIDopenFILE0001',
                           'open-secret-key', token='open-token', mode=mode)
    status, out = refused_mount(tmp_path, server,
                                ['credentials=%s' % path], NO_ENV_KEYS)
    assert status != 0, out
    assert 'chmod 600' in out, out
    assert 'open-secret-key' not in out and 'open-token' not in out
    assert not server.requests


def test_credential_file_of_another_user_is_refused(mount, tmp_path):
    if os.getuid() != 0:
        pytest.skip('needs root to give a file away')
    server = new_server(mount, tmp_path).start()
    path = credential_file(tmp_path / 'keys.json', 'AKIDotherUSER001',
                           'other-secret-key')
    os.chown(path, 65534, 65534)
    status, out = refused_mount(tmp_path, server,
                                ['credentials=%s' % path], NO_ENV_KEYS)
    assert status != 0 and 'another user' in out, out
    assert not server.requests


def test_no_credentials_at_all_is_refused(mount, tmp_path):
    server = new_server(mount, tmp_path).start()
    home = tmp_path / 'empty-home'
    home.mkdir()
    status, out = refused_mount(tmp_path, server, [],
                                dict(NO_ENV_KEYS, HOME=os.fspath(home)))
    assert status != 0, out
    assert not server.requests


def test_secrets_never_in_the_debug_log(mount, tmp_path):
    server = new_server(mount, tmp_path)
    key, token = 'debug-secret-key-5e9a', 'debug-token-77c1'
    server.add_account('AKIDdebugKEY0001', key, ME, token=token)
    m = mount_tc(mount, extra_opts=['debug', 'xattr'],
                 env={'TENCENTCLOUD_SECRET_ID': 'AKIDdebugKEY0001',
                      'TENCENTCLOUD_SECRET_KEY': key,
                      'TENCENTCLOUD_TOKEN': token})
    os.listdir(folder(m, 'custom'))
    mkdir_commit(m, 'dbg', 'INSTANCE=ins-abcd1234\nDESCRIPTION=d\n')
    os.rename(folder(m, 'custom', 'dbg'), folder(m, 'custom', 'dbg2'))
    os.mkdir(folder(m, 'shared', OTHER))
    os.symlink('../../custom/dbg2', folder(m, 'shared', OTHER + '/dbg2'))
    read_info(info_path(m, WEB))
    server.fail('AuthFailure.SignatureFailure', action='DeleteImages')
    expect_errno(errno.EACCES, os.unlink, info_path(m, WEB))
    err = os.getxattr(folder(m, 'custom', WEB), 'user.imagefs.error')
    assert m.unmount() == 0
    log = m.log_text()
    assert 'unique:' in log, 'libfuse debug (-d) was not on'
    assert 'DescribeImages' in log, 'debug logged no API request'
    for secret in (key, token, 'Signature=', 'TC3-HMAC-SHA256'):
        assert secret not in log, '%r in the daemon log' % secret
        assert secret.encode() not in err


# --- the cache -------------------------------------------------------------

def test_long_ttl_lists_once(mount):
    m = mount_tc(mount, extra_opts=['cache_ttl=3600'])
    first = sorted(os.listdir(folder(m, 'custom')))
    for _ in range(3):
        assert sorted(os.listdir(folder(m, 'custom'))) == first
        read_info(info_path(m, WEB))
        os.listdir(folder(m, 'public'))
        os.listdir(folder(m, 'shared', PEER))
    assert len(listing_bodies(m.server, GZ, 'custom')) == 1
    assert len(listing_bodies(m.server, GZ, 'public')) == 1
    assert len(listing_bodies(m.server, GZ, 'shared')) == 1
    assert len(bodies(m.server, 'DescribeImageQuota', GZ)) <= 1


def test_short_ttl_fetches_again_in_the_background(mount):
    m = mount_tc(mount)
    names = os.listdir(folder(m, 'public'))
    fetched = len(listing_bodies(m.server, GZ, 'public'))
    assert fetched >= 1

    def fetched_again():
        assert os.listdir(folder(m, 'public')) == names
        read_info(info_path(m, names[0], kind='public'))
        return len(listing_bodies(m.server, GZ, 'public')) > fetched

    assert wait_for(fetched_again, SHOWS_WITHIN)


def test_a_folder_nobody_looked_at_is_not_fetched_again(mount):
    m = mount_tc(mount)
    listing(folder(m, 'custom'))
    assert wait_for(lambda: listing_bodies(m.server, SG, 'public'),
                    SHOWS_WITHIN)       # its first listing, at mounting
    fetched = len(listing_bodies(m.server, GZ, 'custom'))
    assert wait_for(lambda: len(listing_bodies(m.server, GZ, 'custom')) >
                    fetched, SHOWS_WITHIN)      # custom/ is kept fresh
    assert len(listing_bodies(m.server, SG, 'public')) == 1


@pytest.mark.parametrize('ttl', ['3600', 'default'])
def test_cloud_gone_served_from_the_cache(mount, ttl):
    m = mount_tc(mount, extra_opts=['cache_ttl=3600'] if ttl != 'default'
                 else [])
    names = sorted(os.listdir(folder(m, 'custom')))
    info = read_info(info_path(m, WEB))
    m.server.stop()
    assert sorted(os.listdir(folder(m, 'custom'))) == names
    assert read_info(info_path(m, WEB)) == info
    assert read_info(info_path(m, AGENT))['NAME'] == AGENT
    expect_errno(errno.EIO, os.rename, folder(m, 'custom', WEB),
                 folder(m, 'custom', 'web-offline'))
    assert sorted(os.listdir(folder(m, 'custom'))) == names


def test_cloud_gone_a_new_daemon_starts_from_the_cache(mount):
    m = mount_tc(mount, extra_opts=['cache_ttl=3600'])
    names = sorted(os.listdir(folder(m, 'custom')))
    info = read_info(info_path(m, WEB))
    assert wait_for(lambda: all_listed(m.server), SHOWS_WITHIN)
    for region in os.listdir(m):        # each listing is in the cache file
        for kind in os.listdir(os.path.join(m, region)):
            os.listdir(os.path.join(m, region, kind))
    assert m.unmount() == 0
    m.server.clear()
    m2 = mount_tc(mount, extra_opts=['cache_ttl=3600'])
    assert sorted(os.listdir(folder(m2, 'custom'))) == names
    assert not m.server.requests                # mounting asks nothing
    m.server.stop()
    assert read_info(info_path(m2, WEB)) == info
    assert listing(folder(m2, 'market', region=SG))


def test_no_cloud_at_all_is_eio(mount):
    m = mount_tc(mount, extra_opts=['endpoint=http://127.0.0.1:9'])
    expect_errno(errno.EIO, os.listdir, folder(m, 'custom'))
    expect_errno(errno.EIO, os.mkdir, folder(m, 'custom', 'x', BJ))
    assert sorted(listing(os.path.join(m, GZ))) == [
        'custom', 'market', 'public', 'shared']


def test_image_added_behind_the_back_shows_up(mount):
    m = mount_tc(mount)
    assert sorted(listing(folder(m, 'custom'))) == sorted([WEB, AGENT])
    add_behind_the_back(m.server)
    assert wait_for(lambda: in_listing(folder(m, 'custom'), 'made-elsewhere'),
                    SHOWS_WITHIN)
    info = read_info(info_path(m, 'made-elsewhere'))
    assert info['ID'] == 'img-bhnd0001'
    assert info['DESCRIPTION'] == 'made in the console'


def test_image_added_behind_the_back_shows_up_while_listed(mount):
    """ls in a loop (a file manager's view) while the console adds an
    image: it shows once the listing is older than cache_ttl."""
    ttl = 2.0
    m = mount_tc(mount, extra_opts=['cache_ttl=%g' % ttl])
    assert sorted(listing(folder(m, 'custom'))) == sorted([WEB, AGENT])
    fetched = len(listing_bodies(m.server, GZ, 'custom'))
    add_behind_the_back(m.server)
    shown = wait_for(lambda: in_listing(folder(m, 'custom'),
                                        'made-elsewhere'), ttl + SHOWS_WITHIN)
    assert shown, 'not shown; %d fetches of custom/ after the first' % (
        len(listing_bodies(m.server, GZ, 'custom')) - fetched)


@pytest.mark.parametrize('kind', ['public', 'market'])
def test_cloud_renames_reach_the_kernel_in_public_and_market(mount, kind):
    """Names there are cached by the kernel for a day: the listing is
    told, within cache_ttl and a second."""
    m = mount_tc(mount)
    names = listing(folder(m, kind))
    ident = read_info(os.path.join(folder(m, kind, names[0]), 'info'))['ID']
    cloud_exec(m.server, 'UPDATE images SET name = ? WHERE id = ?',
               'renamed by the cloud', ident)
    assert wait_for(lambda: 'renamed by the cloud' in listing(
        folder(m, kind)), conftest.CACHE_TTL + 1.0 * SLOW + 1.0)
    assert names[0] not in listing(folder(m, kind))


def test_image_deleted_behind_the_back_goes(mount):
    m = mount_tc(mount)
    assert AGENT in listing(folder(m, 'custom'))
    cloud_exec(m.server, "DELETE FROM images WHERE kind = 'custom' AND "
               "owner = ? AND name = ?", ME, AGENT)
    assert wait_for(lambda: not in_listing(folder(m, 'custom'), AGENT),
                    SHOWS_WITHIN)
    expect_errno(errno.ENOENT, os.stat, info_path(m, AGENT))


def test_peer_daemon_shares_and_the_image_shows_up(mount):
    m = mount_tc(mount)
    assert listing(folder(m, 'shared')) == [PEER]
    assert listing(folder(m, 'shared', PEER)) == [ML]
    peer = mount_tc(mount, account=PEER, db=m.db)
    assert listing(folder(peer, 'shared')) == [ME]     # ML is shared
    os.symlink('../../custom/' + STAGING,
               folder(peer, 'shared', ME + '/' + STAGING))
    assert wait_for(lambda: in_listing(folder(m, 'shared', PEER), STAGING),
                    SHOWS_WITHIN)
    info = read_info(os.path.join(folder(m, 'shared', PEER + '/' + STAGING),
                                  'info'))
    assert info['TYPE'] == 'shared' and info['OWNER'] == PEER
    os.unlink(folder(peer, 'shared', ME + '/' + STAGING))
    assert wait_for(lambda: not in_listing(folder(m, 'shared', PEER),
                                           STAGING), SHOWS_WITHIN)
    assert listing(folder(m, 'shared', PEER)) == [ML]


def test_cache_file_in_xdg_cache_home(mount, tmp_path):
    m = mount_tc(mount)
    os.listdir(folder(m, 'custom'))
    path = cache_dir(tmp_path) / ('%s@127.0.0.1:%d.db' % (ME, m.server.port))
    assert path.is_file()
    assert is_sqlite(path)
    peer = mount_tc(mount, account=PEER, db=m.db)
    os.listdir(folder(peer, 'custom'))
    assert (cache_dir(tmp_path) /
            ('%s@127.0.0.1:%d.db' % (PEER, m.server.port))).is_file()
    # a second mount of the account: a file of its own, gone at unmount
    again = mount_tc(mount, db=m.db)
    assert sorted(listing(folder(again, 'custom'))) == sorted([WEB, AGENT])
    own = [p for p in os.listdir(cache_dir(tmp_path))
           if p.startswith('%s@' % ME) and p.endswith('.db.%d' %
                                                      again.proc.pid)]
    assert own, os.listdir(cache_dir(tmp_path))
    assert again.unmount() == 0
    assert not [p for p in os.listdir(cache_dir(tmp_path))
                if str(again.proc.pid) in p]


def test_cache_rows_are_never_given_again(mount, tmp_path):
    """An image's inode, or a share link's, is not another's after it
    goes; a cache file of an older version is made anew, with another FUSE
    generation."""
    where = tmp_path / 'listings.db'
    m = mount_tc(mount, extra_opts=['cache=%s' % where])
    os.mkdir(folder(m, 'custom', 'first'))
    ino = os.stat(folder(m, 'custom', 'first')).st_ino
    os.rmdir(folder(m, 'custom', 'first'))
    os.mkdir(folder(m, 'custom', 'second'))
    assert os.stat(folder(m, 'custom', 'second')).st_ino != ino
    op_share(m)
    link = folder(m, 'shared', OTHER + '/' + WEB)
    ino = os.lstat(link).st_ino
    os.unlink(link)
    os.symlink('../../custom/' + WEB, link)
    assert os.lstat(link).st_ino != ino
    assert m.unmount() == 0
    conn = sqlite3.connect(os.fspath(where), timeout=10)
    try:
        old_id = conn.execute("SELECT value FROM meta WHERE key = "
                              "'cache_id'").fetchone()[0]
        conn.execute('PRAGMA user_version = 1002')     # an older imagefs
        conn.commit()
    finally:
        conn.close()
    m = mount_tc(mount, extra_opts=['cache=%s' % where])
    assert sorted(listing(folder(m, 'custom'))) == sorted([WEB, AGENT])
    conn = sqlite3.connect(os.fspath(where), timeout=10)
    try:
        assert conn.execute("SELECT value FROM meta WHERE key = "
                            "'cache_id'").fetchone()[0] != old_id
        assert conn.execute('PRAGMA user_version').fetchone()[0] == 1004
    finally:
        conn.close()


def test_peer_folders_of_a_region_are_bounded(mount):
    """The cache keeps the peer folders made with mkdir, which the cloud
    does not know: 500 a region, as many accounts as an image may be shared
    with; the 501st is EMLINK."""
    m = mount_tc(mount)
    base = listing(folder(m, 'shared'))     # accounts sharing with me
    for i in range(500):
        os.mkdir(folder(m, 'shared', '2%011d' % i))
    expect_errno(errno.EMLINK, os.mkdir, folder(m, 'shared', '300000000000'))
    assert len(listing(folder(m, 'shared'))) == len(base) + 500
    os.rmdir(folder(m, 'shared', '2%011d' % 0))
    os.mkdir(folder(m, 'shared', '300000000000'))
    # the cloud never hears of them
    assert not [r for r in m.server.requests if '300000000000' in
                json.dumps(r['body'])]


def test_cache_option_puts_it_elsewhere(mount, tmp_path):
    where = tmp_path / 'elsewhere' / 'listings.db'
    where.parent.mkdir()
    m = mount_tc(mount, extra_opts=['cache=%s' % where])
    assert sorted(os.listdir(folder(m, 'custom'))) == sorted([WEB, AGENT])
    assert where.is_file() and is_sqlite(where)
    conn = sqlite3.connect(os.fspath(where), timeout=10)
    try:
        cached = {r[0] for r in conn.execute(
            "SELECT name FROM images WHERE folder = 'custom' AND region = ?",
            (GZ,))}
    finally:
        conn.close()
    assert {WEB, AGENT} <= cached
    assert not cache_dir(tmp_path).exists() or \
        not [p for p in os.listdir(cache_dir(tmp_path))
             if p.endswith('.db')]
