# SPDX-License-Identifier: GPL-2.0
"""Self-tests of tests/tcserver.py, the stand-in Tencent Cloud CVM API.

No mount: each test starts a TcServer over a new state file in tmp_path,
acts as a signed client (TcServer.call) and checks the answers, with the
shapes and error codes of the API reference, and the state with sqlite3.
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

from tcserver import (CONTENT_TYPE, IMPORT_OS, SCHEMA_VERSION, TcHttpError,
                      TcServer, call, cos_url, import_fails, sign,
                      signed_request, test_keys)

ME = '100000000001'             # the seed's demo account
PEER = '100000000002'           # shares ml-training-base with ME
OTHER = '100000000003'          # an account with nothing
GZ = 'ap-guangzhou'
BJ = 'ap-beijing'
SH = 'ap-shanghai'
HK = 'ap-hongkong'
TOKYO = 'ap-tokyo'              # no image duplication
DEADLINE = 5.0                  # s of polling for a state to come
POLL = 0.02
COS = 'https://images-1250000000.cos.ap-guangzhou.myqcloud.com'


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


def counted(server):
    """Rows of the ops table: the cloud counts no operations."""
    return rows(server, 'SELECT count(*) FROM ops')[0][0]


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
    assert error(r) == 'NoSuchVersion'
    r = cloud.call('DescribeImages', 'mars-olympus')
    assert error(r) == 'UnsupportedRegion'
    r = cloud.call('DescribeImages', '')
    assert error(r) == 'MissingParameter'
    r = cloud.call('DescribeImages', GZ, b'{"Limit": ')
    assert error(r) == 'InvalidParameter'
    r = cloud.call('DescribeImages', GZ, b'[1, 2]')
    assert error(r) == 'InvalidParameter'
    assert cloud.requests[-1]['body'] is None
    r = cloud.call('DescribeImages', GZ, headers={'X-TC-Language': 'fr-FR'})
    assert error(r) == 'InvalidParameterValue'
    ok(cloud.call('DescribeImages', GZ, headers={'X-TC-Language': 'en-US'}))


@pytest.mark.parametrize('action, body', [
    ('DescribeImages', {'Limit': 1, 'Bogus': 1}),
    ('DescribeImageQuota', {'Zone': 'ap-guangzhou-3'}),
    ('CreateImage', {'ImageName': 'n', 'InstanceId': 'ins-abcd1234',
                     'Architecture': 'x86_64'}),
    ('SyncImages', {'ImageIds': ['img-00000001'],
                    'DestinationRegions': [BJ], 'ImageSetRequire': True}),
])
def test_unknown_parameters(cloud, action, body):
    assert error(cloud.call(action, GZ, body)) == 'UnknownParameter'


@pytest.mark.parametrize('action, body', [
    ('DescribeImages', {'Limit': '20'}),
    ('DescribeImages', {'ImageIds': 'img-00000001'}),
    ('SyncImages', {'ImageIds': ['img-00000001'],
                    'DestinationRegions': [BJ], 'DryRun': 'true'}),
])
def test_wrong_types(cloud, action, body):
    assert error(cloud.call(action, GZ, body)) == 'InvalidParameter'


@pytest.mark.parametrize('action, body', [
    ('CreateImage', {'ImageName': 'n', 'InstanceId': 'ins-abcd1234',
                     'ForcePoweroff': 'yes'}),
    ('ImportImage', {'ImageName': 'n', 'ImageUrl': COS + '/a.qcow2',
                     'OsType': 'CentOS', 'OsVersion': '7',
                     'Architecture': 'arm64'}),
    ('ImportImage', {'ImageName': 'n', 'ImageUrl': COS + '/a.qcow2',
                     'OsType': 'CentOS', 'OsVersion': '7',
                     'Architecture': 'x86_64', 'BootMode': 'BIOS'}),
    ('DescribeImages', {'Offset': -1}),
    ('ModifyImageSharePermission', {'ImageId': 'img-00000001',
                                    'AccountIds': [OTHER],
                                    'Permission': 'GIVE'}),
])
def test_undocumented_values(cloud, action, body):
    assert error(cloud.call(action, GZ, body)) == 'InvalidParameterValue'


# --- DescribeImages ------------------------------------------------------

PUBLIC = [{'Name': 'image-type', 'Values': ['PUBLIC_IMAGE']}]


def test_describe_public_pages(cloud):
    want = [r[0] for r in rows(cloud, "SELECT id FROM images WHERE "
                               "region = ? AND kind = 'public' ORDER BY row",
                               GZ)]
    assert len(want) > 10
    seen, offset = [], 0
    while True:
        r = describe(cloud, Filters=PUBLIC, Offset=offset, Limit=7)
        assert r['TotalCount'] == len(want)
        if not r['ImageSet']:
            break
        seen += [i['ImageId'] for i in r['ImageSet']]
        offset += 7
    assert seen == want
    first = describe(cloud, Filters=PUBLIC, Limit=1)['ImageSet'][0]
    assert set(first) >= {'ImageId', 'OsName', 'ImageType', 'CreatedTime',
                          'ImageName', 'ImageDescription', 'ImageSize',
                          'Architecture', 'ImageState', 'Platform',
                          'ImageCreator', 'ImageSource', 'SyncPercent',
                          'IsSupportCloudinit', 'SnapshotSet', 'Tags',
                          'LicenseType'}
    assert first['ImageType'] == 'PUBLIC_IMAGE'
    assert first['ImageSource'] == 'OFFICIAL'
    assert first['CreatedTime'].endswith('Z')
    assert first['SyncPercent'] is None
    # the API's own names for architectures: arm, not arm64
    arches = {i['Architecture'] for i in describe(
        cloud, Filters=PUBLIC, Limit=100)['ImageSet']}
    assert arches == {'x86_64', 'i386', 'arm'}
    # with no Limit, a page is 20
    assert len(describe(cloud, Filters=PUBLIC)['ImageSet']) == 20


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
    # image-name and platform are fuzzy
    r = describe(cloud, Filters=[{'Name': 'image-name',
                                  'Values': ['agent']}])
    assert [i['ImageName'] for i in r['ImageSet']] == ['build-agent']
    r = describe(cloud, Filters=PUBLIC + [{'Name': 'platform',
                                           'Values': ['ubun']}])
    assert r['TotalCount'] and all(i['Platform'] == 'Ubuntu'
                                   for i in r['ImageSet'])
    assert describe(cloud, BJ, Filters=mine)['TotalCount'] == 0
    # unknown ids are left out, without an error
    assert describe(cloud, ImageIds=['img-zzzzzzzz'])['TotalCount'] == 0


def test_describe_market_filter(tmp_path):
    market = [{'Name': 'image-type', 'Values': ['MARKET_IMAGE']}]
    with TcServer(str(tmp_path / 'c.db')) as server:
        r = server.call('DescribeImages', GZ, {'Filters': market})
        assert error(r) == 'InvalidParameterValue'
        # the images are there all the same, by id
        some = rows(server, "SELECT id FROM images WHERE kind = 'market' "
                    "AND region = ?", GZ)[0][0]
        r = describe(server, ImageIds=[some])
        assert r['ImageSet'][0]['ImageType'] == 'MARKET_IMAGE'
    with TcServer(str(tmp_path / 'c.db'), market=True) as server:
        assert describe(server, Filters=market)['TotalCount'] > 0


def test_describe_errors(cloud):
    r = cloud.call('DescribeImages', GZ, {
        'ImageIds': ['img-00000000'],
        'Filters': [{'Name': 'image-id', 'Values': ['img-00000000']}]})
    assert error(r) == \
        'InvalidParameter.InvalidParameterCoexistImageIdsFilters'
    r = cloud.call('DescribeImages', GZ, {'Limit': 101})
    assert error(r) == 'InvalidParameterValue.LimitExceeded'
    r = cloud.call('DescribeImages', GZ, {
        'Filters': [{'Name': 'os-name', 'Values': ['x']}]})
    assert error(r) == 'InvalidFilter'
    r = cloud.call('DescribeImages', GZ, {
        'Filters': [{'Name': 'image-name', 'Values': list('abcdef')}]})
    assert error(r) == 'InvalidFilterValue.LimitExceeded'
    r = cloud.call('DescribeImages', GZ, {'ImageIds': ['img-ABC']})
    assert error(r) == 'InvalidImageId.Malformed'


# --- CreateImage ---------------------------------------------------------

def test_create_image(cloud):
    r = ok(cloud.call('CreateImage', GZ, {
        'InstanceId': 'ins-abcd1234', 'ImageName': 'golden',
        'ImageDescription': 'from ins'}))
    assert set(r) == {'ImageId', 'RequestId'}
    row = image(cloud, r['ImageId'])
    assert row['owner'] == ME and row['kind'] == 'custom'
    assert row['state'] == 'NORMAL' and row['progress'] is None
    assert row['source'] == 'instance:ins-abcd1234'
    assert row['platform'] == 'TencentOS' and row['arch'] == 'x86_64'
    assert row['description'] == 'from ins'
    assert row['created'] >= int(time.time()) - 5
    found = describe(cloud, ImageIds=[r['ImageId']])['ImageSet'][0]
    assert found['ImageType'] == 'PRIVATE_IMAGE'
    assert found['ImageSource'] == 'CREATE_IMAGE'
    assert rows(cloud, 'SELECT count(*) FROM changes') == [(0,)]
    assert counted(cloud) == 0


def test_create_image_errors(cloud):
    cases = [
        ({'InstanceId': 'ins-ABC', 'ImageName': 'a'},
         'InvalidInstanceId.Malformed'),
        ({'InstanceId': 'ins-00000000', 'ImageName': 'a'},
         'InvalidInstanceId.NotFound'),
        ({'InstanceId': 'ins-abcd1234'}, 'MissingParameter'),
        ({'ImageName': 'a'}, 'InvalidParameter.SpecifyOneParameter'),
        ({'InstanceId': 'ins-abcd1234', 'ImageName': 'build-agent'},
         'InvalidImageName.Duplicate'),
        ({'InstanceId': 'ins-abcd1234', 'ImageName': 'n' * 61},
         'InvalidParameterValue.TooLarge'),
        ({'InstanceId': 'ins-abcd1234', 'ImageName': 'd',
          'ImageDescription': 'd' * 257}, 'InvalidParameterValue.TooLarge'),
    ]
    for body, code in cases:
        assert error(cloud.call('CreateImage', GZ, body)) == code, body
    setting(cloud, 'max_custom_images', 2)
    r = cloud.call('CreateImage', GZ, {'InstanceId': 'ins-abcd1234',
                                       'ImageName': 'build-agent'})
    assert error(r) == 'ImageQuotaLimitExceeded'   # quota comes first
    assert rows(cloud, "SELECT count(*) FROM images WHERE owner = ?",
                ME) == [(2,)]


def test_no_daily_limit(cloud):
    agent = image_id(cloud, 'build-agent')
    for n in range(12):
        ok(cloud.call('ModifyImageAttribute', GZ, {
            'ImageId': agent, 'ImageDescription': 'take %d' % n}))
    create(cloud, 'thirteenth')
    assert image(cloud, agent)['description'] == 'take 11'
    assert counted(cloud) == 0


def test_dry_run(cloud):
    r = cloud.call('CreateImage', GZ, {'InstanceId': 'ins-abcd1234',
                                       'ImageName': 'dry', 'DryRun': True})
    assert error(r) == 'DryRunOperation'
    r = cloud.call('CreateImage', GZ, {'InstanceId': 'ins-00000000',
                                       'ImageName': 'dry', 'DryRun': True})
    assert error(r) == 'InvalidInstanceId.NotFound'     # checks first
    assert rows(cloud, "SELECT count(*) FROM images WHERE name = 'dry'") \
        == [(0,)]


# --- ImportImage ---------------------------------------------------------

IMPORT = {'Architecture': 'x86_64', 'OsType': 'CentOS', 'OsVersion': '7',
          'ImageName': 'imported'}


def test_import_image_os(cloud):
    r = ok(cloud.call('DescribeImportImageOs', GZ))
    assert r['ImportImageOsListSupported'] == \
        IMPORT_OS['ImportImageOsListSupported']
    centos = [e for e in r['ImportImageOsVersionSet']
              if e['OsName'] == 'CentOS'][0]
    assert centos['OsVersions'] == ['7', '6', '5']
    assert centos['Architecture'] == ['x86_64', 'i386']


def test_import_image(cloud):
    body = dict(IMPORT, ImageUrl=COS + '/w.qcow2?q-sign-algorithm=sha1')
    r = ok(cloud.call('ImportImage', GZ, body))
    assert set(r) == {'ImageId', 'RequestId'}
    row = image(cloud, r['ImageId'])
    assert row['name'] == 'imported'
    assert row['source'] == 'import:%s/w.qcow2' % COS
    assert row['os_type'] == 'linux' and row['platform'] == 'CentOS'
    assert row['os_name'] == 'CentOS 7'
    assert row['state'] == 'NORMAL' and row['bits'] == 64
    found = describe(cloud, ImageIds=[row['id']])['ImageSet'][0]
    assert found['ImageSource'] == 'EXTERNAL_IMPORT'
    body = dict(IMPORT, ImageName='arm', OsType='Ubuntu', OsVersion='22.04',
                Architecture='arm_64', ImageUrl=COS + '/u.raw')
    row = image(cloud, ok(cloud.call('ImportImage', GZ, body))['ImageId'])
    assert row['arch'] == 'arm64'
    body = dict(IMPORT, ImageName='broken', Architecture='i386',
                ImageUrl=COS + '/fail.raw')
    row = image(cloud, ok(cloud.call('ImportImage', GZ, body))['ImageId'])
    assert row['state'] == 'IMPORTFAILED' and row['bits'] == 32
    assert row['error'] == 'the image file could not be read'
    body = dict(IMPORT, ImageName='win', OsType='Windows Server 2016',
                OsVersion='-', ImageUrl=COS + '/w.vhd')
    row = image(cloud, ok(cloud.call('ImportImage', GZ, body))['ImageId'])
    assert (row['os_type'], row['platform']) == ('windows', 'Windows')
    body = dict(IMPORT, ImageName='iso', ImageUrl=COS + '/c.iso',
                Force=True)
    ok(cloud.call('ImportImage', GZ, body))


def test_import_fails_by_file_name():
    assert import_fails(COS + '/fail.raw')
    assert import_fails(COS + '/x/disk-failing.qcow2')
    assert not import_fails(COS + '/fail/disk.qcow2')
    assert not import_fails(COS + '/disk.qcow2?fail=2')


def test_cos_urls():
    assert cos_url(COS + '/a.qcow2')
    assert cos_url('http://b-1.cos.ap-beijing.tencentcos.cn/x/y.raw')
    assert not cos_url('https://files.example/a.qcow2')
    assert not cos_url('file:///tmp/a.qcow2')
    assert not cos_url('https://u:p@images-125.cos.ap-guangzhou.myqcloud.com'
                       '/a')
    assert not cos_url(COS + '/')
    assert not cos_url('https://images.cos.ap-guangzhou.myqcloud.com/a')


def test_import_image_errors(cloud):
    cases = [
        (dict(IMPORT, ImageUrl='https://files.example/a.raw'),
         'InvalidParameter.InvalidParameterUrlError'),
        (IMPORT, 'MissingParameter'),
        (dict(IMPORT, ImageUrl=COS + '/a.raw', ImageName='build-agent'),
         'InvalidImageName.Duplicate'),
        (dict(IMPORT, ImageUrl=COS + '/a.raw', OsType='Plan9'),
         'InvalidImageOsType.Unsupported'),
        (dict(IMPORT, ImageUrl=COS + '/a.raw', OsVersion='7.9'),
         'InvalidImageOsVersion.Unsupported'),
        (dict(IMPORT, ImageUrl=COS + '/a.raw', Architecture='arm_64'),
         'InvalidParameterValue'),
        (dict(IMPORT, ImageUrl=COS + '/c.ISO'),
         'InvalidParameterValue.ISOMustImportByForce'),
    ]
    for body, code in cases:
        assert error(cloud.call('ImportImage', GZ, body)) == code, body


# --- SyncImages ----------------------------------------------------------

def sync(server, source, dest=BJ, uin=ME, region=GZ, **extra):
    body = dict({'ImageIds': [source], 'DestinationRegions': [dest]},
                **extra)
    return server.call('SyncImages', region, body, uin=uin)


def test_sync_images(cloud):
    web = image_id(cloud, 'web-server-2026')
    # without ImageSetRequired the answer has no ImageSet: no new id
    r = ok(sync(cloud, web))
    assert set(r) == {'RequestId'}
    assert rows(cloud, "SELECT count(*) FROM images WHERE region = ? AND "
                "name = 'web-server-2026'", BJ) == [(1,)]
    r = ok(sync(cloud, web, SH, ImageSetRequired=True))['ImageSet']
    assert r[0]['Region'] == SH
    row = image(cloud, r[0]['ImageId'])
    src = image(cloud, web)
    assert row['region'] == SH and row['name'] == 'web-server-2026'
    assert row['source'] == 'copy:%s@%s' % (web, GZ)
    for key in ('os_name', 'platform', 'arch', 'size_gb', 'description'):
        assert row[key] == src[key]
    r = ok(sync(cloud, web, HK, ImageName='renamed copy',
                ImageSetRequired=True))['ImageSet']
    assert image(cloud, r[0]['ImageId'])['name'] == 'renamed copy'
    assert counted(cloud) == 0


def test_sync_shared_image(cloud):
    ml = image_id(cloud, 'ml-training-base')
    # a shared image into its own region only: a custom copy of mine
    assert error(sync(cloud, ml, BJ)) == 'InvalidRegion.Unavailable'
    r = ok(sync(cloud, ml, GZ, ImageName='my-ml', ImageSetRequired=True))
    row = image(cloud, r['ImageSet'][0]['ImageId'])
    assert (row['owner'], row['region']) == (ME, GZ)


def test_sync_images_errors(cloud):
    web = image_id(cloud, 'web-server-2026')
    public = rows(cloud, "SELECT id FROM images WHERE kind = 'public' AND "
                  "region = ?", GZ)[0][0]
    assert error(sync(cloud, 'img-zzzzzzzz')) == 'InvalidImageId.NotFound'
    assert error(sync(cloud, 'img-ZZ')) == 'InvalidImageId.Malformed'
    assert error(sync(cloud, web, region=BJ)) == 'InvalidImageId.NotFound'
    assert error(sync(cloud, public)) == \
        'InvalidParameterValue.InvalidImageId'
    assert error(sync(cloud, web, GZ)) == \
        'InvalidParameterValue.InvalidRegion'
    assert error(sync(cloud, web, TOKYO)) == 'InvalidRegion.Unavailable'
    assert error(sync(cloud, web, 'mars-olympus')) == \
        'InvalidRegion.NotFound'
    r = cloud.call('SyncImages', GZ, {'ImageIds': [web, web],
                                      'DestinationRegions': [BJ]})
    assert error(r) == 'InvalidParameterValue.LimitExceeded'
    set_state(cloud, web, 'SYNCING')
    assert error(sync(cloud, web)) == 'InvalidImageId.IncorrectState'
    set_state(cloud, web, 'NORMAL')
    create(cloud, 'web-server-2026', BJ)
    assert error(sync(cloud, web)) == 'InvalidImageName.Duplicate'
    setting(cloud, 'max_custom_images', 1)
    assert error(sync(cloud, web, ImageName='other')) == \
        'ImageQuotaLimitExceeded'
    setting(cloud, 'max_custom_images', 0)
    assert error(sync(cloud, web, SH, DryRun=True)) == \
        'ImageQuotaLimitExceeded'       # a dry run checks the quota too
    setting(cloud, 'max_custom_images', 10)
    assert error(sync(cloud, web, SH, DryRun=True)) == 'DryRunOperation'


# --- DeleteImages --------------------------------------------------------

def delete(server, image_id_, uin=ME):
    return server.call('DeleteImages', GZ, {'ImageIds': [image_id_]},
                       uin=uin)


def test_delete_images(cloud):
    agent = image_id(cloud, 'build-agent')
    assert set(ok(delete(cloud, agent))) == {'RequestId'}
    assert image(cloud, agent) is None
    assert error(delete(cloud, agent)) == 'InvalidImageId.NotFound'
    public = rows(cloud, "SELECT id FROM images WHERE kind = 'public' AND "
                  "region = ?", GZ)[0][0]
    assert error(delete(cloud, public)) == \
        'InvalidParameterValue.InvalidImageId'
    ml = image_id(cloud, 'ml-training-base')
    assert error(delete(cloud, ml)) == \
        'InvalidParameterValue.InvalidImageIdIsShared'
    assert error(delete(cloud, ml, uin=PEER)) == 'InvalidImageId.InShared'
    web = image_id(cloud, 'web-server-2026')
    set_state(cloud, web, 'CREATING')
    assert error(delete(cloud, web)) == 'InvalidImageId.IncorrectState'
    set_state(cloud, web, 'NORMAL')
    # an import that failed may go
    body = dict(IMPORT, ImageUrl=COS + '/fail.raw')
    ok(delete(cloud, ok(cloud.call('ImportImage', GZ, body))['ImageId']))
    assert error(cloud.call('DeleteImages', GZ, {'ImageIds': [web],
                                                 'DryRun': True})) == \
        'DryRunOperation'
    assert image(cloud, web) is not None


# --- ModifyImageAttribute ------------------------------------------------

def modify(server, image_id_, uin=ME, **body):
    return server.call('ModifyImageAttribute', GZ,
                       dict(body, ImageId=image_id_), uin=uin)


def test_modify_image_attribute(cloud):
    agent = image_id(cloud, 'build-agent')
    ok(modify(cloud, agent, ImageName='builder', ImageDescription='new'))
    row = image(cloud, agent)
    assert (row['name'], row['description']) == ('builder', 'new')
    ok(modify(cloud, agent, ImageDescription=''))
    assert image(cloud, agent)['description'] is None
    assert error(modify(cloud, 'img-zzzzzzzz', ImageName='x')) == \
        'InvalidImageId.NotFound'
    ml = image_id(cloud, 'ml-training-base')
    assert error(modify(cloud, ml, ImageName='x')) == \
        'UnsupportedOperation.SharedImageModifyUnsupported'
    assert error(modify(cloud, agent, ImageName='x' * 61)) == \
        'InvalidParameterValue.TooLarge'
    assert error(modify(cloud, agent, ImageName='web-server-2026')) == \
        'InvalidImageName.Duplicate'
    set_state(cloud, agent, 'IMPORTING')
    assert error(modify(cloud, agent, ImageName='y')) == \
        'InvalidImageId.IncorrectState'


# --- sharing -------------------------------------------------------------

def test_share_and_cancel(cloud):
    web = image_id(cloud, 'web-server-2026')
    ok(share(cloud, web, OTHER))
    ok(share(cloud, web, PEER))
    r = ok(cloud.call('DescribeImageSharePermission', GZ, {'ImageId': web}))
    assert [s['AccountId'] for s in r['SharePermissionSet']] == [PEER, OTHER]
    assert r['SharePermissionSet'][0]['CreatedTime'].endswith('Z')
    seen = describe(cloud, uin=OTHER, ImageIds=[web])['ImageSet']
    assert seen[0]['ImageType'] == 'SHARED_IMAGE'
    ok(share(cloud, web, OTHER, 'CANCEL'))
    assert describe(cloud, uin=OTHER, ImageIds=[web])['TotalCount'] == 0
    assert rows(cloud, 'SELECT account FROM shares s JOIN images i ON '
                'i.row = s.image WHERE i.id = ?', web) == [(PEER,)]


def test_share_errors(tmp_path):
    with TcServer(str(tmp_path / 'c.db'), share_limit=1) as cloud:
        web = image_id(cloud, 'web-server-2026')
        ml = image_id(cloud, 'ml-training-base')
        public = rows(cloud, "SELECT id FROM images WHERE kind = 'public' "
                      "AND region = ?", GZ)[0][0]
        assert error(share(cloud, web, ME)) == 'InvalidAccountIs.YourSelf'
        assert error(share(cloud, web, 'alice')) == \
            'InvalidAccountId.NotFound'
        assert error(share(cloud, 'img-zzzzzzzz', OTHER)) == \
            'InvalidImageId.NotFound'
        assert error(share(cloud, public, OTHER)) == \
            'InvalidParameterValue.InvalidImageId'
        assert error(share(cloud, ml, OTHER)) == \
            'UnauthorizedOperation.ImageNotBelongToAccount'
        assert error(share(cloud, ml, ME, uin=PEER)) == \
            'FailedOperation.AccountAlreadyExists'
        assert error(share(cloud, ml, OTHER, uin=PEER)) == 'OverQuota'
        set_state(cloud, web, 'CREATING')
        assert error(share(cloud, web, OTHER)) == \
            'InvalidParameterValue.InvalidImageState'
        r = cloud.call('DescribeImageSharePermission', GZ, {'ImageId': ml})
        assert error(r) == 'UnauthorizedOperation.ImageNotBelongToAccount'


def test_share_limit_is_500(cloud):
    web = image_id(cloud, 'web-server-2026')
    row = rows(cloud, 'SELECT row FROM images WHERE id = ?', web)[0][0]
    with catalog(cloud) as conn:
        conn.executemany('INSERT INTO shares (image, account) VALUES (?, ?)',
                         [(row, str(300000000000 + n)) for n in range(499)])
    ok(share(cloud, web, OTHER))
    assert error(share(cloud, web, PEER)) == 'OverQuota'


def test_describe_image_quota(cloud):
    r = ok(cloud.call('DescribeImageQuota', GZ))
    assert set(r) == {'ImageNumQuota', 'RequestId'}
    assert r['ImageNumQuota'] == 10
    setting(cloud, 'max_custom_images', 3)
    assert cloud.call('DescribeImageQuota', BJ)['ImageNumQuota'] == 3


# --- settling: the server's own clock ------------------------------------

def test_settle_progress(tmp_path):
    with TcServer(str(tmp_path / 'c.db'), settle=10) as server:
        new = create(server, 'slow')
        body = dict(IMPORT, ImageUrl=COS + '/fail.qcow2')
        bad = ok(server.call('ImportImage', GZ, body))['ImageId']

        def seen():
            found = describe(server, ImageIds=[new])['ImageSet'][0]
            return found['ImageState'], found['SyncPercent']

        assert seen() == ('CREATING', 0)
        assert image(server, bad)['state'] == 'IMPORTING'
        time.sleep(0.05)                # real time moves nothing
        assert seen() == ('CREATING', 0)
        server.advance(2.5)
        assert seen() == ('CREATING', 25)
        server.advance(5)
        assert seen() == ('CREATING', 75)
        server.advance(2.5)
        assert seen() == ('NORMAL', None)
        assert image(server, new)['progress'] is None
        row = image(server, bad)
        assert row['state'] == 'IMPORTFAILED'
        assert row['error'] == 'the image file could not be read'
        server.advance(100)             # nothing left to settle
        assert seen() == ('NORMAL', None)


# --- faults and inspection ----------------------------------------------

def test_fail(cloud):
    cloud.fail('RequestLimitExceeded', times=2, action='CreateImage')
    ok(cloud.call('DescribeImageQuota', GZ))
    body = {'InstanceId': 'ins-abcd1234', 'ImageName': 'n'}
    for _ in range(2):
        r = cloud.call('CreateImage', GZ, body)
        assert error(r) == 'RequestLimitExceeded'
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
    cloud.http_error(404, body=b'{"Response": {"RequestId": "x"}}')
    assert cloud.post('DescribeImageQuota', GZ) == (
        404, b'{"Response": {"RequestId": "x"}}')


def test_empty_and_garbage(cloud):
    cloud.empty()
    assert cloud.post('DescribeImageQuota', GZ) == (200, b'')
    cloud.garbage()
    status, body = cloud.post('DescribeImageQuota', GZ)
    assert status == 200 and not body.startswith(b'{')
    ok(cloud.call('DescribeImageQuota', GZ))


def test_lag(tmp_path):
    with TcServer(str(tmp_path / 'c.db'), lag=0.2) as server:
        start = time.monotonic()
        ok(server.call('DescribeImageQuota', GZ))
        assert time.monotonic() - start >= 0.2


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
                             str(tmp_path / 'c.db'), '--settle', '0.5',
                             '--lag', '0.01'],
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
