# SPDX-License-Identifier: GPL-2.0
"""A loopback stand-in for the Tencent Cloud CVM API 3.0 (image actions).

The mounted tests start it so that the daemon's `tencentcloud` backend runs
without network:

    with TcServer(str(tmp_path / 'cloud.db'), settle=0.5) as cloud:
        # imagefs -o backend=tencentcloud,endpoint=<cloud.url> ...
        secret_id, secret_key = test_keys('100000000001')
        cloud.call('DescribeImages', 'ap-guangzhou', {'Limit': 5})
        cloud.fail('RequestLimitExceeded', times=2, action='CreateImage')

State. The cloud's whole state is one SQLite file in the local catalog's
schema (backend/local/schema.sql ...), created and seeded like a new local catalog
when missing, so a test inspects or edits it with sqlite3 exactly as it does
a local catalog (settings, ops, shares ...). Each request opens its own
connection; each mutating request is one BEGIN IMMEDIATE transaction. The
rules are the local backend's (backend/local/rules.c), checked in the same
order, with the daily limit last, so one filesystem operation fails with the
same errno through both backends. Rows in state PENDING, the peers table and
the changes table are the local backend's alone and are ignored here.

Requests. POST / with a JSON body, signed with TC3-HMAC-SHA256 (signed
headers content-type;host) and verified in full. SecretIds made by
test_keys(uin) are accepted for any uin without set-up; add_account() adds
others, optionally with a session token. Answers are HTTP/1.1 keep-alive,
{"Response": {...}} as the real API's.

Actions: DescribeImages, CreateImage, ImportImage, SyncImages,
DeleteImages, ModifyImageAttribute, ModifyImageSharePermission,
DescribeImageSharePermission, DescribeImageQuota. A request with
"DryRun": true that passes every check (the daily limit too) answers the
error DryRunOperation and changes nothing, as the real API does.

Time. With settle > 0 s, a new image starts in CREATING, SYNCING or
IMPORTING and reaches NORMAL (IMPORTFAILED for an import whose file name
holds "fail", e.g. http://host/fail.qcow2) settle seconds later, its
SyncPercent rising meanwhile; the catalog is brought up to date at each
request (or by advance()). With settle 0 new images are final at once.

Faults and inspection, for tests: requests, actions(), clear(), fail(),
http_error(), delay(), drop(). As a client: call(), post() (methods, or
module functions given a host and port) and signed_request().

The server runs in the test's own process, on threads. Python 3.11 keeps
the GIL while a vfork()ed child has not exec'ed yet, so a child started
with cwd= inside the mount would deadlock with this server: start() turns
subprocess's use of vfork off.

Standalone:

    /usr/bin/python3 tests/tcserver.py --db PATH [--port N] [--settle S]
"""

import argparse
import contextlib
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
import uuid

VERSION = '2017-03-12'          # X-TC-Version of the CVM API
SERVICE = 'cvm'
ALGORITHM = 'TC3-HMAC-SHA256'
SIGNED_HEADERS = 'content-type;host'
CONTENT_TYPE = 'application/json; charset=utf-8'
MAX_SKEW = 300                  # s a request's timestamp may be off
BUSY_TIMEOUT = 10.0             # s a request waits for the catalog's lock
BACKEND_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           '..', 'backend', 'local')
# The migrations, as backend/local/local.c runs them: schema-N.sql by N,
# each bringing the catalog one version up from version 1 (schema.sql).
MIGRATIONS = sorted((f for f in os.listdir(BACKEND_DIR)
                     if re.fullmatch(r'schema-\d+\.sql', f)),
                    key=lambda f: int(f[7:-4]))
SCHEMA_VERSION = 1 + len(MIGRATIONS)

DEFAULT_UIN = '100000000001'    # the demo account of the seed
TEST_ID_PREFIX = 'AKIDimagefsTEST'
TEST_KEY_PREFIX = 'imagefs-test-key-'

NAME_MAX_CHARS = 60
MAX_LIMIT = 100                 # DescribeImages' largest page
IMPORT_ERROR = 'the image file could not be read'
ID_ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz'
ARCHES = ('x86_64', 'i386', 'arm64')
URL_SCHEMES = ('http://', 'https://', 'file://')
RUNNING_STATES = ('CREATING', 'SYNCING', 'IMPORTING')

INSTANCE_RE = re.compile(r'ins-[a-z0-9]{8}\Z')
DIGITS_RE = re.compile(r'[0-9]+\Z')
AUTH_RE = re.compile(
    ALGORITHM + r' Credential=([^/,\s]+)/([0-9-]+)/([a-z]+)/tc3_request,'
    r'\s*SignedHeaders=([a-z;-]+),\s*Signature=([0-9a-f]{64})\Z')

# ImageType of a row: kind, and for custom images whose they are.
IMAGE_TYPES = ('PUBLIC_IMAGE', 'MARKET_IMAGE', 'PRIVATE_IMAGE',
               'SHARED_IMAGE')
KIND_SOURCE = {'public': 'OFFICIAL', 'market': 'MARKETPLACE'}
CUSTOM_SOURCE = (('instance:', 'CREATE_IMAGE'), ('import:', 'EXTERNAL_IMPORT'),
                 ('copy:', 'SYNC_IMAGE'))
FILTER_COLUMNS = {'image-type': 'image_type', 'image-name': 'name',
                  'image-id': 'id'}
