# SPDX-License-Identifier: GPL-2.0
"""The contract suite at the backend interface (tests/contract.c), without
FUSE: against the local catalog, the cache over the local catalog, and the
cache over the tencentcloud client and the stand-in (tcserver.py); for the
last, what the stand-in was sent: each change once, however often the
caller had to ask again.
"""

import os
import subprocess

import pytest

from conftest import SLOW, TESTS_DIR
from tcserver import TcServer, test_keys

CONTRACT_DEADLINE = 300.0 * SLOW    # s the whole suite may take


def contract_bin():
    path = os.environ.get('IMAGEFS_CONTRACT') or os.path.normpath(
        os.path.join(TESTS_DIR, '..', 'build', 'contract'))
    if not os.access(path, os.X_OK):
        pytest.fail('%s is not built: make build/contract' % path,
                    pytrace=False)
    return path


def run(args, env=None):
    r = subprocess.run([contract_bin()] + args, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=CONTRACT_DEADLINE,
                       env=dict(os.environ, **(env or {})))
    out = r.stdout.decode(errors='replace')
    assert r.returncode == 0, out
    assert ' 0 failed' in out, out
    return out


def test_local(tmp_path):
    out = run(['local', str(tmp_path / 'catalog.db')])
    assert 'local: 0 calls waited' in out
    # no index makes SQLite prepare a cached statement again at each new
    # binding (a partial index's WHERE against a bound kind did)
    assert 'prepared again' not in out, out


def test_cache_over_local(tmp_path):
    out = run(['cache-local', str(tmp_path / 'catalog.db'),
               str(tmp_path / 'cache.db')])
    assert 'calls waited' in out and ' 0 calls waited' not in out


def changes(server, action):
    """The bodies of the action's requests that changed something."""
    return [r['body'] for r in server.requests
            if r['action'] == action and not r['body'].get('DryRun')]


def test_cache_over_tencentcloud(tmp_path):
    secret_id, secret_key = test_keys('100000000001')
    with TcServer(str(tmp_path / 'cloud.db')) as server:
        out = run(['tencentcloud', server.url, str(tmp_path / 'cache.db')],
                  env={'TENCENTCLOUD_SECRET_ID': secret_id,
                       'TENCENTCLOUD_SECRET_KEY': secret_key})
    assert ' 0 calls waited' not in out
    # each change was sent once, though its caller asked until it was done
    made = [b['ImageName'] for b in changes(server, 'CreateImage')]
    assert sorted(made) == ['contract-amended', 'contract-made',
                            'contract-refused']
    renames = [b for b in changes(server, 'ModifyImageAttribute')
               if 'ImageName' in b]
    # a rename of a name that is gone is sent nowhere (ENOENT)
    assert [b['ImageName'] for b in renames] == [
        'contract-moved', 'build-agent', 'contract-edited', 'contract-moved',
        'contract-shared', 'contract-moved', 'contract-target']
    # an edit of both is one call; the same edit again is none
    assert [b.get('ImageDescription') for b in renames[2:]] == [
        'both', '', None, None, None]
    # a check of a delete is the cloud's dry run
    assert [r['body'] for r in server.requests
            if r['action'] == 'DeleteImages' and r['body'].get('DryRun')]
    shares = changes(server, 'ModifyImageSharePermission')
    assert [(b['AccountIds'], b['Permission']) for b in shares] == [
        (['100000000007'], 'SHARE'), (['100000000007'], 'SHARE'),
        (['100000000007'], 'CANCEL')]
    syncs = changes(server, 'SyncImages')
    assert len(syncs) == 1 and syncs[0]['ImageSetRequired'] is True
    assert len(changes(server, 'DeleteImages')) == 4   # contract-amended
    # the pending images and the peer folders never reached the cloud
    assert not any('slot-' in str(r['body']) or 'contract-pending' in
                   str(r['body']) for r in server.requests)
