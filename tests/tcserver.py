# SPDX-License-Identifier: GPL-2.0
"""A loopback stand-in for the Tencent Cloud CVM API 3.0 (image actions).

Built from the API reference (../shared/TENCENT-API.md: the SDKs' generated
models and their errors.go), not from imagefs's own rules: the mounted tests
run the daemon's tencentcloud backend against it, without network.

    with TcServer(str(tmp_path / 'cloud.db'), settle=10) as cloud:
        # imagefs -o backend=tencentcloud,endpoint=<cloud.url> ...
        cloud.call('DescribeImages', 'ap-guangzhou', {'Limit': 5})
        cloud.fail('RequestLimitExceeded', times=2, action='CreateImage')
        cloud.advance(10)               # the images settle

State. The cloud's images, shares and regions are kept in one SQLite file
in the local catalog's schema (backend/local/schema.sql ...), created and
seeded like a new local catalog when missing, so that a test inspects or
edits the cloud with sqlite3 as it does a local catalog. That is only how
the state is stored: the rules are the cloud's. There is no daily limit
(the ops table is never touched); the account's image quota per region is
settings.max_custom_images (what DescribeImageQuota answers, 10 in a new
file); an image is shared with at most share_limit accounts (500); regions
whose regions.copy is 0 refuse SyncImages (InvalidRegion.Unavailable).
Rows in state PENDING and the peers and changes tables are the local
backend's and are ignored.

Requests. POST / with a JSON body, signed with TC3-HMAC-SHA256 (signed
headers content-type;host) and verified in full, the Host header included.
SecretIds made by test_keys(uin) are accepted for any uin without set-up;
add_account() adds others, optionally with a session token. Each action
takes exactly its documented parameters: an unknown one is UnknownParameter,
a wrong type InvalidParameter, an undocumented value InvalidParameterValue;
each refusal is the error code the API documents for that action. Answers
have the real shapes: SyncImages returns an ImageSet only when asked
(ImageSetRequired), ImportImage and CreateImage return the ImageId. The
image-type filter MARKET_IMAGE, undocumented since 2019, is refused unless
TcServer(market=True). A request with "DryRun": true that passes every
check answers DryRunOperation and changes nothing.

Imports: ImageUrl must be a COS object URL
(https://<bucket>-<appid>.cos.<region>.myqcloud.com/<key>); OsType,
OsVersion and Architecture must be in what DescribeImportImageOs lists
(IMPORT_OS); an .iso file needs Force. A file whose name holds "fail" ends
in IMPORTFAILED.

Time. With settle > 0, a new image starts in CREATING, SYNCING or
IMPORTING and reaches its final state after settle seconds of the server's
own clock, which only advance() moves (SyncPercent rising meanwhile); real
time never settles anything. With settle 0 (the default) new images are
final at once.

Faults and inspection, for tests: requests (each with its time, and done:
when it was answered),
actions(), clear(), most_in_flight; fail(), http_error(), empty(),
garbage(), delay(), hold(), drop(), clear_faults(), each for the next
requests of an action, or those a predicate picks; lag (seconds added to
every answer). As a client: call(), post() (methods, or module functions
given a host and port) and signed_request().

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
import urllib.parse
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

NAME_MAX = 60                   # ImageName, characters
DESCRIPTION_MAX = 256           # ImageDescription, characters
SHARE_LIMIT = 500               # accounts an image may be shared with
MAX_LIMIT = 100                 # DescribeImages' largest page
MAX_FILTERS = 10
MAX_FILTER_VALUES = 5
LANGUAGES = ('zh-CN', 'en-US')
ARCHITECTURES = ('x86_64', 'i386', 'arm_64')      # ImportImage's values
IMPORT_ERROR = 'the image file could not be read'
ID_ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz'
RUNNING_STATES = ('CREATING', 'SYNCING', 'IMPORTING')

# DescribeImportImageOs, as the tccli example has it (and a few more).
IMPORT_OS = {
    'ImportImageOsListSupported': {
        'Linux': ['CentOS', 'Ubuntu', 'Debian', 'OpenSUSE', 'SUSE',
                  'CoreOS', 'FreeBSD', 'Other Linux'],
        'Windows': ['Windows Server 2008', 'Windows Server 2012',
                    'Windows Server 2016'],
    },
    'ImportImageOsVersionSet': [
        {'OsName': 'CentOS', 'OsVersions': ['7', '6', '5'],
         'Architecture': ['x86_64', 'i386']},
        {'OsName': 'Ubuntu', 'OsVersions': ['22.04', '20.04', '18.04'],
         'Architecture': ['x86_64', 'arm_64']},
        {'OsName': 'Debian', 'OsVersions': ['12', '11', '10'],
         'Architecture': ['x86_64', 'arm_64']},
        {'OsName': 'OpenSUSE', 'OsVersions': ['15'],
         'Architecture': ['x86_64']},
        {'OsName': 'SUSE', 'OsVersions': ['15', '12'],
         'Architecture': ['x86_64']},
        {'OsName': 'CoreOS', 'OsVersions': ['-'],
         'Architecture': ['x86_64']},
        {'OsName': 'FreeBSD', 'OsVersions': ['13', '12'],
         'Architecture': ['x86_64']},
        {'OsName': 'Other Linux', 'OsVersions': ['-'],
         'Architecture': ['x86_64', 'i386', 'arm_64']},
        {'OsName': 'Windows Server 2008', 'OsVersions': ['-'],
         'Architecture': ['x86_64']},
        {'OsName': 'Windows Server 2012', 'OsVersions': ['-'],
         'Architecture': ['x86_64']},
        {'OsName': 'Windows Server 2016', 'OsVersions': ['-'],
         'Architecture': ['x86_64']},
    ],
}

IMAGE_ID_RE = re.compile(r'img-[0-9a-z]{8}\Z')
INSTANCE_RE = re.compile(r'ins-[0-9a-z]{8}\Z')
DIGITS_RE = re.compile(r'[0-9]+\Z')
COS_HOST_RE = re.compile(r'[a-z0-9][a-z0-9-]*-[0-9]+\.cos\.[a-z0-9-]+\.'
                         r'(myqcloud\.com|tencentcos\.cn)\Z')
AUTH_RE = re.compile(
    ALGORITHM + r' Credential=([^/,\s]+)/([0-9-]+)/([a-z]+)/tc3_request,'
    r'\s*SignedHeaders=([a-z;-]+),\s*Signature=([0-9a-f]{64})\Z')

# The image-type filter's values, and the kinds of catalog rows.
IMAGE_TYPES = ('PUBLIC_IMAGE', 'PRIVATE_IMAGE', 'SHARED_IMAGE')
MARKET_TYPE = 'MARKET_IMAGE'
CUSTOM_SOURCE = (('instance:', 'CREATE_IMAGE'), ('import:', 'EXTERNAL_IMPORT'),
                 ('copy:', 'CREATE_IMAGE'))
FILTER_COLUMNS = {'image-type': 'image_type', 'image-name': 'name',
                  'image-id': 'id', 'platform': 'platform'}
OTHER_FILTERS = ('tag-key', 'tag-value', 'dedicated-cluster-id',
                 'cdc-cache-status')
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

# The attributes of an image created from an instance.
DEFAULTS_SQL = """
SELECT os_name, os_type, platform, arch, bits, size_gb FROM images
WHERE region = ? AND kind = 'public' AND platform = 'TencentOS'
  AND arch = 'x86_64' AND state <> 'PENDING'
