# SPDX-License-Identifier: GPL-2.0
"""The randomized test: several daemons on one catalog, kill -9 included.

Three daemons on one catalog: two mounts of 100000000001 and one of
100000000002. Each has a client process (tests/stress.py) whose worker
threads make, commit, copy (cp -r across the regions that copy, and into
one that does not), rename, edit, delete (rm -r), share (ln -s) and unshare
images, make and remove peer folders, race the other mount of their
account, and read back what they wrote, while a reader thread walks the
tree. In the middle, one daemon is killed with SIGKILL and mounted again;
a long run kills one every STRESS_KILL_EVERY seconds, in turn.

The workers run in rounds of stress.OPS_PER_ROUND operations; between two
rounds the test may move the daemons' clock (libfaketime) to the next day,
so the day of every operation is known and the daily limit is reached
again and again. The run is bounded by time (STRESS_SECONDS, then the
round under way ends) and seeded (STRESS_SEED, printed: the same choices
again, though not the same interleaving).

Then every invariant is checked from the catalog, none of which depends on
timing: the limits (also sampled during the run), ownership, nothing
committed lost, nothing made that no operation made, the operations
charged equal to those that went through, integrity_check, what every
thread read back through its own mount, every listing and read of every
mount against what some operation wrote, and a fresh mount showing the
catalog. make stress runs it for 10 minutes.
"""

import collections
import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

import stress
from conftest import SLOW, fusermount
from helpers import listing, read_info
from test_custom import FAKETIME_LIB, abort_connection, faketime_env

ACCOUNTS = ('100000000001', '100000000001', '100000000002')
PEERS = ('100000000001', '100000000002', '100000000003')
THREADS = 3                     # workers a daemon (and one reader)
FULL_SHARES = 48                # the seed image shared with that many
WEB = 'web-server-2026'

# make test runs it three times: 75 s against ./imagefs, 45 s against the
# ASan/UBSan build, 30 s under valgrind (where a run does a tenth as much)
BINARY = os.environ.get('IMAGEFS_BIN', '')
DEFAULT_SECONDS = 30 if 'valgrind' in BINARY else \
    45 if 'asan' in BINARY else 75
SECONDS = float(os.environ.get('STRESS_SECONDS', DEFAULT_SECONDS))
KILL_EVERY = float(os.environ.get('STRESS_KILL_EVERY', 60))
DEADLINE = 60.0 * SLOW          # s: a step of the run that must end


def prepare(conn):
    """Peer folders of the real accounts, and the seed image that can take
    only two more shares."""
    for i, acct in enumerate(sorted(set(ACCOUNTS))):
        for region in stress.REGIONS:
            for peer in PEERS:
                if peer != acct:
                    conn.execute('INSERT INTO peers (account, region, peer) '
                                 'VALUES (?, ?, ?)', (acct, region, peer))
    row = conn.execute("SELECT row FROM images WHERE name = ? AND "
                       "kind = 'custom'", (WEB,)).fetchone()[0]
    for k in range(FULL_SHARES):
        conn.execute('INSERT INTO shares (image, account) VALUES (?, ?)',
                     (row, '4000000000%02d' % k))
    conn.commit()


def initial_state(conn):
    images = []
    for ident, owner, region, name, desc in conn.execute(
            "SELECT id, owner, region, name, description FROM images "
            "WHERE kind = 'custom' AND id IS NOT NULL ORDER BY row"):
        shares = [r[0] for r in conn.execute(
            'SELECT s.account FROM shares s JOIN images i ON i.row = '
            's.image WHERE i.id = ?', (ident,))]
        images.append(dict(id=ident, owner=owner, region=region, name=name,
                           desc=desc, shares=shares))
    peers = [list(r) for r in conn.execute(
        'SELECT account, region, peer FROM peers')]
    return dict(images=images, peers=peers)


def fixed_rows(conn):
    """What no operation may change: the other images, settings, regions."""
    return (conn.execute("SELECT * FROM images WHERE kind != 'custom' "
                         'ORDER BY row').fetchall(),
            conn.execute('SELECT * FROM settings ORDER BY key').fetchall(),
            conn.execute('SELECT * FROM regions ORDER BY row').fetchall())


def uins(daemon, thread):
    """The peer folders a worker manages: accounts nobody mounts."""
    return ['%d' % (300000000000 + daemon * 1000 + thread * 10 + k)
            for k in range(4)]