# The attributes a copy takes from its source.
COPIED = ('os_name', 'os_type', 'platform', 'arch', 'bits', 'size_gb',
          'description', 'price')

# The images of :region that :uin may see, with their ImageType.
VISIBLE_SQL = """
SELECT i.*, CASE WHEN i.kind = 'public' THEN 'PUBLIC_IMAGE'
                 WHEN i.kind = 'market' THEN 'MARKET_IMAGE'
                 WHEN i.owner = :uin THEN 'PRIVATE_IMAGE'
                 ELSE 'SHARED_IMAGE' END AS image_type
FROM images i
WHERE i.region = :region AND i.state <> 'PENDING'
  AND (i.kind <> 'custom' OR i.owner = :uin
       OR EXISTS (SELECT 1 FROM shares s
                  WHERE s.image = i.row AND s.account = :uin))
"""

# An image of a region by id, with what the rules need to know of it.
OWN_SQL = """
SELECT i.*, i.kind = 'custom' AND i.owner = ? AS mine,
       (SELECT count(*) FROM shares WHERE image = i.row) AS shares,
       (SELECT count(*) FROM images c
        WHERE c.source = 'copy:' || i.id || '@' || i.region
          AND c.state NOT IN ('NORMAL', 'IMPORTFAILED', 'PENDING'))
       AS copies
FROM images i WHERE i.id = ? AND i.region = ? AND i.state <> 'PENDING'
"""

# The attributes of an image created from an instance (local's Q_DEFAULTS).
DEFAULTS_SQL = """
SELECT os_name, os_type, platform, arch, bits, size_gb FROM images
WHERE region = ? AND kind = 'public' AND platform = 'TencentOS'
  AND arch = 'x86_64' AND state <> 'PENDING'
ORDER BY created DESC LIMIT 1
"""

CHARGE_SQL = """
INSERT INTO ops (account, region, day, count) VALUES (?, ?, ?, 1)
ON CONFLICT (account, region, day) DO UPDATE SET count = count + 1
"""


class ApiError(Exception):
    """An error answer of the API: code and message."""

    def __init__(self, code, message=None):
        super().__init__('%s: %s' % (code, message or code))
        self.code = code
        self.message = message or code


class TcHttpError(Exception):
    """call(): an answer that is not HTTP 200 with a JSON body."""

    def __init__(self, status, body):
        super().__init__('HTTP %d: %r' % (status, body[:200]))
        self.status = status
        self.body = body


# --- signing -----------------------------------------------------------

def test_keys(uin):
    """The (SecretId, SecretKey) every TcServer accepts for account uin."""
    return TEST_ID_PREFIX + str(uin), TEST_KEY_PREFIX + str(uin)


test_keys.__test__ = False      # not a test, for pytest's collection


def _sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def _hmac(key, msg):
    return hmac.new(key, msg.encode('utf-8'), hashlib.sha256).digest()


def _utc_date(timestamp):
    return time.strftime('%Y-%m-%d', time.gmtime(int(timestamp)))


def _header_value(value):
    """A header value as the canonical request has it."""
    return (value or '').strip().lower()


def canonical_hash(host, content_type, body):
    """Hex SHA-256 of the canonical request of a POST / of body (bytes)."""
    canonical = 'POST\n/\n\ncontent-type:%s\nhost:%s\n\n%s\n%s' % (
        _header_value(content_type), _header_value(host), SIGNED_HEADERS,
        _sha256_hex(body))
    return _sha256_hex(canonical.encode('utf-8'))


def signature(secret_key, timestamp, service, request_hash):
    """The hex signature of a request whose canonical hash is request_hash."""
    date = _utc_date(timestamp)
    to_sign = '%s\n%d\n%s/%s/tc3_request\n%s' % (
        ALGORITHM, int(timestamp), date, service, request_hash)
    key = _hmac(('TC3' + secret_key).encode('utf-8'), date)
    key = _hmac(key, service)
    key = _hmac(key, 'tc3_request')
    return hmac.new(key, to_sign.encode('utf-8'),
                    hashlib.sha256).hexdigest()


def sign(secret_id, secret_key, host, content_type, body, timestamp,
         service=SERVICE):
    """(Authorization header, canonical request hash) of a POST / of body."""
    if isinstance(body, str):
        body = body.encode('utf-8')
    request_hash = canonical_hash(host, content_type, body)
    auth = '%s Credential=%s/%s/%s/tc3_request, SignedHeaders=%s, ' \
        'Signature=%s' % (ALGORITHM, secret_id, _utc_date(timestamp),
                          service, SIGNED_HEADERS,
                          signature(secret_key, timestamp, service,
                                    request_hash))
    return auth, request_hash


# --- the catalog -------------------------------------------------------

def _statements(sql):
    """The statements of an SQL script, one at a time."""
    start = 0
    for i, ch in enumerate(sql):
        if ch == ';' and sqlite3.complete_statement(sql[start:i + 1]):
            yield sql[start:i + 1]
            start = i + 1
    if sql[start:].strip():
        yield sql[start:]


def _run_script(conn, name):
    with open(os.path.join(BACKEND_DIR, name), encoding='utf-8') as f:
        for statement in _statements(f.read()):
            conn.execute(statement)


def _user_version(conn):
    return conn.execute('PRAGMA user_version').fetchone()[0]