ORDER BY created DESC LIMIT 1
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


def iso_time(seconds):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(seconds or 0))


def import_fails(url):
    """Whether an import of url ends in IMPORTFAILED: its file name (not
    its host, directories or query) holds 'fail'."""
    path = urllib.parse.urlsplit(url).path
    return 'fail' in path.rsplit('/', 1)[-1]


def image_source(row):
    """ImageSource of an image row: OFFICIAL, or how a custom one came."""
    if row['kind'] != 'custom':
        return 'OFFICIAL'
    for prefix, name in CUSTOM_SOURCE:
        if (row['source'] or '').startswith(prefix):
            return name
    return 'CREATE_IMAGE'


# --- request parameters ------------------------------------------------

def _string(key, value):
    if not isinstance(value, str):
        raise ApiError('InvalidParameter', '%s must be a string' % key)
    return value


def _strings(key, value):
    if not isinstance(value, list) or \
            not all(isinstance(v, str) for v in value):
        raise ApiError('InvalidParameter', '%s must be an array of strings'
                       % key)
    return value


def _integer(key, value):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError('InvalidParameter', '%s must be an integer' % key)
    if value < 0:
        raise ApiError('InvalidParameterValue', '%s must not be negative'
                       % key)
    return value


def _boolean(key, value):
    if not isinstance(value, bool):
        raise ApiError('InvalidParameter', '%s must be a boolean' % key)
    return value


def _true_false(key, value):
    """The string booleans of CreateImage ("true" / "false")."""
    if value not in ('true', 'false'):
        raise ApiError('InvalidParameterValue', '%s is "true" or "false"'
                       % key)
    return value == 'true'


def _filters(key, value):
    if not isinstance(value, list):
        raise ApiError('InvalidParameter', '%s must be an array' % key)
    for f in value:
        if not isinstance(f, dict) or set(f) != {'Name', 'Values'}:
            raise ApiError('InvalidParameter',
                           'a filter has exactly Name and Values')
        _string('Filters.Name', f['Name'])
        _strings('Filters.Values', f['Values'])
    return value