def client_config(i, daemons, initial, seed, log_dir, db):
    acct = ACCOUNTS[i]
    siblings = [j for j, a in enumerate(ACCOUNTS) if a == acct]
    objects = {}
    if i == siblings[0]:
        # the seed images of the account: the first worker of its first
        # mount owns them
        objects['0'] = [dict(key='seed-%s' % img['id'], **{
            k: img[k] for k in ('region', 'name', 'id', 'desc', 'shares')})
            for img in initial['images'] if img['owner'] == acct]
    share_to = [p for p in PEERS if p != acct]
    for j in siblings:
        for t in range(THREADS):
            share_to += uins(j, t)
    return dict(daemon=i, account=acct, threads=THREADS, slow=SLOW,
                paths={j: str(m) for j, m in enumerate(daemons)},
                seed=seed * 1000 + i, log_dir=log_dir, db=db,
                objects=objects, share_to=share_to, siblings=siblings,
                uins={str(t): uins(i, t) for t in range(THREADS)})


class ClientProc:
    """A client process and the events it says."""

    def __init__(self, i, cfg, events):
        self.i = i
        self.proc = subprocess.Popen(
            [sys.executable, stress.__file__, 'client', json.dumps(cfg)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            bufsize=1)
        self.ops = 0
        self.reader = threading.Thread(target=self.read, args=(events,),
                                       daemon=True)
        self.reader.start()

    def read(self, events):
        for line in self.proc.stdout:
            ev = json.loads(line)
            if ev['ev'] == 'ops':
                self.ops = ev['n']
            else:
                events.put((self.i, ev))
        events.put((self.i, {'ev': 'eof'}))

    def send(self, **cmd):
        try:
            self.proc.stdin.write(json.dumps(cmd) + '\n')
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass

    def stop(self):
        try:
            self.proc.stdin.close()
        except (BrokenPipeError, ValueError):
            pass


class Monitor:
    """Samples the catalog during the run: every state it sees keeps the
    limits. Not synchronisation: each sample is a consistent snapshot."""

    def __init__(self, db):
        self.db = db
        self.samples = 0
        self.broken = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        import sqlite3
        conn = sqlite3.connect('file:%s?mode=ro' % self.db, uri=True,
                               timeout=60, isolation_level=None)
        while not self.stop.wait(0.2):
            for what, rows in stress.check_limits(conn):
                self.broken.append(dict(what=what, rows=rows[:5],
                                        sample=self.samples))
            self.samples += 1
        conn.close()


class Run:
    """The parent's side: daemons, clients, rounds, kills."""

    def __init__(self, mount, db, env, initial, seed, log_dir, fusectl):
        self.mount = mount
        self.db = db
        self.env = env
        self.rng = random.Random(seed)
        self.daemons = [mount(account=a, db=db, env=env) for a in ACCOUNTS]
        self.minors = [os.minor(os.stat(m).st_dev) for m in self.daemons]
        self.events = queue.Queue()
        self.stash = collections.deque()
        self.clients = [ClientProc(i, client_config(
            i, self.daemons, initial, seed, log_dir, db), self.events)
            for i in range(len(ACCOUNTS))]
        self.fusectl = fusectl
        self.kills = 0
        self.rounds = 0
        self.day = 0
        self.days = 1
        self.problems = []

    def next_event(self, timeout):
        """The next event of a client, (i, event), or None."""
        if self.stash:
            return self.stash.popleft()
        try:
            i, ev = self.events.get(timeout=timeout)
        except queue.Empty:
            return None
        if ev['ev'] == 'crash':
            raise AssertionError('client %d crashed: %s' % (i, ev['trace']))
        return i, ev

    def wait_event(self, want, clients, deadline, during=None, said=None):
        """Wait until each of clients said want; during() runs between.
        What else they say is kept for the next wait."""
        pending = set(clients)
        end = time.monotonic() + deadline
        kept = []
        while pending:
            if during:
                during()
            got = self.next_event(0.01)
            if got is None:
                if time.monotonic() > end:
                    raise AssertionError('clients %s did not say %r within '
                                         '%.0f s' % (sorted(pending), want,
                                                     deadline))
                continue
            i, ev = got
            if ev['ev'] in ('eof', 'exit') and want not in ('eof', 'exit'):
                raise AssertionError('client %d ended: %s' % (i, ev))
            if ev['ev'] == want and i in pending:
                pending.discard(i)
                if said is not None:
                    said.add(i)
            else:
                kept.append(got)
        self.stash.extend(kept)

    def set_day(self, day, clock):
        tmp = clock + '.tmp'
        with open(tmp, 'w') as f:
            f.write(stress.faketime_spec(day))
        os.rename(tmp, clock)   # never a half-written file

    def kill(self, v):
        """SIGKILL daemon v mid-round; mount it again once its client's
        threads all wait; tell the clients of its account where."""
        m = self.daemons[v]
        siblings = [c for c in self.clients if ACCOUNTS[c.i] == ACCOUNTS[v]]
        os.kill(m.proc.pid, signal.SIGKILL)
        m.killed = True
        for c in siblings:
            c.send(cmd='dead', daemon=v)
        try:
            m.proc.wait(5 * SLOW)
        except subprocess.TimeoutExpired:
            self.problems.append('daemon %d did not exit within 5 s of '
                                 'SIGKILL' % v)
            self.fusectl(self.minors[v])
            m.proc.wait(10 * SLOW)
        try:
            self.wait_event('parked', [v], DEADLINE)
        except AssertionError:
            # a client thread still waits on the dead connection
            self.problems.append('client %d still waited %.0f s after the '
                                 'kill: connection aborted' % (v, DEADLINE))
            self.fusectl(self.minors[v])
            self.wait_event('parked', [v], DEADLINE)
        fusermount(m, '-u', '-z')
        m.reap()
        new = self.mount(account=ACCOUNTS[v], db=self.db, env=self.env)
        self.daemons[v] = new
        self.minors[v] = os.minor(os.stat(new).st_dev)
        for c in siblings:
            c.send(cmd='mount', daemon=v, path=str(new))
        self.kills += 1

    def go(self, seconds, kill_every, clock):
        """Rounds until seconds have passed and every kill was made."""
        start = time.monotonic()
        if seconds < 2 * kill_every:
            kill_at = [0.4 * seconds]
        else:
            kill_at = [kill_every * (k + 0.5)
                       for k in range(int(seconds // kill_every))]
        order = list(range(len(ACCOUNTS)))
        self.rng.shuffle(order)
        self.wait_event('ready', range(len(self.clients)), DEADLINE)
        while True:
            for c in self.clients:
                c.send(cmd='round', round=self.rounds, day=self.day)
            base = [c.ops for c in self.clients]
            done = set()
            # kill in the thick of it: after a random share of the round
            after = self.rng.randrange(5, THREADS * stress.OPS_PER_ROUND // 2)

            def during():
                if self.kills >= len(kill_at) or \
                        time.monotonic() - start < kill_at[self.kills]:
                    return
                v = order[self.kills % len(order)]
                if v in done or self.clients[v].ops - base[v] < after:
                    return
                self.kill(v)

            self.wait_event('done', range(len(self.clients)), DEADLINE * 5,
                            during, done)
            self.rounds += 1
            if time.monotonic() - start >= seconds and \
                    self.kills >= len(kill_at):
                break
            if self.rng.random() < 0.6:
                self.day += 1
                self.days += 1
                self.set_day(self.day, clock)
        for c in self.clients:
            c.send(cmd='stop')
            c.stop()
        self.wait_event('exit', range(len(self.clients)), DEADLINE)
        for c in self.clients:
            c.proc.wait(DEADLINE)
            assert c.proc.returncode == 0, \
                'client %d exited %d' % (c.i, c.proc.returncode)
        return time.monotonic() - start


def abort_or_fail(minor):
    if not abort_connection(minor):
        pytest.fail('a client waits on a dead daemon and fusectl cannot '
                    'abort the connection')


def check_tree(mount, db, env, conn):
    """A fresh mount of each account shows what the catalog holds."""
    problems = []
    for acct in sorted(set(ACCOUNTS)):
        m = mount(account=acct, db=db, env=env)
        for region in stress.REGIONS:
            rows = conn.execute(
                "SELECT id, name, description FROM images WHERE "
                "kind = 'custom' AND owner = ? AND region = ?",
                (acct, region)).fetchall()
            custom = os.path.join(m, region, 'custom')
            want = sorted(stress.entry_of(n) for _, n, _ in rows)
            if listing(custom) != want:
                problems.append(dict(what='a fresh mount lists another '
                                     'custom/', account=acct, region=region,
                                     want=want, got=listing(custom)))
                continue
            for ident, name, desc in rows:
                if ident is None:
                    continue
                info = read_info(os.path.join(custom, stress.entry_of(name),
                                              'info'))
                got = (info['ID'], info['NAME'], info.get('DESCRIPTION'))
                if got != (ident, name, desc):
                    problems.append(dict(what='a fresh mount shows another '
                                         'info', want=(ident, name, desc),
                                         got=got))
        assert m.unmount() == 0, m.log_text()
    return problems


def report(lines):
    text = '\n'.join(lines)
    print(text, flush=True)
    return text


@pytest.mark.local_only  # several daemons on one catalog file, libfaketime
def test_stress(mount, seeded_db, catalog, tmp_path):
    if not os.path.exists(FAKETIME_LIB):
        pytest.skip('libfaketime not installed (apt-get install faketime)')
    seed = int(os.environ.get('STRESS_SEED', random.randrange(1 << 31)))
    print('stress: seed %d (replay: STRESS_SEED=%d), %g s' % (
        seed, seed, SECONDS), flush=True)
    db = seeded_db()
    conn = catalog(db)
    conn.row_factory = None     # plain tuples, to compare and sort
    prepare(conn)
    initial = initial_state(conn)
    fixed = fixed_rows(conn)
    clock = os.fspath(tmp_path / 'faketime')
    env = faketime_env(clock)
    run = None
    logs = tmp_path / 'logs'
    logs.mkdir()
    monitor = Monitor(db)
    try:
        with open(clock, 'w') as f:
            f.write(stress.faketime_spec(0))
        run = Run(mount, os.fspath(db), env, initial, seed, os.fspath(logs),
                  abort_or_fail)
        elapsed = run.go(SECONDS, KILL_EVERY, clock)
    finally:
        monitor.stop.set()
        monitor.thread.join()
        if run:
            for c in run.clients:
                if c.proc.poll() is None:
                    c.proc.kill()
                    c.proc.wait()
    for m in run.daemons:
        assert m.unmount() == 0, m.log_text()

    check = stress.Checker(os.fspath(logs), initial)
    check.scan()
    state = check.catalog(conn, sorted(set(ACCOUNTS)))
    findings = check.findings
    for what, rows in stress.check_limits(conn):
        findings.add(dict(what=what, rows=rows[:5]))
    for f in monitor.broken:
        findings.add(f)
    integrity = conn.execute('PRAGMA integrity_check').fetchall()
    if integrity != [('ok',)]:
        findings.add(dict(what='integrity_check', got=integrity[:5]))
    fk = conn.execute('PRAGMA foreign_key_check').fetchall()
    if fk:
        findings.add(dict(what='foreign_key_check', got=fk[:5]))
    if fixed_rows(conn) != fixed:
        findings.add(dict(what='public or market images, settings or '
                          'regions changed'))
    for f in check_tree(mount, db, env, conn):
        findings.add(f)
    for p in run.problems:
        findings.add(dict(what=p))

    ops = sum(check.ops.values())
    lines = [
        'stress: seed %d, %.0f s, %d daemons (accounts %s), %d worker '
        'threads and %d readers' % (seed, elapsed, len(ACCOUNTS),
                                    ', '.join(sorted(set(ACCOUNTS))),
                                    THREADS * len(ACCOUNTS), len(ACCOUNTS)),
        'stress: %d operations in %d rounds over %d days, %d kill -9 and '
        'remount, %d operations cut off by them' % (
            ops, run.rounds, run.days, run.kills, check.cut_off),
        'stress: reads %s' % dict(check.reads),
        'stress: by operation %s' % ', '.join(
            '%s %s %d' % (op, how, n)
            for (op, how), n in sorted(check.ops.items())),
        'stress: refusals %s' % ', '.join(
            '%s %d' % kv for kv in sorted(check.errnos.items())),
        'stress: catalog at the end %s' % state,
        'stress: invariants checked: %d limits in each of %d catalog '
        'states; the final catalog (images, pending images, shares, peer '
        'folders, operations charged a day, limits, ownership, '
        'integrity_check, foreign keys, other rows); %d reads and listings '
        'against what operations wrote; read-your-writes after every '
        'operation; a fresh mount of each account' % (
            len(stress.LIMIT_QUERIES), monitor.samples + 1,
            sum(check.reads.values())),
        'stress: violations: %d' % len(findings)]
    lines += findings.summary()
    text = report(lines)
    if len(findings):
        pytest.fail('%d violations (replay: STRESS_SEED=%d)\n%s' % (
            len(findings), seed, text), pytrace=False)