def init_catalog(path, upto=SCHEMA_VERSION):
    """Create the catalog at path, or bring it to version upto, like
    local.c (foreign keys off while it migrates)."""
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)
    try:
        conn.execute('PRAGMA journal_mode = WAL')
        if _user_version(conn) == upto:
            return
        conn.execute('BEGIN IMMEDIATE')
        try:
            version = _user_version(conn)
            if version == 0:
                for name in ('schema.sql', 'regions.sql', 'seed.sql'):
                    _run_script(conn, name)
                version = 1
            if not 1 <= version <= upto:
                raise RuntimeError('%s: catalog version %d is newer than '
                                   '%d' % (path, version, upto))
            for name in MIGRATIONS[version - 1:upto - 1]:
                _run_script(conn, name)
            conn.execute('PRAGMA user_version = %d' % upto)
            conn.execute('COMMIT')
        except BaseException:
            conn.execute('ROLLBACK')
            raise
    finally:
        conn.close()


def connect(path):
    """A connection to the catalog as each request opens one."""
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None,
                           check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute('PRAGMA foreign_keys = ON')
    return conn


@contextlib.contextmanager
def transaction(path, begin='BEGIN IMMEDIATE'):
    """A connection to the catalog in one transaction: committed when the
    block ends, rolled back when it raises."""
    conn = connect(path)
    try:
        conn.execute(begin)
        try:
            yield conn
            conn.execute('COMMIT')
        except BaseException:
            conn.execute('ROLLBACK')
            raise
    finally:
        conn.close()


def today():
    """The day operations are charged to: YYYY-MM-DD in UTC+08:00."""
    return time.strftime('%Y-%m-%d', time.gmtime(time.time() + 8 * 3600))


def iso_time(seconds):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(seconds or 0))


def redact_url(url):
    """url without user:password@, as local_import.c's url_redact."""
    scheme_end = url.find('://')
    if scheme_end < 0:
        return url
    auth = scheme_end + 3
    end = auth + len(re.match(r'[^/?#]*', url[auth:]).group(0))
    at = url.find('@', auth, end)
    return url if at < 0 else url[:auth] + url[at + 1:]


def import_os_name(os_type, os_version):
    """OsName of an imported image: OsType and OsVersion ('CentOS', '7'),
    or OsVersion alone when it already names the OS in full (the daemon
    sends the info's OS_NAME there), or none for the version '-'."""
    if os_version.strip() in ('', '-'):
        return None
    if os_version.lower().startswith(os_type.lower()):
        return os_version
    return '%s %s' % (os_type, os_version)


def import_fails(url):
    """Whether an import of url ends in IMPORTFAILED: its file name (not
    its host, directories or query) holds 'fail'."""
    path = re.split(r'[?#]', url.split('://', 1)[-1], maxsplit=1)[0]
    return 'fail' in path.rsplit('/', 1)[-1]


def url_ok(url):
    """As local_import.c's url_check: a known scheme, no white space."""
    if re.search(r'[ \t\r\n]', url):
        return False
    return any(url.lower().startswith(s) and len(url) > len(s)
               for s in URL_SCHEMES)


def image_source(row):
    """ImageSource of an image row: its kind, or how a custom one came."""
    if row['kind'] != 'custom':
        return KIND_SOURCE[row['kind']]
    for prefix, name in CUSTOM_SOURCE:
        if (row['source'] or '').startswith(prefix):
            return name
    return 'CREATE_IMAGE'


# --- request parameters ------------------------------------------------

def _string(key, value):
    if not isinstance(value, str):
        raise ApiError('InvalidParameter', '%s must be a string' % key)
    return value


def _name(key, value):
    _string(key, value)
    if not value.strip(' ') or any(ord(c) < 32 or ord(c) == 127
                                   for c in value):
        raise ApiError('InvalidParameterValue',
                       '%s is empty or holds control characters' % key)
    return value


def _strings(key, value):
    if not isinstance(value, list) or \
            not all(isinstance(v, str) for v in value):
        raise ApiError('InvalidParameter', '%s must be a list of strings'
                       % key)
    return value