def _anything(key, value):
    return value


def _one_of(*values):
    def check(key, value):
        _string(key, value)
        if value not in values:
            raise ApiError('InvalidParameterValue', '%s is one of %s'
                           % (key, ', '.join(values)))
        return value
    return check


# The parameters of each action (from the SDKs' models), and their types.
PARAMETERS = {
    'DescribeImages': {'ImageIds': _strings, 'Filters': _filters,
                       'Offset': _integer, 'Limit': _integer,
                       'InstanceType': _string},
    'CreateImage': {'ImageName': _string, 'InstanceId': _string,
                    'ImageDescription': _string, 'ForcePoweroff': _true_false,
                    'Sysprep': _true_false, 'DataDiskIds': _strings,
                    'SnapshotIds': _strings, 'DryRun': _boolean,
                    'TagSpecification': _anything, 'ImageFamily': _string},
    'ImportImage': {'Architecture': _string, 'OsType': _string,
                    'OsVersion': _string, 'ImageUrl': _string,
                    'ImageName': _string, 'ImageDescription': _string,
                    'DryRun': _boolean, 'Force': _boolean,
                    'TagSpecification': _anything,
                    'LicenseType': _one_of('TencentCloud', 'BYOL'),
                    'BootMode': _one_of('Legacy BIOS', 'UEFI'),
                    'ImageFamily': _string,
                    'ImportImageDataDiskList': _anything},
    'SyncImages': {'ImageIds': _strings, 'DestinationRegions': _strings,
                   'DryRun': _boolean, 'ImageName': _string,
                   'ImageSetRequired': _boolean, 'Encrypt': _boolean,
                   'KmsKeyId': _string},
    'DeleteImages': {'ImageIds': _strings, 'DeleteBindedSnap': _boolean,
                     'DryRun': _boolean},
    'ModifyImageAttribute': {'ImageId': _string, 'ImageName': _string,
                             'ImageDescription': _string,
                             'ImageFamily': _string,
                             'ImageDeprecated': _boolean},
    'ModifyImageSharePermission': {'ImageId': _string,
                                   'AccountIds': _strings,
                                   'Permission': _string},
    'DescribeImageSharePermission': {'ImageId': _string},
    'DescribeImageQuota': {},
    'DescribeImportImageOs': {},
}


def parameters(action, body):
    """body checked against the action's parameters: UnknownParameter for
    any other key, InvalidParameter(Value) for a wrong type or value."""
    known = PARAMETERS[action]
    for key, value in body.items():
        if key not in known:
            raise ApiError('UnknownParameter', 'The parameter `%s` is not '
                           'recognized' % key)
        known[key](key, value)
    return body


def required(body, key):
    if key not in body:
        raise ApiError('MissingParameter', 'The request is missing a '
                       'required parameter `%s`.' % key)
    return body[key]


def image_id_of(value, malformed='InvalidImageId.Malformed'):
    if not IMAGE_ID_RE.match(value):
        raise ApiError(malformed, 'malformed image id %r' % value)
    return value


def check_name(name, too_long='InvalidParameterValue.TooLarge'):
    if not name.strip():
        raise ApiError('InvalidParameterValue', 'ImageName is empty')
    if len(name) > NAME_MAX:
        raise ApiError(too_long, 'ImageName has at most %d characters'
                       % NAME_MAX)
    return name


def check_description(text):
    if text is not None and len(text) > DESCRIPTION_MAX:
        raise ApiError('InvalidParameterValue.TooLarge', 'ImageDescription '
                       'has at most %d characters' % DESCRIPTION_MAX)
    return text


def cos_url(url):
    """Whether url is a COS object URL (what ImportImage takes)."""
    try:
        u = urllib.parse.urlsplit(url)
    except ValueError:
        return False
    return (u.scheme in ('http', 'https') and not u.username and
            COS_HOST_RE.match(u.hostname or '') is not None and
            len(u.path) > 1 and not u.path.endswith('/'))


# --- the image service -------------------------------------------------

