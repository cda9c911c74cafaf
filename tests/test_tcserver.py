# SPDX-License-Identifier: GPL-2.0
"""Self-tests of tests/tcserver.py, the stand-in Tencent Cloud CVM API.

No mount: each test starts a TcServer over a new catalog file in tmp_path,
acts as a signed client (TcServer.call) and checks the answers and the
catalog with sqlite3, as the mounted tests do with a local catalog.
"""

import contextlib
import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from tcserver import (CONTENT_TYPE, SCHEMA_VERSION, TcHttpError, TcServer,
                      call, import_fails, import_os_name, sign,
                      signed_request, test_keys, today)

ME = '100000000001'             # the seed's demo account
PEER = '100000000002'           # shares ml-training-base with ME
OTHER = '100000000003'          # an account with nothing
GZ = 'ap-guangzhou'
BJ = 'ap-beijing'
TOKYO = 'ap-tokyo'              # no image duplication
DEADLINE = 5.0                  # s of polling for a state to come
POLL = 0.02


@pytest.fixture
def cloud(tmp_path):
    with TcServer(str(tmp_path / 'cloud.db')) as server:
        yield server


# --- helpers -------------------------------------------------------------

def error(response):
    """The error code of a Response, None on success."""
    return response.get('Error', {}).get('Code')


def ok(response):
    assert 'Error' not in response, response['Error']
    assert response['RequestId']
    return response