def _count(key, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ApiError('InvalidParameterValue',
                       '%s must be a non-negative integer' % key)
    return value


def _flag(key, value):
    if not isinstance(value, bool):
        raise ApiError('InvalidParameter', '%s must be a boolean' % key)
    return value


def _filters(key, value):
    if not isinstance(value, list):
        raise ApiError('InvalidParameter', '%s must be a list' % key)
    for f in value:
        if not isinstance(f, dict) or set(f) != {'Name', 'Values'}:
            raise ApiError('InvalidParameter',
                           'a filter has exactly Name and Values')
        _string('Filters.Name', f['Name'])
        _strings('Filters.Values', f['Values'])
        if f['Name'] not in FILTER_COLUMNS:
            raise ApiError('InvalidFilter', 'unknown filter %s' % f['Name'])
        if f['Name'] == 'image-type' and \
                not set(f['Values']) <= set(IMAGE_TYPES):
            raise ApiError('InvalidParameterValue', 'unknown image-type')
    return value


def optional(body, key, check, default=None):
    """body[key] checked by check, default when absent."""
    if key not in body:
        return default
    return check(key, body[key])


def required(body, key, check):
    """body[key] checked by check: MissingParameter when absent."""
    if key not in body:
        raise ApiError('MissingParameter', 'the request lacks %s' % key)
    return check(key, body[key])


def first(body, key):
    """The first string of the list body[key] (the one used)."""
    values = required(body, key, _strings)
    if not values:
        raise ApiError('MissingParameter', '%s is empty' % key)
    return values[0]


# --- the image service -------------------------------------------------

class Cloud:
    """The rules of the image service, over one transaction of the catalog,
    for one request of account uin in region."""

    def __init__(self, conn, uin, region, body, settling):
        self.conn = conn
        self.uin = uin
        self.region = region
        self.body = body
        self.settling = settling
        self.started = []       # (row, final state, error) of new images

    # --- catalog helpers ---

    def _value(self, sql, *args, default=None):
        row = self.conn.execute(sql, args).fetchone()
        return default if row is None or row[0] is None else row[0]

    def setting(self, key, default):
        return self._value('SELECT value FROM settings WHERE key = ?', key,
                           default=default)

    def region_copy(self, region):
        """regions.copy of region; None when there is no such region."""
        return self._value('SELECT copy FROM regions WHERE name = ?', region)

    def check_region(self, region):
        if self.region_copy(region) is None:
            raise ApiError('InvalidParameterValue.Region',
                           'no region %r' % region)

    def image(self, image_id):
        """An image of the request region, for a change of it."""
        row = self.conn.execute(OWN_SQL, (self.uin, image_id,
                                          self.region)).fetchone()
        if row is None:
            raise ApiError('InvalidImageId.NotFound',
                           'no image %s in %s' % (image_id, self.region))
        return row

    def my_image(self, image_id):
        """The caller's own custom image image_id of the request region."""
        row = self.image(image_id)
        if not row['mine']:
            raise ApiError('UnauthorizedOperation.ImageNotBelongToAccount',
                           '%s is not your custom image' % image_id)
        return row

    def check_slot(self, region, name):
        """A new custom image called name may go in region: the quota,
        then the name, in local's order."""
        count = self._value(
            "SELECT count(*) FROM images WHERE region = ? AND "
            "kind = 'custom' AND owner = ? AND state <> 'PENDING'",
            region, self.uin)
        if count >= self.setting('max_custom_images', 10):
            raise ApiError('ImageQuotaLimitExceeded',
                           'custom image quota of %s reached' % region)
        self.check_name(region, name)

    def check_name(self, region, name, row=0):
        """name is free among my other images of region, and short."""
        taken = self._value(
            "SELECT 1 FROM images WHERE region = ? AND kind = 'custom' AND "
            "owner = ? AND name = ? AND row <> ? AND state <> 'PENDING'",
            region, self.uin, name, row)
        if taken:
            raise ApiError('InvalidImageName.Duplicate',
                           'you already have an image called %r' % name)
        if len(name) > NAME_MAX_CHARS:
            raise ApiError('InvalidParameterValue.TooLong',
                           'an image name has at most %d characters'
                           % NAME_MAX_CHARS)

    def charge(self):
        """Charge one operation to the request region: the daily limit."""
        day = today()
        done = self._value('SELECT count FROM ops WHERE account = ? AND '
                           'region = ? AND day = ?', self.uin, self.region,
                           day, default=0)
        if done >= self.setting('max_daily_ops', 5):
            raise ApiError('LimitExceeded.ImageOperation',
                           'daily image operations of %s used up'
                           % self.region)
        self.conn.execute(CHARGE_SQL, (self.uin, self.region, day))
        if optional(self.body, 'DryRun', _flag, False):
            raise ApiError('DryRunOperation', 'the request would succeed')

    def _new_id(self):
        while True:
            image_id = 'img-' + ''.join(secrets.choice(ID_ALPHABET)
                                        for _ in range(8))
            if not self._value('SELECT 1 FROM images WHERE id = ?',
                               image_id):
                return image_id

    def create(self, region, name, attrs, source, running, final='NORMAL',
               error=None):
        """Insert my new custom image; its id. With settling it starts in
        state running and reaches final (with error) later."""
        now = int(time.time())
        cols = dict(attrs, id=self._new_id(), region=region, kind='custom',
                    owner=self.uin, name=name, created=now, mtime=now,
                    source=source, state=final, progress=None, error=error)
        if self.settling:
            cols.update(state=running, progress=0, error=None)
        keys = sorted(cols)
        cur = self.conn.execute(
            'INSERT INTO images (%s) VALUES (%s)'
            % (', '.join(keys), ', '.join('?' * len(keys))),
            [cols[k] for k in keys])
        if self.settling:
            self.started.append((cur.lastrowid, final, error))
        return cols['id']

    def image_json(self, row):
        custom = row['kind'] == 'custom'
        return {
            'ImageId': row['id'],
            'ImageName': row['name'],
            'ImageType': row['image_type'],
            'ImageState': row['state'],
            'OsName': row['os_name'] or '',
            'Platform': row['platform'] or '',
            'Architecture': row['arch'] or '',
            'ImageSize': row['size_gb'] or 0,
            'CreatedTime': iso_time(row['created']),
            'ImageDescription': row['description'] or '',
            'ImageCreator': row['owner'] if custom else '',
            'ImageSource': image_source(row),
            'SyncPercent': row['progress'] or 0,
            'IsSupportCloudinit': True,
            'LicenseType': 'TencentCloud',
        }

    # --- the actions ---

    def describe_images(self):
        ids = optional(self.body, 'ImageIds', _strings)
        filters = optional(self.body, 'Filters', _filters)
        offset = optional(self.body, 'Offset', _count, 0)
        limit = optional(self.body, 'Limit', _count, 20)
        if ids is not None and filters is not None:
            raise ApiError('InvalidParameter',
                           'ImageIds and Filters exclude each other')
        if limit > MAX_LIMIT:
            raise ApiError('InvalidParameterValue.LimitExceeded',
                           'Limit is at most %d' % MAX_LIMIT)
        if ids is not None:
            filters = [{'Name': 'image-id', 'Values': ids}]
        where, args = ['1'], {'uin': self.uin, 'region': self.region}
        for n, f in enumerate(filters or ()):
            keys = ['f%d_%d' % (n, m) for m in range(len(f['Values']))]
            args.update(zip(keys, f['Values']))
            where.append('%s IN (%s)' % (FILTER_COLUMNS[f['Name']], ', '.join(
                ':' + k for k in keys) or 'NULL'))
        query = 'FROM (%s) WHERE %s' % (VISIBLE_SQL, ' AND '.join(where))
        total = self.conn.execute('SELECT count(*) ' + query,
                                  args).fetchone()[0]
        rows = self.conn.execute('SELECT * %s ORDER BY row LIMIT :limit '
                                 'OFFSET :offset' % query,
                                 dict(args, limit=limit, offset=offset))
        return {'TotalCount': total,
                'ImageSet': [self.image_json(r) for r in rows]}

    def create_image(self):
        instance = required(self.body, 'InstanceId', _string)
        name = required(self.body, 'ImageName', _name)
        description = optional(self.body, 'ImageDescription', _string)
        if not INSTANCE_RE.match(instance):
            raise ApiError('InvalidInstanceId.Malformed',
                           'malformed instance id %r' % instance)
        if instance.endswith('00000000'):
            raise ApiError('InvalidInstanceId.NotFound',
                           'no instance %s' % instance)
        self.check_slot(self.region, name)
        self.charge()
        row = self.conn.execute(DEFAULTS_SQL, (self.region,)).fetchone()
        attrs = dict(row) if row else {}
        attrs['description'] = description or None
        return {'ImageId': self.create(self.region, name, attrs,
                                       'instance:' + instance, 'CREATING')}

    def import_image(self):
        arch = required(self.body, 'Architecture', _string)
        os_type = required(self.body, 'OsType', _string)
        os_version = required(self.body, 'OsVersion', _string)
        url = required(self.body, 'ImageUrl', _string)
        name = required(self.body, 'ImageName', _name)
        description = optional(self.body, 'ImageDescription', _string)
        if arch not in ARCHES:
            raise ApiError('InvalidParameterValue',
                           'Architecture is one of %s' % ', '.join(ARCHES))
        if not url_ok(url):
            raise ApiError('InvalidParameterValue',
                           'ImageUrl must be an http, https or file URL')
        self.check_slot(self.region, name)
        self.charge()
        windows = os_type.lower().startswith('windows')
        attrs = {'os_name': import_os_name(os_type, os_version),
                 'os_type': 'windows' if windows else 'linux',
                 'platform': os_type, 'arch': arch,
                 'bits': 32 if arch == 'i386' else 64,
                 'description': description or None}
        failed = import_fails(url)
        self.create(self.region, name, attrs, 'import:' + redact_url(url),
                     'IMPORTING', 'IMPORTFAILED' if failed else 'NORMAL',
                     IMPORT_ERROR if failed else None)
        return {}

    def sync_images(self):
        image_id = first(self.body, 'ImageIds')
        dest = first(self.body, 'DestinationRegions')
        name = optional(self.body, 'ImageName', _name)
        self.check_region(dest)
        src = self.my_image(image_id)
        if src['state'] != 'NORMAL':
            raise ApiError('InvalidImageId.IncorrectState',
                           '%s is %s' % (image_id, src['state']))
        if not self.region_copy(self.region) or not self.region_copy(dest):
            raise ApiError('InvalidRegion.Unavailable',
                           'no image duplication between %s and %s'
                           % (self.region, dest))
        name = name or src['name']
        self.check_slot(dest, name)
        self.charge()
        attrs = {k: src[k] for k in COPIED}
        new_id = self.create(dest, name, attrs,
                             'copy:%s@%s' % (image_id, self.region),
                             'SYNCING')
        return {'ImageSet': [{'ImageId': new_id, 'Region': dest}]}

    def delete_images(self):
        image_id = first(self.body, 'ImageIds')
        img = self.my_image(image_id)
        if img['shares']:
            raise ApiError('InvalidImageId.InShared',
                           '%s is shared' % image_id)
        if img['copies'] or img['state'] not in ('NORMAL', 'IMPORTFAILED'):
            raise ApiError('InvalidImageId.IncorrectState',
                           '%s is %s or being copied'
                           % (image_id, img['state']))
        self.charge()
        self.conn.execute('DELETE FROM shares WHERE image = ?', (img['row'],))
        self.conn.execute('DELETE FROM images WHERE row = ?', (img['row'],))
        return {}

    def modify_image_attribute(self):
        image_id = required(self.body, 'ImageId', _string)
        name = optional(self.body, 'ImageName', _name)
        description = optional(self.body, 'ImageDescription', _string)
        if name is None and description is None:
            raise ApiError('MissingParameter',
                           'ImageName or ImageDescription is needed')
        img = self.my_image(image_id)
        changes = {'mtime': int(time.time())}
        if name is not None:
            self.check_name(self.region, name, img['row'])
            changes['name'] = name
        if description is not None:
            changes['description'] = description or None
        self.charge()
        keys = sorted(changes)
        self.conn.execute(
            'UPDATE images SET %s WHERE row = ?'
            % ', '.join('%s = ?' % k for k in keys),
            [changes[k] for k in keys] + [img['row']])
        return {}

    def _shared_with(self, row, account):
        return self._value('SELECT 1 FROM shares WHERE image = ? AND '
                           'account = ?', row, account)

    def _share(self, image_id, account):
        if account == self.uin:
            raise ApiError('InvalidAccountIs.YourSelf',
                           'an image is not shared with its owner')
        img = self.my_image(image_id)
        if img['state'] != 'NORMAL':
            raise ApiError('InvalidImageId.IncorrectState',
                           '%s is %s' % (image_id, img['state']))
        if self._shared_with(img['row'], account):
            raise ApiError('InvalidImageId.IsShared',
                           '%s is already shared with %s'
                           % (image_id, account))
        if img['shares'] >= self.setting('max_share_accounts', 50):
            raise ApiError('OverQuota', '%s is shared with too many accounts'
                           % image_id)
        self.charge()
        self.conn.execute('INSERT INTO shares (image, account) VALUES (?, ?)',
                          (img['row'], account))

    def _unshare(self, image_id, account):
        img = self.my_image(image_id)
        if not self._shared_with(img['row'], account):
            raise ApiError('InvalidAccountId.NotFound',
                           '%s is not shared with %s' % (image_id, account))
        self.charge()
        self.conn.execute('DELETE FROM shares WHERE image = ? AND '
                          'account = ?', (img['row'], account))

    def modify_image_share_permission(self):
        image_id = required(self.body, 'ImageId', _string)
        account = first(self.body, 'AccountIds')
        permission = required(self.body, 'Permission', _string)
        if permission not in ('SHARE', 'CANCEL'):
            raise ApiError('InvalidParameterValue',
                           'Permission is SHARE or CANCEL')
        if not DIGITS_RE.match(account):
            raise ApiError('InvalidAccountId.NotFound',
                           'no account %r' % account)
        if permission == 'SHARE':
            self._share(image_id, account)
        else:
            self._unshare(image_id, account)
        return {}

    def describe_image_share_permission(self):
        img = self.my_image(required(self.body, 'ImageId', _string))
        rows = self.conn.execute('SELECT account FROM shares WHERE image = ? '
                                 'ORDER BY account', (img['row'],))
        created = iso_time(img['mtime'])
        return {'SharePermissionSet': [
            {'AccountId': r['account'], 'CreatedTime': created}
            for r in rows]}

    def describe_image_quota(self):
        return {'ImageNumQuota': self.setting('max_custom_images', 10)}


# Action -> (method of Cloud, whether it changes the catalog).
ACTIONS = {
    'DescribeImages': (Cloud.describe_images, False),
    'CreateImage': (Cloud.create_image, True),
    'ImportImage': (Cloud.import_image, True),
    'SyncImages': (Cloud.sync_images, True),
    'DeleteImages': (Cloud.delete_images, True),
    'ModifyImageAttribute': (Cloud.modify_image_attribute, True),
    'ModifyImageSharePermission': (Cloud.modify_image_share_permission,
                                   True),
    'DescribeImageSharePermission': (Cloud.describe_image_share_permission,
                                     False),
    'DescribeImageQuota': (Cloud.describe_image_quota, False),
}


# --- HTTP --------------------------------------------------------------

def _json_bytes(response):
    return json.dumps({'Response': response},
                      ensure_ascii=False).encode('utf-8')


def error_body(code, message):
    return _json_bytes({'Error': {'Code': code, 'Message': message},
                        'RequestId': str(uuid.uuid4())})


def _parse_json(body):
    """The request's JSON object, or None when it is not one."""
    try:
        value = json.loads(body.decode('utf-8'))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'imagefs-tcserver/1'

    def setup(self):
        super().setup()
        self.server.owner._opened(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.owner._closed(self.connection)

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        owner = self.server.owner
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        action = headers.get('x-tc-action', '')
        owner._record(action, headers, body)
        fault = owner._take_fault(action)
        if fault and self._inject(fault):
            return
        if self.path != '/':
            self._send(404, b'no such path\n', 'text/plain')
            return
        self._send(200, owner._answer(action, headers, body),
                   'application/json')

    def _inject(self, fault):
        """Play fault; True when that was the whole answer."""
        kind = fault['kind']
        if kind == 'delay':
            stopped = self.server.owner._stopping.wait(fault['seconds'])
            if not stopped:
                return False
            kind = 'drop'               # the server stopped meanwhile
        if kind == 'fail':
            self._send(200, error_body(fault['code'], fault['message']),
                       'application/json')
        elif kind == 'http':
            self._send(fault['status'], b'imagefs tcserver: injected HTTP '
                       b'%d\n' % fault['status'], 'text/plain')
        else:                           # drop: no answer at all
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return True

    def _send(self, status, data, content_type):
        self.send_response(status)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 64     # a daemon's threads connect at once

    def __init__(self, owner, address):
        self.owner = owner
        super().__init__(address, _Handler)

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class TcServer:
    """The stand-in cloud over the catalog file db_path (see the module's
    docstring). accounts: SecretId -> dict(key=, uin=, token=None)."""

    def __init__(self, db_path, accounts=None, settle=0.0, host='127.0.0.1',
                 port=0):
        self.db_path = db_path
        self.settle = settle
        self.host = host
        self.requests = []
        self._port = port
        self._accounts = {}
        self._faults = []
        self._running = {}      # image row -> (start, final state, error)
        self._clients = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = None
        self._thread = None
        for secret_id, a in (accounts or {}).items():
            self.add_account(secret_id, a['key'], a['uin'], a.get('token'))
        init_catalog(db_path)

    # --- life ---

    def start(self):
        """Serve, on the port of the last start if any (same url)."""
        # Python 3.11 holds the GIL while a vfork()ed child runs: a child
        # started with cwd= in the mount would wait for the daemon, which
        # waits for this server, which waits for the GIL. fork() it is, as
        # the subprocess documentation allows.
        subprocess._USE_VFORK = False
        self._stopping.clear()
        self._httpd = _Server(self, (self.host, self._port))
        self._port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={'poll_interval': 0.05},
            name='tcserver', daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stop serving; open keep-alive connections are cut."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            clients = list(self._clients)
        for sock in clients:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        """The port served; 0 when not serving."""
        return self._port if self._httpd else 0

    @property
    def url(self):
        return 'http://%s:%d' % (self.host, self._port)

    def _opened(self, sock):
        with self._lock:
            self._clients.add(sock)

    def _closed(self, sock):
        with self._lock:
            self._clients.discard(sock)

    # --- accounts ---

    def add_account(self, secret_id, key, uin, token=None):
        with self._lock:
            self._accounts[secret_id] = {'key': key, 'uin': str(uin),
                                         'token': token}

    def account(self, secret_id):
        """The account of secret_id (dict key, uin, token), or None."""
        with self._lock:
            a = self._accounts.get(secret_id)
        if a is not None:
            return a
        uin = secret_id[len(TEST_ID_PREFIX):]
        if secret_id.startswith(TEST_ID_PREFIX) and DIGITS_RE.match(uin):
            return {'key': test_keys(uin)[1], 'uin': uin, 'token': None}
        return None

    def _authenticate(self, headers, body):
        """The caller's uin, once the request's signature holds."""
        m = AUTH_RE.match(headers.get('authorization', ''))
        if not m:
            raise ApiError('AuthFailure.SignatureFailure',
                           'malformed Authorization header')
        secret_id, date, service, signed, sig = m.groups()
        account = self.account(secret_id)
        if account is None:
            raise ApiError('AuthFailure.SecretIdNotFound',
                           'unknown SecretId %s' % secret_id)
        stamp = headers.get('x-tc-timestamp', '')
        if not DIGITS_RE.match(stamp):
            raise ApiError('AuthFailure.SignatureFailure',
                           'bad X-TC-Timestamp')
        if abs(time.time() - int(stamp)) > MAX_SKEW:
            raise ApiError('AuthFailure.SignatureExpire',
                           'X-TC-Timestamp is too far from now')
        want = signature(account['key'], stamp, service, canonical_hash(
            headers.get('host'), headers.get('content-type'), body))
        if date != _utc_date(stamp) or service != SERVICE or \
                signed != SIGNED_HEADERS or \
                not hmac.compare_digest(sig, want):
            raise ApiError('AuthFailure.SignatureFailure',
                           'the signature does not match')
        if account['token'] is not None and \
                headers.get('x-tc-token') != account['token']:
            raise ApiError('AuthFailure.TokenFailure', 'bad X-TC-Token')
        return account['uin']

    # --- answering ---

    def _answer(self, action, headers, body):
        """The JSON answer to one request, error or not."""
        try:
            uin = self._authenticate(headers, body)
            if headers.get('x-tc-version') != VERSION:
                raise ApiError('InvalidParameterValue',
                               'X-TC-Version must be %s' % VERSION)
            if action not in ACTIONS:
                raise ApiError('InvalidAction', 'no action %r' % action)
            params = _parse_json(body)
            if params is None:
                raise ApiError('InvalidParameter',
                               'the body is not a JSON object')
            response = self._run(action, headers.get('x-tc-region', ''),
                                 params, uin)
        except ApiError as e:
            return error_body(e.code, e.message)
        except Exception as e:          # a bug here, or the catalog's
            traceback.print_exc()
            return error_body('InternalError', str(e))
        response['RequestId'] = str(uuid.uuid4())
        return _json_bytes(response)

    def _run(self, action, region, params, uin):
        """Run action in one transaction of the catalog."""
        method, writes = ACTIONS[action]
        self.advance()
        with transaction(self.db_path,
                         'BEGIN IMMEDIATE' if writes else 'BEGIN') as conn:
            cloud = Cloud(conn, uin, region, params, self.settle > 0)
            cloud.check_region(region)
            response = method(cloud)
        now = time.time()
        with self._lock:
            for row, final, error in cloud.started:
                self._running[row] = (now, final, error)
        return response

    def advance(self):
        """Bring the images that settle up to date with the clock."""
        with self._lock:
            running = dict(self._running)
        if not running:
            return
        now, settle, done = time.time(), self.settle, []
        marks = ', '.join('?' * len(RUNNING_STATES))
        with transaction(self.db_path) as conn:
            for row, (start, final, error) in running.items():
                elapsed = now - start
                if elapsed >= settle:
                    conn.execute(
                        'UPDATE images SET state = ?, progress = NULL, '
                        'error = ?, mtime = ? WHERE row = ? AND state IN '
                        '(%s)' % marks,
                        (final, error, int(now), row) + RUNNING_STATES)
                    done.append(row)
                    continue
                cur = conn.execute(
                    'UPDATE images SET progress = ? WHERE row = ? AND '
                    'state IN (%s)' % marks,
                    (min(99, int(elapsed * 100 / settle)), row)
                    + RUNNING_STATES)
                if not cur.rowcount:    # gone, or changed by a test
                    done.append(row)
        with self._lock:
            for row in done:
                self._running.pop(row, None)

    # --- inspection and faults ---

    def _record(self, action, headers, body):
        m = AUTH_RE.match(headers.get('authorization', ''))
        account = self.account(m.group(1)) if m else None
        with self._lock:
            self.requests.append({
                'action': action, 'region': headers.get('x-tc-region'),
                'body': _parse_json(body), 'headers': headers,
                'uin': account['uin'] if account else None})

    def clear(self):
        """Forget the requests received so far."""
        with self._lock:
            del self.requests[:]

    def actions(self):
        """The actions of the requests received, in order."""
        with self._lock:
            return [r['action'] for r in self.requests]

    def _add_fault(self, kind, times, action, **args):
        with self._lock:
            self._faults.append(dict(args, kind=kind, times=times,
                                     action=action))

    def _take_fault(self, action):
        """The first fault armed for action, used once; or None."""
        with self._lock:
            for fault in self._faults:
                if fault['action'] in (None, action):
                    fault['times'] -= 1
                    if fault['times'] <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def fail(self, code, times=1, action=None,
             message='injected by imagefs tcserver'):
        """The next times requests (of action) answer the error code."""
        self._add_fault('fail', times, action, code=code, message=message)

    def http_error(self, status=500, times=1, action=None):
        """The next times requests (of action) answer HTTP status."""
        self._add_fault('http', times, action, status=status)

    def delay(self, seconds, times=1, action=None):
        """The next times requests (of action) wait seconds, then answer."""
        self._add_fault('delay', times, action, seconds=seconds)

    def drop(self, times=1, action=None):
        """The next times requests (of action) get no answer: the
        connection is closed."""
        self._add_fault('drop', times, action)

    # --- a client, for tests ---

    def post(self, action, region, body=None, **kwargs):
        """post() to this server: (HTTP status, body bytes)."""
        return post(self.host, self._port, action, region, body, **kwargs)

    def call(self, action, region, body=None, **kwargs):
        """call() of this server: the parsed Response object."""
        return call(self.host, self._port, action, region, body, **kwargs)


def signed_request(netloc, action, region, body=None, uin=DEFAULT_UIN,
                   secret=None, token=None, timestamp=None, version=VERSION,
                   headers=None):
    """(body bytes, headers) of one signed request to netloc (host:port).

    body: a dict (sent as JSON) or bytes; secret: (SecretId, SecretKey),
    else test_keys(uin); timestamp: the request's, else now; headers:
    replace those of the signed request."""
    if not isinstance(body, bytes):
        body = json.dumps(body or {}).encode('utf-8')
    secret_id, secret_key = secret or test_keys(uin)
    stamp = int(time.time()) if timestamp is None else timestamp
    auth, _ = sign(secret_id, secret_key, netloc, CONTENT_TYPE, body, stamp)
    sent = {'Content-Type': CONTENT_TYPE, 'Host': netloc,
            'X-TC-Action': action, 'X-TC-Version': version,
            'X-TC-Timestamp': str(stamp), 'X-TC-Region': region,
            'Authorization': auth}
    if token is not None:
        sent['X-TC-Token'] = token
    sent.update(headers or {})
    return body, sent


def post(host, port, action, region, body=None, **kwargs):
    """POST one signed_request() to host:port, on a connection of its own:
    (HTTP status, body bytes)."""
    body, headers = signed_request('%s:%d' % (host, port), action, region,
                                   body, **kwargs)
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request('POST', '/', body, headers)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def call(host, port, action, region, body=None, **kwargs):
    """post() and the parsed Response object (which may hold an Error);
    TcHttpError when the answer is not HTTP 200 with a JSON object."""
    status, data = post(host, port, action, region, body, **kwargs)
    try:
        parsed = json.loads(data.decode('utf-8'))
    except ValueError:
        parsed = None
    if status != 200 or not isinstance(parsed, dict):
        raise TcHttpError(status, data)
    return parsed['Response']


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='A loopback stand-in for the Tencent Cloud CVM API.')
    parser.add_argument('--db', required=True,
                        help='the catalog file (created when missing)')
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=0)
    parser.add_argument('--settle', type=float, default=0.0,
                        help='seconds a new image takes to be NORMAL')
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with TcServer(args.db, settle=args.settle, host=args.host,
                  port=args.port) as server:
        secret_id, secret_key = test_keys('<uin>')
        print('imagefs tcserver: %s' % server.url)
        print('keys of account <uin> (digits): SecretId %s, SecretKey %s'
              % (secret_id, secret_key))
        print('mount: TENCENTCLOUD_SECRET_ID=%s TENCENTCLOUD_SECRET_KEY=%s '
              'imagefs -o backend=tencentcloud,endpoint=%s,account=<uin> '
              '<mountpoint>' % (secret_id, secret_key, server.url))
        sys.stdout.flush()
        while not stop.wait(3600):
            pass
    return 0


if __name__ == '__main__':
    sys.exit(main())