class Cloud:
    """One request of account uin in region, over one transaction of the
    state file: the action's checks, in the order the API documents its
    errors, then the change."""

    def __init__(self, server, conn, uin, region, body):
        self.server = server
        self.conn = conn
        self.uin = uin
        self.region = region
        self.body = body
        self.started = []       # (row, final state, error) of new images

    def _value(self, sql, *args, default=None):
        row = self.conn.execute(sql, args).fetchone()
        return default if row is None or row[0] is None else row[0]

    def region_copy(self, region):
        """regions.copy of region; None when there is no such region."""
        return self._value('SELECT copy FROM regions WHERE name = ?', region)

    def image(self, image_id, region=None):
        """The image image_id of region as the caller sees it (with its
        image_type, shares and copies), or None."""
        return self.conn.execute(
            'SELECT * FROM (%s) WHERE id = :id' % VISIBLE_SQL,
            {'uin': self.uin, 'region': region or self.region,
             'id': image_id}).fetchone()

    def shares(self, row):
        return self._value('SELECT count(*) FROM shares WHERE image = ?',
                           row, default=0)

    def quota(self):
        """The account's image quota of a region (the file says it)."""
        return self._value("SELECT value FROM settings WHERE key = "
                           "'max_custom_images'", default=10)

    def quota_left(self, region):
        """The image quota of region, checked: ImageQuotaLimitExceeded."""
        used = self._value(
            "SELECT count(*) FROM images WHERE region = ? AND "
            "kind = 'custom' AND owner = ? AND state <> 'PENDING'",
            region, self.uin)
        if used >= self.quota():
            raise ApiError('ImageQuotaLimitExceeded', 'The image quota of '
                           '%s has been reached.' % region)

    def name_free(self, region, name, row=0):
        """name is not one of my images of region (but row)."""
        if self._value(
                "SELECT 1 FROM images WHERE region = ? AND kind = 'custom' "
                "AND owner = ? AND name = ? AND row <> ? AND "
                "state <> 'PENDING'", region, self.uin, name, row):
            raise ApiError('InvalidImageName.Duplicate', 'The image name '
                           '%r already exists.' % name)

    def dry_run(self):
        if self.body.get('DryRun'):
            raise ApiError('DryRunOperation', 'The request would have '
                           'succeeded, but the DryRun parameter was used.')

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
        if self.server.settle > 0:
            cols.update(state=running, progress=0, error=None)
        keys = sorted(cols)
        cur = self.conn.execute(
            'INSERT INTO images (%s) VALUES (%s)'
            % (', '.join(keys), ', '.join('?' * len(keys))),
            [cols[k] for k in keys])
        if self.server.settle > 0:
            self.started.append((cur.lastrowid, final, error))
        return cols['id']

    def image_json(self, row):
        custom = row['kind'] == 'custom'
        arch = row['arch'] or ''
        return {
            'ImageId': row['id'],
            'ImageName': row['name'],
            'ImageType': row['image_type'],
            'ImageState': row['state'],
            'OsName': row['os_name'] or '',
            'Platform': row['platform'] or '',
            'Architecture': 'arm' if arch == 'arm64' else arch,
            'ImageSize': row['size_gb'] or 0,
            'CreatedTime': iso_time(row['created']),
            'ImageDescription': row['description'] or '',
            'ImageCreator': row['owner'] if custom else 'tencent'
            if row['kind'] == 'public' else row['owner'],
            'ImageSource': image_source(row),
            'SyncPercent': row['progress'] if row['state'] in
            RUNNING_STATES else None,
            'IsSupportCloudinit': True,
            'LicenseType': 'TencentCloud',
            'SnapshotSet': [],
            'Tags': [],
            'ImageFamily': '',
            'ImageDeprecated': False,
        }

    # --- the actions ---

    def describe_images(self):
        ids = self.body.get('ImageIds')
        filters = self.body.get('Filters')
        offset = self.body.get('Offset', 0)
        limit = self.body.get('Limit', 20)
        if ids is not None and filters is not None:
            raise ApiError('InvalidParameter.'
                           'InvalidParameterCoexistImageIdsFilters',
                           'ImageIds and Filters cannot both be given')
        if limit > MAX_LIMIT:
            raise ApiError('InvalidParameterValue.LimitExceeded',
                           'Limit is at most %d' % MAX_LIMIT)
        for image_id in ids or ():
            image_id_of(image_id)
        if ids is not None:
            filters = [{'Name': 'image-id', 'Values': ids}]
        elif filters and (len(filters) > MAX_FILTERS or
                          any(len(f['Values']) > MAX_FILTER_VALUES
                              for f in filters)):
            raise ApiError('InvalidFilterValue.LimitExceeded',
                           'at most %d filters of %d values'
                           % (MAX_FILTERS, MAX_FILTER_VALUES))
        types = IMAGE_TYPES + ((MARKET_TYPE,) if self.server.market else ())
        where, args = ['1'], {'uin': self.uin, 'region': self.region}
        for n, f in enumerate(filters or ()):
            name = f['Name']
            if name == 'image-type' and not set(f['Values']) <= set(types):
                raise ApiError('InvalidParameterValue',
                               'image-type is one of %s' % ', '.join(types))
            if name in OTHER_FILTERS or name.startswith('tag:'):
                where.append('0')       # no image carries tags here
                continue
            if name not in FILTER_COLUMNS:
                raise ApiError('InvalidFilter', 'unknown filter %s' % name)
            keys = ['f%d_%d' % (n, m) for m in range(len(f['Values']))]
            args.update(zip(keys, f['Values']))
            column = FILTER_COLUMNS[name]
            if name in ('image-name', 'platform'):      # fuzzy
                where.append('(%s)' % ' OR '.join(
                    "instr(lower(%s), lower(:%s))" % (column, k)
                    for k in keys) if keys else '0')
            else:
                where.append('%s IN (%s)' % (column, ', '.join(
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
        name = check_name(required(self.body, 'ImageName'))
        description = check_description(self.body.get('ImageDescription'))
        instance = self.body.get('InstanceId')
        if instance is None and self.body.get('SnapshotIds') is None:
            raise ApiError('InvalidParameter.SpecifyOneParameter',
                           'InstanceId or SnapshotIds is required')
        if instance is None:
            raise ApiError('InvalidParameter.SnapshotNotFound',
                           'no such snapshot')
        if not INSTANCE_RE.match(instance):
            raise ApiError('InvalidInstanceId.Malformed',
                           'malformed instance id %r' % instance)
        if instance.endswith('00000000'):
            raise ApiError('InvalidInstanceId.NotFound',
                           'no instance %s' % instance)
        self.quota_left(self.region)
        self.name_free(self.region, name)
        self.dry_run()
        row = self.conn.execute(DEFAULTS_SQL, (self.region,)).fetchone()
        attrs = dict(row) if row else {}
        attrs['description'] = description or None
        return {'ImageId': self.create(self.region, name, attrs,
                                       'instance:' + instance, 'CREATING')}

    def import_image(self):
        arch = required(self.body, 'Architecture')
        os_type = required(self.body, 'OsType')
        os_version = required(self.body, 'OsVersion')
        url = required(self.body, 'ImageUrl')
        name = check_name(required(self.body, 'ImageName'))
        description = check_description(self.body.get('ImageDescription'))
        if arch not in ARCHITECTURES:
            raise ApiError('InvalidParameterValue', 'Architecture is one of '
                           '%s' % ', '.join(ARCHITECTURES))
        family = next((f for f, names in
                       IMPORT_OS['ImportImageOsListSupported'].items()
                       if os_type in names), None)
        entry = next((e for e in IMPORT_OS['ImportImageOsVersionSet']
                      if e['OsName'] == os_type), None)
        if family is None or entry is None:
            raise ApiError('InvalidImageOsType.Unsupported',
                           'OsType %r is not supported' % os_type)
        if os_version not in entry['OsVersions']:
            raise ApiError('InvalidImageOsVersion.Unsupported',
                           'OsVersion %r of %s is not supported'
                           % (os_version, os_type))
        if arch not in entry['Architecture']:
            raise ApiError('InvalidParameterValue', 'Architecture %s of %s '
                           'is not supported' % (arch, os_type))
        if not cos_url(url):
            raise ApiError('InvalidParameter.InvalidParameterUrlError',
                           'ImageUrl must be a COS object URL')
        if urllib.parse.urlsplit(url).path.lower().endswith('.iso') and \
                not self.body.get('Force'):
            raise ApiError('InvalidParameterValue.ISOMustImportByForce',
                           'ISO files must be imported with Force')
        self.quota_left(self.region)
        self.name_free(self.region, name)
        self.dry_run()
        windows = family == 'Windows'
        attrs = {'os_name': os_type if os_version == '-' else
                 '%s %s' % (os_type, os_version),
                 'os_type': 'windows' if windows else 'linux',
                 'platform': 'Windows' if windows else os_type,
                 'arch': 'arm64' if arch == 'arm_64' else arch,
                 'bits': 32 if arch == 'i386' else 64,
                 'description': description or None}
        failed = import_fails(url)
        image_id = self.create(
            self.region, name, attrs, 'import:' + url.split('?')[0],
            'IMPORTING', 'IMPORTFAILED' if failed else 'NORMAL',
            IMPORT_ERROR if failed else None)
        return {'ImageId': image_id}

    def sync_images(self):
        ids = required(self.body, 'ImageIds')
        dests = required(self.body, 'DestinationRegions')
        name = self.body.get('ImageName')
        if len(ids) != 1:
            raise ApiError('InvalidParameterValue.LimitExceeded',
                           'one image per call')
        if not dests:
            raise ApiError('MissingParameter', 'DestinationRegions is empty')
        image_id = image_id_of(ids[0])
        src = self.image(image_id)
        if src is None:
            raise ApiError('InvalidImageId.NotFound', 'The image %s does not '
                           'exist.' % image_id)
        kind = src['image_type']
        if kind not in ('PRIVATE_IMAGE', 'SHARED_IMAGE'):
            raise ApiError('InvalidParameterValue.InvalidImageId',
                           '%s cannot be synced' % image_id)
        if src['state'] != 'NORMAL':
            raise ApiError('InvalidImageId.IncorrectState',
                           '%s is %s' % (image_id, src['state']))
        for dest in dests:
            copy = self.region_copy(dest)
            if copy is None:
                raise ApiError('InvalidRegion.NotFound', 'no region %r'
                               % dest)
            if kind == 'SHARED_IMAGE' and dest != self.region:
                raise ApiError('InvalidRegion.Unavailable', 'a shared image '
                               'is synced into its own region only')
            if kind == 'PRIVATE_IMAGE' and dest == self.region:
                raise ApiError('InvalidParameterValue.InvalidRegion',
                               'a custom image is synced to another region')
            if not copy or not self.region_copy(self.region):
                raise ApiError('InvalidRegion.Unavailable', 'The region '
                               'does not support image sync.')
            check_name(name or src['name'])
            self.quota_left(dest)
            self.name_free(dest, name or src['name'])
        self.dry_run()
        attrs = {k: src[k] for k in COPIED}
        made = [{'ImageId': self.create(dest, name or src['name'], attrs,
                                        'copy:%s@%s' % (image_id,
                                                        self.region),
                                        'SYNCING'),
                 'Region': dest} for dest in dests]
        if self.body.get('ImageSetRequired'):
            return {'ImageSet': made}
        return {}

    def my_image(self, image_id, not_mine):
        """The caller's own custom image of the request region; not_mine
        is the code of an image shared with the caller."""
        img = self.image(image_id_of(image_id))
        if img is None:
            raise ApiError('InvalidImageId.NotFound', 'The image %s does not '
                           'exist.' % image_id)
        if img['image_type'] == 'SHARED_IMAGE':
            raise ApiError(not_mine, '%s is shared with you' % image_id)
        if img['image_type'] != 'PRIVATE_IMAGE':
            raise ApiError('InvalidParameterValue.InvalidImageId',
                           '%s does not allow this operation' % image_id)
        return img

    def delete_images(self):
        ids = required(self.body, 'ImageIds')
        if not ids:
            raise ApiError('MissingParameter', 'ImageIds is empty')
        imgs = [self.my_image(i, 'InvalidParameterValue.'
                              'InvalidImageIdIsShared') for i in ids]
        for img in imgs:
            if self.shares(img['row']):
                raise ApiError('InvalidImageId.InShared', '%s is shared'
                               % img['id'])
            if img['state'] in RUNNING_STATES:
                raise ApiError('InvalidImageId.IncorrectState',
                               '%s is %s' % (img['id'], img['state']))
        self.dry_run()
        for img in imgs:
            self.conn.execute('DELETE FROM images WHERE row = ?',
                              (img['row'],))
        return {}

    def modify_image_attribute(self):
        image_id = required(self.body, 'ImageId')
        name = self.body.get('ImageName')
        description = check_description(self.body.get('ImageDescription'))
        img = self.my_image(image_id, 'UnsupportedOperation.'
                            'SharedImageModifyUnsupported')
        if img['state'] in RUNNING_STATES:
            raise ApiError('InvalidImageId.IncorrectState',
                           '%s is %s' % (image_id, img['state']))
        changes = {}
        if name is not None:
            self.name_free(self.region, check_name(name), img['row'])
            changes['name'] = name
        if description is not None:
            changes['description'] = description or None
        if changes:
            changes['mtime'] = int(time.time())
            keys = sorted(changes)
            self.conn.execute(
                'UPDATE images SET %s WHERE row = ?'
                % ', '.join('%s = ?' % k for k in keys),
                [changes[k] for k in keys] + [img['row']])
        return {}

    def modify_image_share_permission(self):
        image_id = required(self.body, 'ImageId')
        accounts = required(self.body, 'AccountIds')
        permission = required(self.body, 'Permission')
        if permission not in ('SHARE', 'CANCEL'):
            raise ApiError('InvalidParameterValue',
                           'Permission is SHARE or CANCEL')
        for account in accounts:
            if not DIGITS_RE.match(account):
                raise ApiError('InvalidAccountId.NotFound',
                               'no account %r' % account)
            if account == self.uin:
                raise ApiError('InvalidAccountIs.YourSelf',
                               'You cannot share an image with yourself.')
        img = self.my_image(image_id, 'UnauthorizedOperation.'
                            'ImageNotBelongToAccount')
        if img['state'] != 'NORMAL':
            raise ApiError('InvalidParameterValue.InvalidImageState',
                           '%s is %s' % (image_id, img['state']))
        row = img['row']
        for account in accounts:
            shared = self._value('SELECT 1 FROM shares WHERE image = ? AND '
                                 'account = ?', row, account)
            if permission == 'SHARE' and shared:
                raise ApiError('FailedOperation.AccountAlreadyExists',
                               '%s is already shared with %s'
                               % (image_id, account))
            if permission == 'SHARE' and \
                    self.shares(row) >= self.server.share_limit:
                raise ApiError('OverQuota', 'The image is shared with too '
                               'many accounts.')
            if permission == 'SHARE':
                self.conn.execute('INSERT INTO shares (image, account) '
                                  'VALUES (?, ?)', (row, account))
            else:
                self.conn.execute('DELETE FROM shares WHERE image = ? AND '
                                  'account = ?', (row, account))
        return {}

    def describe_image_share_permission(self):
        image_id = required(self.body, 'ImageId')
        img = self.my_image(image_id, 'UnauthorizedOperation.'
                            'ImageNotBelongToAccount')
        rows = self.conn.execute('SELECT account FROM shares WHERE image = ? '
                                 'ORDER BY account', (img['row'],))
        created = iso_time(img['mtime'])
        return {'SharePermissionSet': [
            {'AccountId': r['account'], 'CreatedTime': created}
            for r in rows]}

    def describe_image_quota(self):
        return {'ImageNumQuota': self.quota()}

    def describe_import_image_os(self):
        return json.loads(json.dumps(IMPORT_OS))


# Action -> (method of Cloud, whether it changes the state).
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
    'DescribeImportImageOs': (Cloud.describe_import_image_os, False),
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
        request = owner._record(action, headers, body)
        owner._busy(1)
        try:
            if owner.lag and owner._stopping.wait(owner.lag):
                self._inject({'kind': 'drop'})
                return
            fault = owner._take_fault(request)
            if fault and self._inject(fault):
                return
            if self.path != '/':
                self._send(404, b'no such path\n', 'text/plain')
                return
            self._send(200, owner._answer(action, headers, body),
                       'application/json')
        finally:
            request['done'] = time.monotonic()
            owner._busy(-1)

    def _inject(self, fault):
        """Play fault; True when that was the whole answer."""
        kind = fault['kind']
        if kind in ('delay', 'hold'):
            owner = self.server.owner
            if kind == 'delay':
                stopped = owner._stopping.wait(fault['seconds'])
            else:
                while not (fault['event'].wait(0.05) or
                           owner._stopping.is_set()):
                    pass
                stopped = owner._stopping.is_set()
            if not stopped:
                return False
            kind = 'drop'               # the server stopped meanwhile
        if kind == 'fail':
            self._send(200, error_body(fault['code'], fault['message']),
                       'application/json')
        elif kind == 'http':
            self._send(fault['status'], fault['body'], fault['type'])
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
    """The stand-in cloud over the state file db_path (see the module's
    docstring). accounts: SecretId -> dict(key=, uin=, token=None).
    settle: seconds of the server's clock (advance()) a new image takes;
    market: accept the MARKET_IMAGE filter; share_limit: accounts per
    image; lag: seconds added to every answer."""

    def __init__(self, db_path, accounts=None, settle=0.0, host='127.0.0.1',
                 port=0, market=False, share_limit=SHARE_LIMIT, lag=0.0):
        self.db_path = db_path
        self.settle = settle
        self.market = market
        self.share_limit = share_limit
        self.lag = lag
        self.host = host
        self.requests = []
        self.in_flight = 0      # requests being answered now
        self.most_in_flight = 0
        self.clock = 0.0
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
                raise ApiError('NoSuchVersion',
                               'X-TC-Version must be %s' % VERSION)
            if action not in ACTIONS:
                raise ApiError('InvalidAction', 'no action %r' % action)
            language = headers.get('x-tc-language')
            if language is not None and language not in LANGUAGES:
                raise ApiError('InvalidParameterValue', 'X-TC-Language is '
                               'one of %s' % ', '.join(LANGUAGES))
            params = _parse_json(body)
            if params is None:
                raise ApiError('InvalidParameter',
                               'the body is not a JSON object')
            response = self._run(action, headers.get('x-tc-region', ''),
                                 parameters(action, params), uin)
        except ApiError as e:
            return error_body(e.code, e.message)
        except Exception as e:          # a bug here, or the state file's
            traceback.print_exc()
            return error_body('InternalError', str(e))
        response['RequestId'] = str(uuid.uuid4())
        return _json_bytes(response)

    def _run(self, action, region, params, uin):
        """Run action in one transaction of the state file."""
        method, writes = ACTIONS[action]
        self.advance(0)
        with transaction(self.db_path,
                         'BEGIN IMMEDIATE' if writes else 'BEGIN') as conn:
            cloud = Cloud(self, conn, uin, region, params)
            if not region:
                raise ApiError('MissingParameter', 'X-TC-Region is needed')
            if cloud.region_copy(region) is None:
                raise ApiError('UnsupportedRegion', 'The region %r is not '
                               'supported.' % region)
            response = method(cloud)
        with self._lock:
            for row, final, error in cloud.started:
                self._running[row] = (self.clock, final, error)
        return response

    def advance(self, seconds):
        """Move the server's clock on by seconds and bring the images that
        settle up to date with it."""
        with self._lock:
            self.clock += seconds
            now, running = self.clock, dict(self._running)
        if not running:
            return
        settle, done = self.settle, []
        marks = ', '.join('?' * len(RUNNING_STATES))
        with transaction(self.db_path) as conn:
            for row, (start, final, error) in running.items():
                elapsed = now - start
                if elapsed >= settle:
                    conn.execute(
                        'UPDATE images SET state = ?, progress = NULL, '
                        'error = ?, mtime = ? WHERE row = ? AND state IN '
                        '(%s)' % marks,
                        (final, error, int(time.time()), row)
                        + RUNNING_STATES)
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
        request = {'action': action, 'region': headers.get('x-tc-region'),
                   'body': _parse_json(body), 'headers': headers,
                   'uin': account['uin'] if account else None,
                   'time': time.monotonic()}
        with self._lock:
            self.requests.append(request)
        return request

    def _busy(self, n):
        with self._lock:
            self.in_flight += n
            self.most_in_flight = max(self.most_in_flight, self.in_flight)

    def clear(self):
        """Forget the requests received so far."""
        with self._lock:
            del self.requests[:]

    def actions(self):
        """The actions of the requests received, in order."""
        with self._lock:
            return [r['action'] for r in self.requests]

    # Each fault plays for the next `times` requests of `action` (None:
    # any) for which when(request) is true (when: None, any), request being
    # a dict of its action, region and body.

    def _add_fault(self, kind, times, action, when=None, **args):
        with self._lock:
            self._faults.append(dict(args, kind=kind, times=times,
                                     action=action, when=when))

    def _take_fault(self, request):
        """The first fault armed for request, used once; or None."""
        with self._lock:
            for fault in self._faults:
                if fault['action'] not in (None, request['action']) or \
                        (fault['when'] and not fault['when'](request)):
                    continue
                fault['times'] -= 1
                if fault['times'] <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def clear_faults(self):
        """Disarm every fault not played yet."""
        with self._lock:
            del self._faults[:]

    def fail(self, code, times=1, action=None,
             message='injected by imagefs tcserver', when=None):
        """The next requests answer the error code."""
        self._add_fault('fail', times, action, when, code=code,
                        message=message)

    def http_error(self, status=500, times=1, action=None, body=None,
                   when=None):
        """The next requests answer HTTP status, with body (bytes, else a
        line of text)."""
        self._add_fault('http', times, action, when, status=status,
                        body=body if body is not None else
                        b'imagefs tcserver: injected HTTP %d\n' % status,
                        type='application/json' if body else 'text/plain')

    def empty(self, times=1, action=None, when=None):
        """The next requests answer 200 with no body."""
        self._add_fault('http', times, action, when, status=200, body=b'',
                        type='application/json')

    def garbage(self, times=1, action=None, when=None):
        """The next requests answer 200 with a body that is not JSON."""
        self._add_fault('http', times, action, when, status=200,
                        body=b'<html>gateway</html>', type='text/html')

    def delay(self, seconds, times=1, action=None, when=None):
        """The next requests wait seconds, then answer."""
        self._add_fault('delay', times, action, when, seconds=seconds)

    def hold(self, times=1, action=None, when=None):
        """The next requests wait until the threading.Event returned is
        set (or the server stops), then answer."""
        event = threading.Event()
        self._add_fault('hold', times, action, when, event=event)
        return event

    def drop(self, times=1, action=None, when=None):
        """The next requests get no answer: the connection is closed."""
        self._add_fault('drop', times, action, when)

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
                        help='seconds a new image takes to be NORMAL (of '
                        'real time here: the clock advances every second)')
    parser.add_argument('--lag', type=float, default=0.0,
                        help='seconds added to every answer')
    parser.add_argument('--market', action='store_true',
                        help='accept the MARKET_IMAGE filter')
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with TcServer(args.db, settle=args.settle, host=args.host,
                  port=args.port, lag=args.lag,
                  market=args.market) as server:
        secret_id, secret_key = test_keys('<uin>')
        print('imagefs tcserver: %s' % server.url)
        print('keys of account <uin> (digits): SecretId %s, SecretKey %s'
              % (secret_id, secret_key))
        print('mount: TENCENTCLOUD_SECRET_ID=%s TENCENTCLOUD_SECRET_KEY=%s '
              'imagefs -o backend=tencentcloud,endpoint=%s,account=<uin> '
              '<mountpoint>' % (secret_id, secret_key, server.url))
        sys.stdout.flush()
        while not stop.wait(1):
            server.advance(1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