@contextlib.contextmanager
def catalog(server):
    """A sqlite3 connection to the server's catalog, committed at the end."""
    conn = sqlite3.connect(server.db_path, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def rows(server, sql, *args):
    with catalog(server) as conn:
        return [tuple(r) for r in conn.execute(sql, args)]


def execute(server, sql, *args):
    with catalog(server) as conn:
        conn.execute(sql, args)


def setting(server, key, value):
    execute(server, 'UPDATE settings SET value = ? WHERE key = ?', value, key)


def ops(server, uin=ME, region=GZ):
    found = rows(server, 'SELECT count FROM ops WHERE account = ? AND '
                 'region = ? AND day = ?', uin, region, today())
    return found[0][0] if found else 0


def image_id(server, name, region=GZ):
    return rows(server, 'SELECT id FROM images WHERE name = ? AND '
                'region = ?', name, region)[0][0]


def image(server, image_id_):
    """The catalog row of image_id_ as a dict, None when there is none."""
    with catalog(server) as conn:
        found = conn.execute('SELECT * FROM images WHERE id = ?',
                             (image_id_,)).fetchone()
    return dict(found) if found else None


def set_state(server, image_id_, state):
    execute(server, 'UPDATE images SET state = ? WHERE id = ?', state,
            image_id_)


def create(server, name, region=GZ, uin=ME, **extra):
    body = dict({'InstanceId': 'ins-abcd1234', 'ImageName': name}, **extra)
    return ok(server.call('CreateImage', region, body, uin=uin))['ImageId']


def describe(server, region=GZ, uin=ME, **body):
    return ok(server.call('DescribeImages', region, body, uin=uin))


def share(server, image_id_, account, permission='SHARE', uin=ME):
    return server.call('ModifyImageSharePermission', GZ,
                       {'ImageId': image_id_, 'AccountIds': [account],
                        'Permission': permission}, uin=uin)


def netloc(server):
    return '%s:%d' % (server.host, server.port)


def wait_for(predicate):
    """Poll predicate until it is true, with a deadline."""
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        assert time.monotonic() < deadline, 'timed out'
        time.sleep(POLL)


# --- signing -------------------------------------------------------------

def test_sign_matches_tencent_example():
    body = (r'{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], '
            r'"Name": "instance-name"}]}').encode()
    assert len(body) == 86
    auth, hashed = sign('AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE',
                        'Gu5t9xGARNpq86cd98joQYCN3EXAMPLE',
                        'cvm.tencentcloudapi.com', CONTENT_TYPE, body,
                        1551113065)
    assert hashed == ('5ffe6a04c0664d6b969fab9a13bdab20'
                      '1d63ee709638e2749d62a09ca18d7031')
    assert auth == (
        'TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/'
        '2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, '
        'Signature=72e494ea809ad7a8c8f7a4507b9bddcb'
        'aa8e581f516e8da2f66e2c5a96525168')


def test_test_keys_are_deterministic():
    assert test_keys(ME) == test_keys(int(ME))
    assert test_keys(ME) != test_keys(PEER)


def test_bad_signature(cloud):
    secret_id, _ = test_keys(ME)
    r = cloud.call('DescribeImageQuota', GZ, secret=(secret_id, 'wrong'))
    assert error(r) == 'AuthFailure.SignatureFailure'
    r = cloud.call('DescribeImageQuota', GZ,
                   headers={'Authorization': 'TC3-HMAC-SHA256 nonsense'})
    assert error(r) == 'AuthFailure.SignatureFailure'
    # the body is signed: another body's signature fails
    stamp = int(time.time())
    _, headers = signed_request(netloc(cloud), 'DescribeImageQuota', GZ, {},
                                timestamp=stamp)
    r = cloud.call('DescribeImageQuota', GZ, {'Limit': 1}, timestamp=stamp,
                   headers={'Authorization': headers['Authorization']})
    assert error(r) == 'AuthFailure.SignatureFailure'


def test_credential_date_is_the_timestamps(cloud):
    stamp = int(time.time())
    _, headers = signed_request(netloc(cloud), 'DescribeImageQuota', GZ,
                                timestamp=stamp)
    good = headers['Authorization']
    date = time.strftime('%Y-%m-%d', time.gmtime(stamp))
    wrong = good.replace('/%s/' % date, '/1999-01-01/')
    r = cloud.call('DescribeImageQuota', GZ, timestamp=stamp,
                   headers={'Authorization': wrong})
    assert error(r) == 'AuthFailure.SignatureFailure'
    ok(cloud.call('DescribeImageQuota', GZ, timestamp=stamp,
                  headers={'Authorization': good}))


def test_expired_timestamp(cloud):
    r = cloud.call('DescribeImageQuota', GZ, timestamp=int(time.time()) - 400)
    assert error(r) == 'AuthFailure.SignatureExpire'
    ok(cloud.call('DescribeImageQuota', GZ, timestamp=int(time.time()) - 200))


def test_unknown_secret_id_and_tokens(tmp_path):
    accounts = {'AKIDsession': {'key': 'k1', 'uin': OTHER, 'token': 'tok'}}
    with TcServer(str(tmp_path / 'c.db'), accounts=accounts) as server:
        r = server.call('DescribeImageQuota', GZ, secret=('AKIDnobody', 'k'))
        assert error(r) == 'AuthFailure.SecretIdNotFound'
        r = server.call('DescribeImageQuota', GZ, secret=('AKIDsession', 'k1'))
        assert error(r) == 'AuthFailure.TokenFailure'
        ok(server.call('DescribeImageQuota', GZ, secret=('AKIDsession', 'k1'),
                       token='tok'))
        server.add_account('AKIDplain', 'k2', PEER)
        r = ok(server.call('DescribeImages', GZ, {
            'Filters': [{'Name': 'image-type', 'Values': ['PRIVATE_IMAGE']}]},
            secret=('AKIDplain', 'k2')))
        assert {i['ImageCreator'] for i in r['ImageSet']} == {PEER}
        assert server.requests[-1]['uin'] == PEER


def test_request_errors(cloud):
    assert error(cloud.call('RebootInstances', GZ)) == 'InvalidAction'
    r = cloud.call('DescribeImages', GZ, version='2022-01-01')
    assert error(r) == 'InvalidParameterValue'
    r = cloud.call('DescribeImages', 'mars-olympus')
    assert error(r) == 'InvalidParameterValue.Region'
    r = cloud.call('DescribeImages', GZ, b'{"Limit": ')
    assert error(r) == 'InvalidParameter'
    r = cloud.call('DescribeImages', GZ, b'[1, 2]')
    assert error(r) == 'InvalidParameter'
    assert cloud.requests[-1]['body'] is None


# --- DescribeImages ------------------------------------------------------

def test_describe_public_pages(cloud):
    want = [r[0] for r in rows(cloud, "SELECT id FROM images WHERE "
                               "region = ? AND kind = 'public' ORDER BY row",
                               GZ)]
    assert len(want) > 10
    public = [{'Name': 'image-type', 'Values': ['PUBLIC_IMAGE']}]
    seen, offset = [], 0
    while True:
        r = describe(cloud, Filters=public, Offset=offset, Limit=7)
        assert r['TotalCount'] == len(want)
        if not r['ImageSet']:
            break
        seen += [i['ImageId'] for i in r['ImageSet']]
        offset += 7
    assert seen == want
    first = describe(cloud, Filters=public, Limit=1)['ImageSet'][0]
    assert first['ImageType'] == 'PUBLIC_IMAGE'
    assert first['ImageSource'] == 'OFFICIAL'
    assert first['ImageCreator'] == ''
    assert first['CreatedTime'].endswith('Z')
    assert first['IsSupportCloudinit'] is True


def test_describe_visibility(cloud):
    mine = [{'Name': 'image-type', 'Values': ['PRIVATE_IMAGE',
                                              'SHARED_IMAGE']}]
    r = describe(cloud, Filters=mine)
    types = {i['ImageName']: i['ImageType'] for i in r['ImageSet']}
    assert types == {'web-server-2026': 'PRIVATE_IMAGE',
                     'build-agent': 'PRIVATE_IMAGE',
                     'ml-training-base': 'SHARED_IMAGE'}
    shared = [i for i in r['ImageSet'] if i['ImageType'] == 'SHARED_IMAGE']
    assert shared[0]['ImageCreator'] == PEER
    assert describe(cloud, uin=OTHER, Filters=mine)['TotalCount'] == 0
    staging = image_id(cloud, 'staging-db')
    assert describe(cloud, ImageIds=[staging])['TotalCount'] == 0
    r = describe(cloud, uin=PEER, ImageIds=[staging])
    assert r['ImageSet'][0]['ImageType'] == 'PRIVATE_IMAGE'
    r = describe(cloud, Filters=[{'Name': 'image-name',
                                  'Values': ['build-agent']}])
    assert [i['ImageName'] for i in r['ImageSet']] == ['build-agent']
    assert describe(cloud, BJ, Filters=mine)['TotalCount'] == 0


def test_describe_errors(cloud):
    r = cloud.call('DescribeImages', GZ, {
        'ImageIds': ['img-00000000'],
        'Filters': [{'Name': 'image-id', 'Values': ['img-00000000']}]})
    assert error(r) == 'InvalidParameter'
    r = cloud.call('DescribeImages', GZ, {'Limit': 101})
    assert error(r) == 'InvalidParameterValue.LimitExceeded'
    r = cloud.call('DescribeImages', GZ, {
        'Filters': [{'Name': 'os-name', 'Values': ['x']}]})
    assert error(r) == 'InvalidFilter'


# --- CreateImage and the daily limit -------------------------------------

def test_create_image(cloud):
    new = create(cloud, 'golden', ImageDescription='from ins')
    row = image(cloud, new)
    assert row['owner'] == ME and row['kind'] == 'custom'
    assert row['state'] == 'NORMAL' and row['progress'] is None
    assert row['source'] == 'instance:ins-abcd1234'
    assert row['platform'] == 'TencentOS' and row['arch'] == 'x86_64'
    assert row['description'] == 'from ins'
    assert row['created'] >= int(time.time()) - 5
    assert ops(cloud) == 1
    found = describe(cloud, ImageIds=[new])['ImageSet'][0]
    assert found['ImageType'] == 'PRIVATE_IMAGE'
    assert found['ImageSource'] == 'CREATE_IMAGE'
    assert rows(cloud, 'SELECT count(*) FROM changes') == [(0,)]


def test_create_image_errors(cloud):
    cases = [
        ({'InstanceId': 'ins-ABC', 'ImageName': 'a'},
         'InvalidInstanceId.Malformed'),
        ({'InstanceId': 'ins-00000000', 'ImageName': 'a'},
         'InvalidInstanceId.NotFound'),
        ({'InstanceId': 'ins-abcd1234'}, 'MissingParameter'),
        ({'InstanceId': 'ins-abcd1234', 'ImageName': 'build-agent'},
         'InvalidImageName.Duplicate'),
        ({'InstanceId': 'ins-abcd1234', 'ImageName': 'n' * 61},
         'InvalidParameterValue.TooLong'),
    ]
    for body, code in cases:
        assert error(cloud.call('CreateImage', GZ, body)) == code, body
    setting(cloud, 'max_custom_images', 2)
    r = cloud.call('CreateImage', GZ, {'InstanceId': 'ins-abcd1234',
                                       'ImageName': 'n' * 61})
    assert error(r) == 'ImageQuotaLimitExceeded'   # quota comes first
    assert ops(cloud) == 0
    assert rows(cloud, "SELECT count(*) FROM images WHERE owner = ?",
                ME) == [(2,)]


def test_daily_limit(cloud):
    agent = image_id(cloud, 'build-agent')
    for n in range(5):
        body = {'ImageId': agent, 'ImageDescription': 'take %d' % n}
        ok(cloud.call('ModifyImageAttribute', GZ, body))
        # a failed operation is not charged
        r = cloud.call('ModifyImageAttribute', GZ, {
            'ImageId': agent, 'ImageName': 'web-server-2026'})
        assert error(r) == 'InvalidImageName.Duplicate'
    assert ops(cloud) == 5
    r = cloud.call('CreateImage', GZ, {'InstanceId': 'ins-abcd1234',
                                       'ImageName': 'sixth'})
    assert error(r) == 'LimitExceeded.ImageOperation'
    assert ops(cloud) == 5
    assert image(cloud, agent)['description'] == 'take 4'
    # other regions and other accounts have their own count
    create(cloud, 'elsewhere', BJ)
    create(cloud, 'theirs', uin=OTHER)
    setting(cloud, 'max_daily_ops', 6)
    create(cloud, 'sixth')


def test_dry_run(cloud):
    r = cloud.call('CreateImage', GZ, {'InstanceId': 'ins-abcd1234',
                                       'ImageName': 'dry', 'DryRun': True})
    assert error(r) == 'DryRunOperation'
    assert ops(cloud) == 0
    assert rows(cloud, "SELECT count(*) FROM images WHERE name = 'dry'") \
        == [(0,)]


# --- ImportImage ---------------------------------------------------------

IMPORT = {'Architecture': 'x86_64', 'OsType': 'Windows',
          'OsVersion': 'Server 2022', 'ImageName': 'imported'}


def test_import_image(cloud):
    body = dict(IMPORT, ImageUrl='https://user:pw@files.example/w.qcow2')
    assert ok(cloud.call('ImportImage', GZ, body)).keys() == {'RequestId'}
    row = image(cloud, image_id(cloud, 'imported'))
    assert row['source'] == 'import:https://files.example/w.qcow2'
    assert row['os_type'] == 'windows' and row['platform'] == 'Windows'
    assert row['os_name'] == 'Windows Server 2022'
    assert row['state'] == 'NORMAL' and row['bits'] == 64
    r = describe(cloud, ImageIds=[row['id']])['ImageSet'][0]
    assert r['ImageSource'] == 'EXTERNAL_IMPORT'
    body = dict(IMPORT, ImageName='broken', Architecture='i386',
                ImageUrl='http://files.example/fail.raw')
    ok(cloud.call('ImportImage', GZ, body))
    row = image(cloud, image_id(cloud, 'broken'))
    assert row['state'] == 'IMPORTFAILED' and row['bits'] == 32
    assert row['error'] == 'the image file could not be read'
    assert ops(cloud) == 2


def test_import_fails_by_file_name():
    assert import_fails('http://h/fail.raw')
    assert import_fails('file:///tmp/x/disk-failing.qcow2')
    assert not import_fails('file:///tmp/test_import_fails0/disk.qcow2')
    assert not import_fails('http://h/files/disk.qcow2?fail=2')


def test_import_os_name():
    assert import_os_name('CentOS', '7.9') == 'CentOS 7.9'
    assert import_os_name('Ubuntu', 'Ubuntu Server 22.04 LTS 64-bit') == \
        'Ubuntu Server 22.04 LTS 64-bit'
    assert import_os_name('Ubuntu', '-') is None


def test_import_image_errors(cloud):
    body = dict(IMPORT, ImageUrl='ftp://files.example/a.raw')
    assert error(cloud.call('ImportImage', GZ, body)) == \
        'InvalidParameterValue'
    assert error(cloud.call('ImportImage', GZ, IMPORT)) == 'MissingParameter'
    body = dict(IMPORT, ImageUrl='http://h/a.raw', ImageName='build-agent')
    assert error(cloud.call('ImportImage', GZ, body)) == \
        'InvalidImageName.Duplicate'
    assert ops(cloud) == 0


# --- SyncImages ----------------------------------------------------------

def sync(server, source, dest=BJ, uin=ME, region=GZ, **extra):
    body = dict({'ImageIds': [source], 'DestinationRegions': [dest]},
                **extra)
    return server.call('SyncImages', region, body, uin=uin)


def test_sync_images(cloud):
    web = image_id(cloud, 'web-server-2026')
    r = ok(sync(cloud, web))['ImageSet']
    assert r[0]['Region'] == BJ
    row = image(cloud, r[0]['ImageId'])
    src = image(cloud, web)
    assert row['region'] == BJ and row['name'] == 'web-server-2026'
    assert row['source'] == 'copy:%s@%s' % (web, GZ)
    for key in ('os_name', 'platform', 'arch', 'size_gb', 'description'):
        assert row[key] == src[key]
    assert ops(cloud, region=GZ) == 1 and ops(cloud, region=BJ) == 0
    copied = describe(cloud, BJ, ImageIds=[row['id']])['ImageSet'][0]
    assert copied['ImageSource'] == 'SYNC_IMAGE'
    r = ok(sync(cloud, web, ImageName='renamed copy'))['ImageSet']
    assert image(cloud, r[0]['ImageId'])['name'] == 'renamed copy'


def test_sync_images_errors(cloud):
    web = image_id(cloud, 'web-server-2026')
    ml = image_id(cloud, 'ml-training-base')
    assert error(sync(cloud, 'img-zzzzzzzz')) == 'InvalidImageId.NotFound'
    assert error(sync(cloud, web, region=BJ)) == 'InvalidImageId.NotFound'
    assert error(sync(cloud, ml)) == \
        'UnauthorizedOperation.ImageNotBelongToAccount'
    assert error(sync(cloud, web, TOKYO)) == 'InvalidRegion.Unavailable'
    assert error(sync(cloud, web, 'mars-olympus')) == \
        'InvalidParameterValue.Region'
    set_state(cloud, web, 'SYNCING')
    assert error(sync(cloud, web)) == 'InvalidImageId.IncorrectState'
    set_state(cloud, web, 'NORMAL')
    create(cloud, 'web-server-2026', BJ)
    assert error(sync(cloud, web)) == 'InvalidImageName.Duplicate'
    setting(cloud, 'max_custom_images', 1)
    assert error(sync(cloud, web)) == 'ImageQuotaLimitExceeded'
    setting(cloud, 'max_custom_images', 10)
    execute(cloud, 'INSERT INTO ops VALUES (?, ?, ?, 5)', ME, GZ, today())
    r = sync(cloud, web, ImageName='other name')
    assert error(r) == 'LimitExceeded.ImageOperation'
    assert ops(cloud, region=BJ) == 1   # the create only


# --- DeleteImages --------------------------------------------------------

def delete(server, image_id_, uin=ME):
    return server.call('DeleteImages', GZ, {'ImageIds': [image_id_]},
                       uin=uin)


def test_delete_images(cloud):
    agent = image_id(cloud, 'build-agent')
    ok(delete(cloud, agent))
    assert image(cloud, agent) is None
    assert ops(cloud) == 1
    assert error(delete(cloud, agent)) == 'InvalidImageId.NotFound'
    public = rows(cloud, "SELECT id FROM images WHERE kind = 'public' AND "
                  "region = ?", GZ)[0][0]
    assert error(delete(cloud, public)) == \
        'UnauthorizedOperation.ImageNotBelongToAccount'
    ml = image_id(cloud, 'ml-training-base')
    assert error(delete(cloud, ml, uin=PEER)) == 'InvalidImageId.InShared'
    web = image_id(cloud, 'web-server-2026')
    set_state(cloud, web, 'CREATING')
    assert error(delete(cloud, web)) == 'InvalidImageId.IncorrectState'
    set_state(cloud, web, 'NORMAL')
    # an import that failed may go
    body = dict(IMPORT, ImageUrl='http://h/fail.raw')
    ok(cloud.call('ImportImage', GZ, body))
    ok(delete(cloud, image_id(cloud, 'imported')))
    setting(cloud, 'max_daily_ops', 3)
    assert error(delete(cloud, web)) == 'LimitExceeded.ImageOperation'
    assert image(cloud, web) is not None


def test_delete_while_copy_runs(tmp_path):
    with TcServer(str(tmp_path / 'c.db'), settle=30) as server:
        web = image_id(server, 'web-server-2026')
        copy = ok(sync(server, web))['ImageSet'][0]['ImageId']
        assert image(server, copy)['state'] == 'SYNCING'
        assert error(delete(server, web)) == 'InvalidImageId.IncorrectState'
        server.settle = 0
        server.advance()
        assert image(server, copy)['state'] == 'NORMAL'
        ok(delete(server, web))


# --- ModifyImageAttribute ------------------------------------------------

def modify(server, image_id_, uin=ME, **body):
    return server.call('ModifyImageAttribute', GZ,
                       dict(body, ImageId=image_id_), uin=uin)


def test_modify_image_attribute(cloud):
    agent = image_id(cloud, 'build-agent')
    ok(modify(cloud, agent, ImageName='builder', ImageDescription='new'))
    row = image(cloud, agent)
    assert (row['name'], row['description']) == ('builder', 'new')
    assert ops(cloud) == 1
    ok(modify(cloud, agent, ImageDescription=''))
    assert image(cloud, agent)['description'] is None
    assert error(modify(cloud, 'img-zzzzzzzz', ImageName='x')) == \
        'InvalidImageId.NotFound'
    ml = image_id(cloud, 'ml-training-base')
    assert error(modify(cloud, ml, ImageName='x')) == \
        'UnauthorizedOperation.ImageNotBelongToAccount'
    assert error(modify(cloud, agent, ImageName='x' * 61)) == \
        'InvalidParameterValue.TooLong'
    assert error(modify(cloud, agent, ImageName='web-server-2026')) == \
        'InvalidImageName.Duplicate'
    assert error(modify(cloud, agent)) == 'MissingParameter'
    assert error(modify(cloud, agent, ImageName='a\nb')) == \
        'InvalidParameterValue'
    assert ops(cloud) == 2


# --- sharing -------------------------------------------------------------

def test_share_and_cancel(cloud):
    web = image_id(cloud, 'web-server-2026')
    ok(share(cloud, web, OTHER))
    ok(share(cloud, web, PEER))
    r = ok(cloud.call('DescribeImageSharePermission', GZ, {'ImageId': web}))
    assert [s['AccountId'] for s in r['SharePermissionSet']] == [PEER, OTHER]
    seen = describe(cloud, uin=OTHER, ImageIds=[web])['ImageSet']
    assert seen[0]['ImageType'] == 'SHARED_IMAGE'
    ok(share(cloud, web, OTHER, 'CANCEL'))
    assert describe(cloud, uin=OTHER, ImageIds=[web])['TotalCount'] == 0
    assert rows(cloud, 'SELECT account FROM shares s JOIN images i ON '
                'i.row = s.image WHERE i.id = ?', web) == [(PEER,)]
    assert ops(cloud) == 3


def test_share_errors(cloud):
    web = image_id(cloud, 'web-server-2026')
    ml = image_id(cloud, 'ml-training-base')
    assert error(share(cloud, web, ME)) == 'InvalidAccountIs.YourSelf'
    assert error(share(cloud, web, 'alice')) == 'InvalidAccountId.NotFound'
    assert error(share(cloud, web, OTHER, 'GIVE')) == 'InvalidParameterValue'
    assert error(share(cloud, 'img-zzzzzzzz', OTHER)) == \
        'InvalidImageId.NotFound'
    assert error(share(cloud, ml, OTHER)) == \
        'UnauthorizedOperation.ImageNotBelongToAccount'
    assert error(share(cloud, ml, PEER, uin=PEER)) == \
        'InvalidAccountIs.YourSelf'
    assert error(share(cloud, ml, ME, uin=PEER)) == 'InvalidImageId.IsShared'
    assert error(share(cloud, web, OTHER, 'CANCEL')) == \
        'InvalidAccountId.NotFound'
    setting(cloud, 'max_share_accounts', 1)
    assert error(share(cloud, ml, OTHER, uin=PEER)) == 'OverQuota'
    set_state(cloud, web, 'CREATING')
    assert error(share(cloud, web, OTHER)) == 'InvalidImageId.IncorrectState'
    set_state(cloud, web, 'NORMAL')
    execute(cloud, 'INSERT INTO ops VALUES (?, ?, ?, 5)', ME, GZ, today())
    assert error(share(cloud, web, OTHER)) == 'LimitExceeded.ImageOperation'
    r = cloud.call('DescribeImageSharePermission', GZ, {'ImageId': ml})
    assert error(r) == 'UnauthorizedOperation.ImageNotBelongToAccount'
    assert ops(cloud, PEER) == 0


def test_describe_image_quota(cloud):
    assert ok(cloud.call('DescribeImageQuota', GZ))['ImageNumQuota'] == 10
    setting(cloud, 'max_custom_images', 3)
    assert cloud.call('DescribeImageQuota', BJ)['ImageNumQuota'] == 3


# --- settling ------------------------------------------------------------

def test_settle_progress(tmp_path):
    with TcServer(str(tmp_path / 'c.db'), settle=0.6) as server:
        new = create(server, 'slow')
        body = dict(IMPORT, ImageUrl='http://h/fail.qcow2')
        ok(server.call('ImportImage', GZ, body))
        bad = image_id(server, 'imported')
        assert image(server, bad)['state'] == 'IMPORTING'
        states, percents = [], []

        def settled():
            found = describe(server, ImageIds=[new])['ImageSet'][0]
            states.append(found['ImageState'])
            percents.append(found['SyncPercent'])
            return found['ImageState'] == 'NORMAL'

        wait_for(settled)
        assert states[0] == 'CREATING'
        running = percents[:-1]
        assert running == sorted(running)
        assert any(0 < p < 100 for p in running)
        assert percents[-1] == 0
        assert image(server, new)['progress'] is None
        server.advance()
        row = image(server, bad)
        assert row['state'] == 'IMPORTFAILED'
        assert row['error'] == 'the image file could not be read'


# --- faults and inspection ----------------------------------------------

def test_fail(cloud):
    cloud.fail('RequestLimitExceeded', times=2, action='CreateImage')
    ok(cloud.call('DescribeImageQuota', GZ))
    body = {'InstanceId': 'ins-abcd1234', 'ImageName': 'n'}
    for _ in range(2):
        r = cloud.call('CreateImage', GZ, body)
        assert error(r) == 'RequestLimitExceeded'
    assert ops(cloud) == 0
    create(cloud, 'n')
    cloud.fail('InternalError', message='boom')
    r = cloud.call('DescribeImageQuota', GZ)
    assert r['Error'] == {'Code': 'InternalError', 'Message': 'boom'}


def test_http_error(cloud):
    cloud.http_error(503)
    with pytest.raises(TcHttpError) as e:
        cloud.call('DescribeImageQuota', GZ)
    assert e.value.status == 503
    with pytest.raises(ValueError):
        json.loads(e.value.body)
    ok(cloud.call('DescribeImageQuota', GZ))


def test_delay(cloud):
    cloud.delay(0.3, action='DescribeImageQuota')
    start = time.monotonic()
    ok(cloud.call('DescribeImageQuota', GZ))
    assert time.monotonic() - start >= 0.3


def test_drop(cloud):
    cloud.drop()
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        cloud.call('DescribeImageQuota', GZ)
    ok(cloud.call('DescribeImageQuota', GZ))


def test_requests_recorded(cloud):
    cloud.call('DescribeImages', GZ, {'Limit': 1})
    cloud.call('DescribeImageQuota', BJ, uin=OTHER,
               timestamp=int(time.time()) - 1000)
    assert cloud.actions() == ['DescribeImages', 'DescribeImageQuota']
    first, refused = cloud.requests
    assert first['body'] == {'Limit': 1} and first['uin'] == ME
    assert first['region'] == GZ
    assert first['headers']['x-tc-action'] == 'DescribeImages'
    assert refused['uin'] == OTHER and refused['region'] == BJ
    cloud.clear()
    assert cloud.actions() == []


def test_catalog_file(tmp_path):
    path = str(tmp_path / 'c.db')
    TcServer(path)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute('PRAGMA user_version').fetchone() == (
            SCHEMA_VERSION,)
        assert conn.execute('PRAGMA journal_mode').fetchone() == ('wal',)
        count = conn.execute('SELECT count(*) FROM images').fetchone()
        settings = dict(conn.execute('SELECT key, value FROM settings'))
    finally:
        conn.close()
    assert settings['max_custom_images'] == 10
    assert settings['max_daily_ops'] == 5
    TcServer(path)                      # opened again: not seeded twice
    conn = sqlite3.connect(path)
    try:
        assert conn.execute('SELECT count(*) FROM images').fetchone() == count
    finally:
        conn.close()


# --- life ----------------------------------------------------------------

def test_stop_with_open_connections(tmp_path):
    server = TcServer(str(tmp_path / 'c.db')).start()
    idle = http.client.HTTPConnection(server.host, server.port, timeout=10)
    for _ in range(2):                  # the connection is kept alive
        idle.request('POST', '/', *signed_request(
            netloc(server), 'DescribeImageQuota', GZ))
        answer = idle.getresponse()
        assert answer.getheader('Content-Length')
        assert 'ImageNumQuota' in json.loads(answer.read())['Response']
    server.delay(60)
    outcome = []

    def slow_call():
        try:
            server.call('DescribeImageQuota', GZ)
            outcome.append('answered')
        except (http.client.HTTPException, OSError):
            outcome.append('cut')

    slow = threading.Thread(target=slow_call)
    slow.start()
    wait_for(lambda: len(server.requests) == 3)
    start = time.monotonic()
    server.stop()
    assert time.monotonic() - start < 2
    slow.join(5)
    assert outcome == ['cut']
    idle.close()
    with pytest.raises(OSError):
        socket.create_connection((server.host, server.port), timeout=1)


def test_restart_keeps_url(cloud):
    url = cloud.url
    cloud.stop()
    assert cloud.port == 0
    with pytest.raises(OSError):
        cloud.call('DescribeImageQuota', GZ)
    cloud.start()
    assert cloud.url == url
    ok(cloud.call('DescribeImageQuota', GZ))


def test_start_turns_vfork_off(cloud):
    # a child with cwd= in a mount must not hold the GIL this server needs
    assert getattr(subprocess, '_USE_VFORK', False) is False


def test_standalone(tmp_path):
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          'tcserver.py')
    proc = subprocess.Popen([sys.executable, script, '--db',
                             str(tmp_path / 'c.db'), '--settle', '0.5'],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith('imagefs tcserver: http://127.0.0.1:')
        port = int(line.rsplit(':', 1)[1])
        assert 'AKIDimagefsTEST' in proc.stdout.readline()
        r = call('127.0.0.1', port, 'DescribeImageQuota', GZ)
        assert r['ImageNumQuota'] == 10
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
