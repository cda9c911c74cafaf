#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""The client and the checker of the randomized test (tests/test_stress.py).

A client is a process that drives one mounted daemon, the way a user's
tools would: worker threads mkdir, commit (write info with open, write,
close), copy (cp -r), rename (mv), edit NAME and DESCRIPTION (an editor's
save, or sed -i's scratch file renamed onto info), delete (rm -r), share
(ln -s), unshare (rm of the link), make and remove peer folders, race a
sibling mount of the same account at a rename, a delete or an unshare,
and read back what they wrote; a reader thread walks the tree. Each worker
owns the images it makes (and the seed images it is given): only it
changes them, so it knows what each must hold, and every other thread
only reads them (or copies them). Limits are shared by all of them.

Every operation is written, once its outcome is known, as one JSON line
to the thread's log. An operation cut off by a killed daemon (ENOTCONN) is
resolved from the catalog, which says exactly what it did: each change is
one transaction, so an image is committed or not, renamed or not, and was
charged exactly when it changed. The checker (Checker) then holds the
catalog against what the logs say: limits, ownership, nothing committed
lost, nothing made that no operation made, the operations charged; and
every read against what some operation wrote.

Run as a client: stress.py client CONFIG-JSON (commands on stdin, events
on stdout, one JSON object a line).
"""

import collections
import errno
import hashlib
import json
import os
import random
import sqlite3
import sys
import threading
import time
import traceback

REGIONS = ('ap-guangzhou', 'ap-beijing', 'ap-shanghai', 'ap-hongkong',
           'ap-singapore')
COPY_REGIONS = frozenset(REGIONS[:4])   # image duplication works there
MAX_CUSTOM = 10         # settings.max_custom_images: a region, an account
MAX_OPS = 5             # settings.max_daily_ops: a region, a day, an account
MAX_SHARES = 50         # settings.max_share_accounts: an image

OPS_PER_ROUND = 40      # operations of a worker between two barriers
READ_PACE = 5           # operations of the workers for a walk of the reader
WALK_READS = 6          # entries a walk reads at most
LOST = (errno.ENOTCONN, errno.ECONNABORTED)     # the daemon is gone

# What each step may answer besides success. Anything else is a finding.
# ENOLCK: a change waited -o lock_timeout for the catalog (a busy machine).
ALLOWED = {
    'mkdir': {errno.EDQUOT, errno.ENOLCK},
    'commit': {errno.EAGAIN, errno.ENOLCK},
    'copy-mkdir': {errno.EDQUOT, errno.ENOLCK},
    'copy-list': {errno.ENOENT},        # the source went meanwhile
    'copy-read': {errno.ENOENT},
    'copy-write': {errno.EAGAIN, errno.EOPNOTSUPP, errno.EINVAL,
                   errno.EBUSY, errno.ENOLCK},
    'rename': {errno.EAGAIN, errno.ENOLCK},
    'edit': {errno.EAGAIN, errno.ENOLCK},
    'delete-unlink': {errno.EBUSY, errno.EAGAIN, errno.ENOLCK},
    'delete-rmdir': {errno.EBUSY, errno.EAGAIN, errno.ENOLCK},
    'share': {errno.EAGAIN, errno.EMLINK, errno.ENOENT, errno.ENOLCK},
    'unshare': {errno.EAGAIN, errno.ENOLCK},
    'peer-mkdir': {errno.EEXIST, errno.EDQUOT, errno.EMLINK, errno.ENOLCK},
    'peer-rmdir': {errno.ENOTEMPTY, errno.ENOENT, errno.ENOLCK},
    # the loser of a race with the sibling mount finds the name gone
    'race': {errno.ENOENT, errno.ENOTEMPTY, errno.EAGAIN, errno.EBUSY,
             errno.ENOLCK},
    'read': {errno.ENOENT},
}


def ename(e):
    if e == errno.EOPNOTSUPP:
        return 'EOPNOTSUPP'
    return errno.errorcode.get(e, str(e))


def entry_of(name):
    """An image name as its directory entry: '/' shows as U+FF0F."""
    return name.replace('/', '\uff0f')


def digest(text):
    """A short stand-in for a description in the logs (None: absent)."""
    if text is None:
        return None
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def ops_day(day):
    """The catalog's day of test day number day (2032-03-14 is day 0)."""
    return time.strftime('%Y-%m-%d', time.gmtime(1962835200 + day * 86400))


def faketime_spec(day):
    """libfaketime's start time for day: noon in UTC+08:00, far from a
    day's end whatever the run's length."""
    return '@%s 04:00:00\n' % ops_day(day)


# --- the info syntax (as tests/helpers.py, without pytest) ------------------

BARE = frozenset('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
                 '0123456789._:,/+@-')


def quote(value):
    if value and all(c in BARE for c in value):
        return value
    out = ''.join('\\' + c if c in '\\"$`' else c for c in value)
    return '"%s"' % out


def parse_info(data):
    """The dict of a rendered info text, or None when it is not one."""
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError:
        return None
    info, i = {}, 0
    while i < len(text):
        eq = text.find('=', i)
        if eq < 0:
            return None
        key = text[i:eq]
        i = eq + 1
        if text.startswith('"', i):
            i += 1
            value = []
            while i < len(text) and text[i] != '"':
                if text[i] == '\\' and text[i + 1:i + 2] in '\\"$`':
                    i += 1
                value.append(text[i])
                i += 1
            if i >= len(text):
                return None
            i += 1
            value = ''.join(value)
        else:
            end = text.find('\n', i)
            value = text[i:end if end >= 0 else len(text)]
            i += len(value)
        if not text.startswith('\n', i) or key in info:
            return None
        info[key] = value
        i += 1
    return info


# --- a client ----------------------------------------------------------------

class Lost(Exception):
    """The daemon died under a step (ENOTCONN): the outcome is unknown."""

    def __init__(self, step, daemon):
        super().__init__(step)
        self.step = step
        self.daemon = daemon


class Failed(Exception):
    """A step failed with an errno."""

    def __init__(self, step, err):
        super().__init__('%s: %s' % (step, ename(err)))
        self.step = step
        self.errno = err


class Obj:
    """An image a worker owns, as it must be in the catalog."""

    def __init__(self, key, region, name, state, ident=None, desc=None,
                 shares=()):
        self.key = key
        self.region = region
        self.name = name
        self.state = state      # pending, committed or gone
        self.refused = False    # pending, a write of its info refused
        self.moved = False      # pending, renamed
        self.id = ident
        self.desc = desc
        self.shares = set(shares)

    def dump(self):
        return dict(key=self.key, region=self.region, name=self.name,
                    state=self.state, id=self.id, desc=self.desc,
                    shares=sorted(self.shares))


class Client:
    """One daemon's client: the worker threads, the reader, the commands."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.me = cfg['daemon']
        self.account = cfg['account']
        self.paths = {int(k): v for k, v in cfg['paths'].items()}
        self.gen = {d: 0 for d in self.paths}   # mounts seen of each daemon
        self.alive = {d: True for d in self.paths}
        self.cond = threading.Condition()
        self.round = None       # (number, day) of the round under way
        self.stopping = False
        self.waiting = set()    # threads at the barrier or parked
        self.parked_gen = -1    # the generation a 'parked' was said for
        self.done = set()
        self.ops = 0
        self.out_lock = threading.Lock()
        self.failed = False
        self.threads = []

    def say(self, **event):
        with self.out_lock:
            sys.stdout.write(json.dumps(event) + '\n')
            sys.stdout.flush()

    def path(self, daemon):
        with self.cond:
            return self.paths[daemon]

    # -- rounds and the barrier --

    def next_round(self, thread, last):
        """Wait for the round after last; None when stopping."""
        with self.cond:
            self.waiting.add(thread)
            self._maybe_parked()
            while not self.stopping and (self.round is None or
                                         self.round[0] == last):
                self.cond.wait()
            self.waiting.discard(thread)
            return None if self.stopping else self.round

    def round_done(self, thread, number):
        with self.cond:
            self.done.add(thread)
            if len(self.done) == len(self.workers):
                self.done = set()
                self.say(ev='done', round=number)

    def count_op(self):
        with self.cond:
            self.ops += 1
            if self.ops % READ_PACE == 0:
                self.say(ev='ops', n=self.ops)
                self.cond.notify_all()          # the reader's pace

    def pace(self, thread, ops):
        """Wait until the workers made ops operations in all: the reader
        keeps pace with them, bounded by operations, not by time."""
        with self.cond:
            self.waiting.add(thread)
            self._maybe_parked()
            while self.ops < ops and not self.stopping:
                self.cond.wait()
            self.waiting.discard(thread)

    # -- a daemon killed under a thread --

    def park(self, thread, daemon):
        """Wait until daemon is mounted again (the parent remounts it)."""
        with self.cond:
            gen = self.gen[daemon]
            self.alive[daemon] = False
            self.waiting.add(thread)
            self._maybe_parked()
            while self.gen[daemon] == gen and not self.stopping:
                self.cond.wait()
            self.waiting.discard(thread)

    def sibling_lost(self, daemon):
        with self.cond:
            self.alive[daemon] = False

    def sibling_alive(self, daemon):
        with self.cond:
            return self.alive[daemon]

    def _maybe_parked(self):
        """Say 'parked' once every thread waits while the daemon is down."""
        if self.alive[self.me] or self.parked_gen == self.gen[self.me]:
            return
        if len(self.waiting) == len(self.threads):
            self.parked_gen = self.gen[self.me]
            self.say(ev='parked')

    # -- the commands of the parent --

    def command(self, cmd):
        with self.cond:
            if cmd['cmd'] == 'round':
                self.round = (cmd['round'], cmd['day'])
            elif cmd['cmd'] == 'mount':
                d = cmd['daemon']
                self.paths[d] = cmd['path']
                self.gen[d] += 1
                self.alive[d] = True
            elif cmd['cmd'] == 'dead':
                self.alive[cmd['daemon']] = False
                self._maybe_parked()
            elif cmd['cmd'] == 'stop':
                self.stopping = True
            self.cond.notify_all()

    def main(self):
        rng = random.Random(self.cfg['seed'])
        self.workers = [Worker(self, t, random.Random(rng.getrandbits(64)))
                        for t in range(self.cfg['threads'])]
        self.reader = Reader(self, random.Random(rng.getrandbits(64)))
        self.threads = self.workers + [self.reader]
        for t in self.threads:
            t.thread = threading.Thread(target=t.run, name=t.tag)
            t.thread.start()
        self.say(ev='ready')
        for line in sys.stdin:
            self.command(json.loads(line))
        self.command({'cmd': 'stop'})
        for t in self.threads:
            t.thread.join()
        self.say(ev='exit', failed=self.failed)
        return 1 if self.failed else 0


class Actor:
    """What the worker and the reader share: steps, logs, the catalog."""

    def __init__(self, client, tag, rng):
        self.client = client
        self.tag = tag
        self.rng = rng
        self.account = client.account
        self.me = client.me
        self.log = open(os.path.join(client.cfg['log_dir'], tag + '.log'),
                        'w', buffering=1)
        self._db = None
        self.read_said = None   # what the last read_info() saw

    def write(self, **rec):
        self.log.write(json.dumps(rec, separators=(',', ':')) + '\n')

    def crashed(self):
        """An exception the test did not expect (a bug of its own): the
        client fails, and says so at once with the trace."""
        self.client.failed = True
        trace = traceback.format_exc()
        self.write(k='crash', thread=self.tag, trace=trace)
        self.client.say(ev='crash', thread=self.tag, trace=trace)

    def finding(self, what, obj=None, **details):
        """An invariant broken in front of this thread. The object it is
        about is then taken as the catalog holds it, so that one defect
        makes one finding, not one for every later operation on it."""
        self.write(k='finding', what=what, thread=self.tag, **details)
        if obj is not None:
            self.resync(obj)

    def resync(self, obj):
        pass

    def db(self):
        """The catalog, read-only: what an operation cut off did."""
        if self._db is None:
            self._db = sqlite3.connect(
                'file:%s?mode=ro' % self.client.cfg['db'], uri=True,
                timeout=60)
        return self._db

    def custom(self, region, daemon=None):
        return os.path.join(self.client.path(
            self.me if daemon is None else daemon), region, 'custom')

    def step(self, step, func, *args, daemon=None):
        """func(*args); OSError becomes Lost or Failed."""
        try:
            return func(*args)
        except OSError as e:
            if e.errno in LOST:
                raise Lost(step, self.me if daemon is None else daemon)
            raise Failed(step, e.errno)

    def read_info(self, path, daemon=None):
        """The info at path through a read-only open: its dict; None when
        absent (ENOENT) or empty. A text that is no rendered info is a
        finding (a reader shown a writer's buffer)."""
        try:
            data = self.step('read', read_file, path, daemon=daemon)
        except Failed as f:
            self.read_said = ename(f.errno)
            if f.errno not in ALLOWED['read']:
                self.finding('unexpected errno', op='read', step='read',
                             err=ename(f.errno), path=path)
            return None
        self.read_said = 'an empty file' if data == b'' else 'a text'
        if data == b'':
            return None
        info = parse_info(data)
        if info is None or not {'ID', 'NAME', 'TYPE', 'REGION',
                                'OWNER'} <= set(info):
            self.finding('a read-only open of info read a text that is no '
                         'image\'s info', path=path,
                         text=data[:300].decode('utf-8', 'replace'))
            return None
        return info


def read_file(path):
    with open(path, 'rb') as f:
        return f.read()


def write_all(fd, data):
    view = memoryview(data.encode() if isinstance(data, str) else data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def close_quietly(fd):
    try:
        os.close(fd)
    except OSError:
        pass


class Worker(Actor):
    """A thread of random operations on its own images."""

    WEIGHTS = (('mkdir', 12), ('commit', 12), ('copy', 10), ('rename', 7),
               ('edit', 10), ('scratch_edit', 3), ('delete', 8),
               ('share', 7), ('unshare', 5), ('peer', 3), ('race', 4),
               ('recheck', 9), ('read', 10))

    def __init__(self, client, t, rng):
        super().__init__(client, 'd%dt%d' % (client.me, t), rng)
        cfg = client.cfg
        self.t = t
        self.objs = {}
        self.serial = 0
        for o in cfg['objects'].get(str(t), []):
            self.add(Obj(o['key'], o['region'], o['name'], 'committed',
                         o['id'], o['desc'], o['shares']))
        self.uins = cfg['uins'][str(t)]         # peer folders I manage
        self.folders = set()                    # (region, uin) I made
        self.share_to = cfg['share_to']         # accounts I may share with
        self.siblings = cfg['siblings']         # mounts of my account
        self.round = (None, None)
        self.seq = 0
        self.pending_resolve = None
        self.full = False       # the last mkdir said EDQUOT
        ops, weights = zip(*self.WEIGHTS)
        self.ops, self.weights = ops, weights

    def add(self, obj):
        self.objs[obj.key] = obj
        return obj

    def new_key(self):
        self.serial += 1
        return '%s-%d' % (self.tag, self.serial)

    def new_name(self):
        """A name never used before, sometimes one that needs care."""
        self.serial += 1
        base = 's%d%d-%d' % (self.me, self.t, self.serial)
        shape = self.rng.random()
        if shape < 0.6:
            return base
        if shape < 0.75:
            return base + ' copy (2)'
        if shape < 0.85:
            return base + ' caf\u00e9 \u6f22\u5b57'
        if shape < 0.92:
            return base + '/v2'                 # shown as U+FF0F
        # 60 characters, the last ones of 4 bytes
        return base + '\U0001f600' * (60 - len(base))

    def new_desc(self):
        shape = self.rng.random()
        word = 'd%d-%d' % (self.rng.getrandbits(20), self.seq)
        if shape < 0.5:
            return 'nightly build %s' % word
        if shape < 0.7:
            return 'quotes " and \\ and $HOME and `id` %s' % word
        if shape < 0.85:
            return '\u65e5\u672c\u8a9e\u3068 caf\u00e9 %s' % word
        if shape < 0.95:
            return word
        # 256 characters of 4 bytes each: the longest description
        return (word + '\U0001f600' * 256)[:256]

    def pick(self, *states):
        objs = [o for o in self.objs.values() if o.state in states]
        return self.rng.choice(objs) if objs else None

    def charge_rec(self, rec, region, n=1):
        rec['charge'] = [self.account, region, n]

    def begin(self, op, **fields):
        self.seq += 1
        return dict(k='op', op=op, thread=self.tag, daemon=self.me,
                    account=self.account, seq=self.seq, day=self.round[1],
                    t0=time.monotonic(), **fields)

    def end(self, rec, ok, err=None, step=None):
        rec.update(ok=ok, t1=time.monotonic())
        unexpected = False
        if err is not None:
            rec['err'] = ename(err)
            rec['step'] = step
            unexpected = err not in ALLOWED.get(step, set())
        self.write(**rec)
        self.client.count_op()
        if unexpected:
            obj = self.objs.get(rec.get('obj'))
            if obj is None and rec['op'] in ('mkdir', 'copy'):
                # refused, but perhaps made: take what the catalog holds
                obj = Obj(rec['obj'], rec['region'], rec['name'], 'pending')
                self.add(obj)
            context = {}
            if obj is not None and obj.moved and obj.refused and \
                    err == errno.ENOENT:
                context['context'] = ('a pending directory renamed, with '
                                      'a refused write of its info')
            elif 'listed' in rec and (
                    (step == 'delete-unlink' and err == errno.ENOENT) or
                    (step == 'delete-rmdir' and err == errno.ENOTEMPTY)):
                # the listing rm -r went by was not what the image held
                context['context'] = 'after a listing of %s' % (
                    rec['listed'],)
            self.finding('unexpected errno', obj, op=rec['op'], step=step,
                         err=ename(err), rec=rec, **context)

    # -- the loop --

    def run(self):
        try:
            last = None
            while True:
                rnd = self.client.next_round(self, last)
                if rnd is None:
                    break
                last = rnd[0]
                self.round = rnd
                for _ in range(OPS_PER_ROUND):
                    self.one()
                self.client.round_done(self, last)
            self.write(k='final', thread=self.tag, account=self.account,
                       objs=[o.dump() for o in self.objs.values()],
                       folders=sorted(self.folders))
        except Exception:
            self.crashed()
        finally:
            self.log.close()

    def one(self):
        op = self.rng.choices(self.ops, self.weights)[0]
        if self.full and op == 'mkdir':
            # the region was full: a user makes room first
            op, self.full = 'delete', False
        try:
            getattr(self, 'op_' + op)()
        except Lost as lost:
            self.client.park(self, lost.daemon)
            pending, self.pending_resolve = self.pending_resolve, None
            if pending:
                rec, resolve = pending
                resolve(rec)

    def attempt(self, rec, step, func, *args, resolve):
        """The one step of rec's operation: True when it went through;
        False when it failed (rec is ended) or was cut off by a dead
        sibling (resolve(rec) ends it from the catalog)."""
        try:
            self.step(step, func, *args)
            return True
        except Failed as f:
            self.end(rec, False, f.errno, f.step)
        except Lost as e:
            self.lost(rec, e, resolve)
        return False

    def lost(self, rec, e, resolve):
        """An operation cut off by a dead daemon: resolved from the catalog
        once it is dead (it is, since the kernel said ENOTCONN); the worker
        then waits for the remount."""
        rec['lost'] = e.step
        if e.daemon != self.me:
            self.client.sibling_lost(e.daemon)
            resolve(rec)
            return
        self.pending_resolve = (rec, resolve)
        raise e

    # -- the catalog, for operations cut off --

    def row_by_id(self, ident):
        r = self.db().execute(
            'SELECT name, description, region, owner FROM images WHERE '
            'id = ?', (ident,)).fetchone()
        return r

    def row_by_name(self, region, name):
        """(id, description) of my custom image region/name, or None."""
        return self.db().execute(
            "SELECT id, description FROM images WHERE kind = 'custom' AND "
            'owner = ? AND region = ? AND name = ?',
            (self.account, region, name)).fetchone()

    def share_exists(self, ident, peer):
        return self.db().execute(
            'SELECT 1 FROM shares s JOIN images i ON i.row = s.image '
            'WHERE i.id = ? AND s.account = ?', (ident, peer)).fetchone() \
            is not None

    def resync(self, obj):
        """Take obj as the catalog holds it (after a finding)."""
        row = self.row_by_id(obj.id) if obj.id else None
        if not row:
            obj.id = None
            found = self.row_by_name(obj.region, obj.name)
            obj.state = 'pending' if found and not found[0] else \
                'committed' if found else 'gone'
            if found and found[0]:
                obj.id = found[0]
                row = self.row_by_id(obj.id)
        if row:
            obj.name, obj.desc = row[0], row[1]
        else:
            obj.desc = None
        obj.shares = {r[0] for r in self.db().execute(
            'SELECT s.account FROM shares s JOIN images i ON i.row = '
            's.image WHERE i.id = ?', (obj.id,))} if obj.id else set()
        self.write(k='resync', thread=self.tag, account=self.account,
                   obj=obj.dump())

    # -- reading back what I wrote, through my own daemon --

    def ryw(self, obj, what, wait=False):
        """Read obj back through my daemon: it must be as I left it. wait:
        the sibling mount may have made the change, which my mount shows
        within a second (DESIGN.md); wait for it, up to a deadline far
        beyond that."""
        deadline = time.monotonic() + 10.0 * self.client.cfg['slow']
        while True:
            diff = self.ryw_diff(obj)
            if diff is None:
                return
            if not wait or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        self.finding('read-your-writes', obj, after=what, **diff)

    def ryw_diff(self, obj):
        """None when my mount shows obj as the model says, else what
        differs."""
        custom = self.custom(obj.region)
        entry = entry_of(obj.name)
        path = os.path.join(custom, entry)
        if obj.state == 'gone':
            try:
                self.step('ryw', os.lstat, path)
            except Failed as f:
                if f.errno != errno.ENOENT:
                    return dict(want='gone', got=ename(f.errno), path=path)
                return None
            return dict(want='gone', got='exists', path=path)
        try:
            names = self.step('ryw', os.listdir, path)
        except Failed as f:
            return dict(want=obj.state, got=ename(f.errno), path=path)
        info = self.read_info(os.path.join(path, 'info'))
        if obj.state == 'pending':
            if info is not None:
                return dict(want='pending', got=info, path=path)
            if names:
                return dict(want=[], got=names, path=path, listing=True)
            return None
        want = {'ID': obj.id, 'NAME': obj.name, 'TYPE': 'custom',
                'REGION': obj.region, 'OWNER': self.account,
                'DESCRIPTION': obj.desc,
                'SHARED_WITH': ','.join(sorted(obj.shares)) or None}
        got = {k: info.get(k) for k in want} if info else None
        if got != want:
            return dict(want=want, got=got, path=path)
        if names != ['info']:
            return dict(want=['info'], got=names, path=path, listing=True)
        return None

    # -- the operations --

    def op_mkdir(self):
        obj = Obj(self.new_key(), self.rng.choice(REGIONS), self.new_name(),
                  'pending')
        rec = self.begin('mkdir', obj=obj.key, region=obj.region,
                         name=obj.name)
        path = os.path.join(self.custom(obj.region), entry_of(obj.name))

        def resolve(rec):
            if self.row_by_name(obj.region, obj.name):
                self.add(obj)
            self.end(rec, obj.key in self.objs)
        if not self.attempt(rec, 'mkdir', os.mkdir, path, resolve=resolve):
            self.full = rec.get('err') == 'EDQUOT'
            return
        self.add(obj)
        self.end(rec, True)
        self.ryw(obj, 'mkdir')

    def commit_text(self):
        """What a pending image's info is written with: a description,
        an instance, both, or nothing (touch)."""
        shape = self.rng.random()
        desc = self.new_desc() if shape < 0.8 else None
        lines = []
        if 0.5 < shape < 0.93:
            lines.append('INSTANCE=ins-%08x' % self.rng.getrandbits(32))
        if desc is not None:
            lines.append('DESCRIPTION=%s' % quote(desc))
        return ''.join(line + '\n' for line in lines), desc

    def write_info(self, path, text, flags, step, daemon=None):
        """open, write, close: as a shell's > or cp. Failed at the first
        step that fails; close's errno after a refused write is the one
        that counts only when the write had none."""
        fd = self.step(step, os.open, path, flags, 0o644, daemon=daemon)
        try:
            self.step(step, write_all, fd, text, daemon=daemon)
        except (Failed, Lost):
            close_quietly(fd)
            raise
        self.step(step, os.close, fd, daemon=daemon)

    def committed_after(self, obj, rec, desc, source, empty):
        """A commit went through: learn the id (reading info back)."""
        row = self.after_close(obj, rec, empty)
        if row is None:
            return False
        ident = row[0]
        try:
            info = self.read_info(os.path.join(self.custom(obj.region),
                                               entry_of(obj.name), 'info'))
        except Lost:
            # killed after close said so: the commit is the catalog's,
            # this operation is recorded, and the read-back that follows
            # finds the daemon dead (and waits for the remount)
            info = False
        if info is not False and (info is None or info.get('ID') != ident):
            self.finding('read-your-writes', after=rec['op'],
                         want={'ID': ident}, got=info or self.read_said,
                         path=os.path.join(obj.region, obj.name))
        obj.state, obj.id, obj.desc = 'committed', ident, desc
        rec.update(id=ident, desc=digest(desc), source=source)
        if info and source.startswith('copy:') and \
                info.get('SOURCE') != source:
            self.finding('copy with another SOURCE', want=source,
                         got=info.get('SOURCE'), id=ident)
        return True

    def op_commit(self):
        obj = self.pick('pending')
        if obj is None:
            return self.op_mkdir()
        text, desc = self.commit_text()
        rec = self.begin('commit', obj=obj.key, region=obj.region,
                         name=obj.name)
        path = os.path.join(self.custom(obj.region), entry_of(obj.name),
                            'info')
        try:
            self.write_info(path, text, os.O_WRONLY | os.O_CREAT |
                            os.O_TRUNC, 'commit')
        except Failed as f:
            obj.refused = True
            self.end(rec, False, f.errno, f.step)
            self.ryw(obj, 'refused commit')
            return
        except Lost as e:
            def resolve(rec):
                row = self.row_by_name(obj.region, obj.name)
                if row and row[0]:
                    obj.state, obj.id, obj.desc = 'committed', row[0], desc
                    rec.update(id=row[0], desc=digest(desc),
                               source='instance')
                    self.charge_rec(rec, obj.region)
                    if row[1] != desc:
                        self.finding('commit stored another description',
                                     want=desc, got=row[1], id=row[0])
                self.end(rec, obj.state == 'committed')
            self.lost(rec, e, resolve)
            return
        if self.committed_after(obj, rec, desc, 'instance', not text):
            obj.refused = obj.moved = False
            self.charge_rec(rec, obj.region)
        self.end(rec, True)
        self.ryw(obj, 'commit')

    def op_copy(self):
        """cp -r R1/custom/A R2/custom/B: mkdir B, list A, copy each file
        (open A/info, open B/info O_CREAT|O_EXCL, write, close)."""
        src_region = self.rng.choice(REGIONS)
        try:
            entries = self.step('copy-list', os.listdir,
                                self.custom(src_region))
        except Failed:
            return
        except Lost as e:
            self.client.park(self, e.daemon)
            return
        if not entries:
            return
        src = self.rng.choice(sorted(entries))
        dst = Obj(self.new_key(), self.rng.choice(REGIONS), self.new_name(),
                  'pending')
        rec = self.begin('copy', obj=dst.key, region=dst.region,
                         name=dst.name, src_region=src_region, src=src)
        src_dir = os.path.join(self.custom(src_region), src)
        dst_dir = os.path.join(self.custom(dst.region), entry_of(dst.name))
        text = None
        try:
            self.step('copy-mkdir', os.mkdir, dst_dir)
            self.add(dst)
            rec['made'] = True
            files = self.step('copy-list', os.listdir, src_dir)
            if 'info' in files:
                fd = self.step('copy-read', os.open,
                               os.path.join(src_dir, 'info'),
                               os.O_RDONLY | os.O_NOFOLLOW)
                try:
                    text = self.step('copy-read', read_fd, fd)
                finally:
                    close_quietly(fd)
                self.write_info(os.path.join(dst_dir, 'info'), text,
                                os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                                'copy-write')
        except Failed as f:
            dst.refused = f.step == 'copy-write'
            self.end(rec, False, f.errno, f.step)
            if dst.key in self.objs:
                self.ryw(dst, 'refused copy')
            return
        except Lost as e:
            def resolve(rec):
                row = self.row_by_name(dst.region, dst.name)
                if row and dst.key not in self.objs:
                    self.add(dst)
                    rec['made'] = True
                if row and row[0] and text is not None:
                    self.copied(dst, rec, text, row)
                elif row and row[0]:
                    self.finding('an image made of a copy that never wrote '
                                 'its info', dst, rec=rec)
                self.end(rec, dst.state == 'committed')
            self.lost(rec, e, resolve)
            return
        if text is None:
            rec['copied'] = False       # the source was pending
            self.end(rec, True)
            self.ryw(dst, 'copy')
            return
        if text and (parse_info(text) or {}).get('ID') is None:
            self.finding('copy read a text that is no image\'s info',
                         path=src_dir, text=text[:300].decode('utf-8',
                                                              'replace'))
            self.end(rec, True)
            return
        self.copied(dst, rec, text, self.after_close(dst, rec, not text))
        self.end(rec, True)
        self.ryw(dst, 'copy')

    def after_close(self, obj, rec, empty):
        """The catalog row of obj once a close said its text was stored:
        (id, description), or None (a finding). The flush that close
        sends commits the text, an empty one too (fs/files.c): an image
        committed only later (the FUSE release, after close returned) is
        a finding; wait for it, and say once that close did not wait."""
        row = self.row_by_name(obj.region, obj.name)
        if row and row[0]:
            return row
        deadline = time.monotonic() + 10.0 * self.client.cfg['slow']
        while empty and time.monotonic() < deadline:
            time.sleep(0.01)
            row = self.row_by_name(obj.region, obj.name)
            if row and row[0]:
                self.finding('an empty info is committed after close '
                             'returned', rec=rec)
                return row
        context = {}
        if empty:
            # the release's commit, whatever came before it
            context['context'] = 'an empty info, committed at release'
        elif obj.moved and obj.refused:
            context['context'] = ('a pending directory renamed, with a '
                                  'refused write of its info')
        self.finding('close said a text was stored, the image is still '
                     'pending', obj, rec=rec, empty=empty, **context)
        return None

    def copied(self, dst, rec, text, row):
        """dst's info was written with text, the source's info as cp read
        it, and closed without an error: a copy of that image; or, when
        cp read an empty file (a pending source), what touch makes."""
        if not row or not row[0]:
            return
        if not text:
            dst.state, dst.id, dst.desc = 'committed', row[0], None
            rec.update(id=row[0], desc=None, source='instance',
                       copied=False)
            self.charge_rec(rec, dst.region)
            return
        info = parse_info(text)
        src_id, src_region = info.get('ID'), info.get('REGION')
        # a text without DESCRIPTION takes the source's, as it is then
        desc = info.get('DESCRIPTION', row[1])
        source = 'copy:%s@%s' % (src_id, src_region)
        dst.state, dst.id, dst.desc = 'committed', row[0], desc
        rec.update(id=row[0], desc=digest(desc), source=source,
                   src_id=src_id)
        self.charge_rec(rec, src_region)
        if src_region != rec['src_region']:
            self.finding('an info read in one region says another',
                         folder=rec['src_region'], got=src_region,
                         id=src_id)
        if row[1] != desc:
            self.finding('copy stored another description', want=desc,
                         got=row[1], id=row[0])
        if src_region not in COPY_REGIONS or \
                dst.region not in COPY_REGIONS:
            self.finding('copy between regions that cannot copy',
                         src=src_region, dst=dst.region, id=row[0])

    def op_rename(self):
        obj = self.pick('pending', 'committed')
        if obj is None:
            return
        new = self.new_name()
        rec = self.begin('rename', obj=obj.key, region=obj.region, id=obj.id,
                         old=obj.name, name=new)
        custom = self.custom(obj.region)

        def resolve(rec):
            if self.row_by_name(obj.region, new):
                self.renamed(obj, new, rec)
            self.end(rec, obj.name == new)
        if not self.attempt(rec, 'rename', os.rename,
                            os.path.join(custom, entry_of(obj.name)),
                            os.path.join(custom, entry_of(new)),
                            resolve=resolve):
            return
        self.renamed(obj, new, rec)
        self.end(rec, True)
        self.ryw(obj, 'rename')

    def renamed(self, obj, new, rec, times=1):
        if obj.state == 'committed':
            self.charge_rec(rec, obj.region, times)
        obj.name = new
        obj.moved = obj.state == 'pending'

    def edit_text(self, obj, info):
        """The text an editor saves: info with NAME and/or DESCRIPTION
        changed (or nothing, now and then: a save without a change)."""
        shape = self.rng.random()
        name, desc = obj.name, obj.desc
        if shape < 0.35:
            name = self.new_name()
        elif shape < 0.8:
            desc = self.new_desc()
        elif shape < 0.95:
            name, desc = self.new_name(), self.new_desc()
        info = dict(info, NAME=name)
        if desc is None:
            info.pop('DESCRIPTION', None)
        else:
            info['DESCRIPTION'] = desc
        text = ''.join('%s=%s\n' % (k, quote(v)) for k, v in info.items())
        return text, name, desc

    def op_edit(self, scratch=False):
        obj = self.pick('committed')
        if obj is None:
            return
        path = os.path.join(self.custom(obj.region), entry_of(obj.name))
        try:
            info = self.read_info(os.path.join(path, 'info'))
        except Lost as e:
            self.client.park(self, e.daemon)
            return
        if info is None:
            self.finding('read-your-writes', obj, after='edit', want='info',
                         got=None, path=path)
            return
        text, name, desc = self.edit_text(obj, info)
        rec = self.begin('scratch_edit' if scratch else 'edit', obj=obj.key,
                         region=obj.region, id=obj.id, old=obj.name,
                         name=name, desc=digest(desc),
                         old_desc=digest(obj.desc))
        try:
            if scratch:
                # sed -i: a scratch file beside info, renamed onto it
                tmp = os.path.join(path, 'sed%06x' % self.rng.getrandbits(24))
                try:
                    self.write_info(tmp, text, os.O_WRONLY | os.O_CREAT |
                                    os.O_EXCL, 'edit')
                    self.step('edit', os.rename, tmp,
                              os.path.join(path, 'info'))
                except Failed as f:
                    self.drop_scratch(obj, tmp, f)
                    raise
            else:
                self.write_info(os.path.join(path, 'info'), text,
                                os.O_WRONLY | os.O_TRUNC, 'edit')
        except Failed as f:
            self.end(rec, False, f.errno, f.step)
            self.ryw(obj, 'refused edit')
            return
        except Lost as e:
            def resolve(rec):
                row = self.row_by_id(obj.id)
                got = (row[0], row[1]) if row else None
                old = (obj.name, obj.desc)
                if got not in (old, (name, desc)):
                    self.finding('an edit applied in part', obj, want=[old, (
                        name, desc)], got=got, id=obj.id)
                if got and got != old:
                    self.edited(obj, name, desc, rec)
                self.end(rec, got == (name, desc))
            self.lost(rec, e, resolve)
            return
        self.edited(obj, name, desc, rec)
        self.end(rec, True)
        self.ryw(obj, 'edit')

    def op_scratch_edit(self):
        self.op_edit(scratch=True)

    def drop_scratch(self, obj, tmp, failed):
        """sed -i after a refusal: its scratch file goes (ENOENT when it
        was never made or was dropped, as one over its size)."""
        try:
            self.step('unlink scratch', os.unlink, tmp)
        except Failed as f:
            if f.errno != errno.ENOENT:
                self.finding('unexpected errno', obj, op='scratch_edit',
                             step='unlink scratch', err=ename(f.errno),
                             after=(failed.step, ename(failed.errno)),
                             path=tmp)
        except Lost:
            pass

    def edited(self, obj, name, desc, rec):
        if (name, desc) != (obj.name, obj.desc):
            self.charge_rec(rec, obj.region)
        obj.name, obj.desc = name, desc

    def rm_r(self, path, daemon=None, steps=('delete-unlink',
                                            'delete-rmdir'), rec=None):
        """rm -r path: list it, unlink each file, rmdir."""
        names = self.step(steps[0], os.listdir, path, daemon=daemon)
        if rec is not None:
            rec['listed'] = names
        for name in names:
            self.step(steps[0], os.unlink, os.path.join(path, name),
                      daemon=daemon)
        self.step(steps[1], os.rmdir, path, daemon=daemon)

    def op_delete(self):
        obj = self.pick('pending', 'committed')
        if obj is None:
            return
        was = obj.state
        rec = self.begin('delete', obj=obj.key, region=obj.region, id=obj.id,
                         name=obj.name, was=was)
        path = os.path.join(self.custom(obj.region), entry_of(obj.name))
        try:
            self.rm_r(path, rec=rec)
        except Failed as f:
            self.end(rec, False, f.errno, f.step)
            self.settle(obj, rec)
            self.ryw(obj, 'refused delete')
            return
        except Lost as e:
            def resolve(rec):
                self.settle(obj, rec)
                self.end(rec, obj.state == 'gone')
            self.lost(rec, e, resolve)
            return
        self.deleted(obj, rec)
        self.end(rec, True)
        self.ryw(obj, 'delete')

    def deleted(self, obj, rec):
        if obj.state == 'committed':
            self.charge_rec(rec, obj.region)
        obj.state = 'gone'

    def settle(self, obj, rec):
        """After an rm -r that did not finish: what the catalog holds. An
        image deleted by the unlink leaves its directory pending (its
        next rm -r removes it)."""
        if obj.state == 'committed' and not self.row_by_id(obj.id):
            self.charge_rec(rec, obj.region)
            obj.state, obj.id, obj.shares = 'pending', None, set()
            rec['deleted'] = True
        if obj.state == 'pending' and \
                not self.row_by_name(obj.region, obj.name):
            obj.state = 'gone'

    def share_dir(self, region, peer, daemon=None):
        return os.path.join(self.client.path(
            self.me if daemon is None else daemon), region, 'shared', peer)

    def op_share(self):
        obj = self.pick('committed')
        if obj is None:
            return
        peers = [p for p in self.share_to if p not in obj.shares]
        if not peers:
            return
        peer = self.rng.choice(peers)
        rec = self.begin('share', obj=obj.key, region=obj.region, id=obj.id,
                         name=obj.name, peer=peer)
        link = os.path.join(self.share_dir(obj.region, peer),
                            entry_of(obj.name))

        def resolve(rec):
            if self.share_exists(obj.id, peer):
                obj.shares.add(peer)
                self.charge_rec(rec, obj.region)
            self.end(rec, peer in obj.shares)
        if not self.attempt(rec, 'share', os.symlink,
                            '../../custom/' + entry_of(obj.name), link,
                            resolve=resolve):
            return
        obj.shares.add(peer)
        self.charge_rec(rec, obj.region)
        self.end(rec, True)
        self.ryw(obj, 'share')
        self.check_link(link, obj, 'share')

    def check_link(self, link, obj, what):
        try:
            got = self.step('ryw', os.readlink, link)
        except Failed as f:
            got = ename(f.errno)
        want = '../../custom/' + entry_of(obj.name)
        if got != want:
            self.finding('read-your-writes', obj, after=what, want=want,
                         got=got, path=link)

    def op_unshare(self, race=False):
        objs = [o for o in self.objs.values()
                if o.state == 'committed' and o.shares]
        if not objs:
            return
        obj = self.rng.choice(objs)
        peer = self.rng.choice(sorted(obj.shares))
        rec = self.begin('unshare', obj=obj.key, region=obj.region,
                         id=obj.id, name=obj.name, peer=peer)
        link = os.path.join(self.share_dir(obj.region, peer),
                            entry_of(obj.name))

        def resolve(rec):
            if not self.share_exists(obj.id, peer):
                obj.shares.discard(peer)
                self.charge_rec(rec, obj.region)
            self.end(rec, peer not in obj.shares)
        if not self.attempt(rec, 'unshare', os.unlink, link,
                            resolve=resolve):
            return
        obj.shares.discard(peer)
        self.charge_rec(rec, obj.region)
        self.end(rec, True)
        self.ryw(obj, 'unshare')

    def op_peer(self):
        """mkdir or rmdir of a peer folder I manage."""
        region, uin = self.rng.choice(REGIONS), self.rng.choice(self.uins)
        path = self.share_dir(region, uin)
        made = (region, uin) in self.folders
        rec = self.begin('peer-rmdir' if made else 'peer-mkdir',
                         region=region, peer=uin)

        def resolve(rec):
            row = self.db().execute(
                'SELECT 1 FROM peers WHERE account = ? AND region = ? '
                'AND peer = ?', (self.account, region, uin)).fetchone()
            (self.folders.add if row else self.folders.discard)(
                (region, uin))
            self.end(rec, bool(row) != made)
        if not self.attempt(rec, rec['op'], os.rmdir if made else os.mkdir,
                            path, resolve=resolve):
            return
        (self.folders.discard if made else self.folders.add)((region, uin))
        self.end(rec, True)

    def op_race(self):
        """The same rename, rm -r or unshare through my mount and a sibling
        mount of my account at once: one of them does it, once."""
        others = [d for d in self.siblings if d != self.me and
                  self.client.sibling_alive(d)]
        if not others:
            return self.op_rename()
        sib = self.rng.choice(others)
        kind = self.rng.choice(('rename', 'delete', 'unshare'))
        objs = [o for o in self.objs.values() if o.state != 'gone' and
                (kind != 'unshare' or (o.state == 'committed' and o.shares))]
        if not objs:
            return
        obj = self.rng.choice(objs)
        was = (obj.state, obj.name, set(obj.shares))
        peer = self.rng.choice(sorted(obj.shares)) if kind == 'unshare' \
            else None
        names = (self.new_name(), self.new_name())
        rec = self.begin('race-' + kind, obj=obj.key, region=obj.region,
                         id=obj.id, name=obj.name, sibling=sib, peer=peer,
                         names=names)

        def one(i, daemon):
            custom = self.custom(obj.region, daemon)
            path = os.path.join(custom, entry_of(obj.name))
            if kind == 'rename':
                self.step('race', os.rename, path,
                          os.path.join(custom, entry_of(names[i])),
                          daemon=daemon)
            elif kind == 'delete':
                self.rm_r(path, daemon, ('race', 'race'))
            else:
                self.step('race', os.unlink, os.path.join(
                    self.share_dir(obj.region, peer, daemon),
                    entry_of(obj.name)), daemon=daemon)

        results = [None, None]

        def run(i, daemon):
            try:
                one(i, daemon)
                results[i] = 'ok'
            except Failed as f:
                results[i] = f
            except Lost as e:
                results[i] = e

        helper = threading.Thread(target=run, args=(1, sib))
        helper.start()
        run(0, self.me)
        helper.join()
        rec['results'] = [r if r == 'ok' else
                          ('lost' if isinstance(r, Lost) else
                           ename(r.errno)) for r in results]
        if isinstance(results[1], Lost):
            self.client.sibling_lost(sib)
        # what happened is what the catalog holds now
        if kind == 'rename':
            for new in names:
                if self.row_by_name(obj.region, new):
                    # both mounts may have renamed it, one after the other
                    self.renamed(obj, new, rec,
                                 max(1, results.count('ok')))
        elif kind == 'delete':
            self.settle(obj, rec)
        elif not self.share_exists(obj.id, peer):
            obj.shares.discard(peer)
            self.charge_rec(rec, obj.region)
        rec['final_name'] = obj.name
        changed = (obj.state, obj.name, obj.shares) != was
        rec['changed'] = changed
        self.end(rec, changed)
        if results.count('ok') > 1:
            self.finding('both mounts were told they did it', obj, rec=rec)
        if results.count('ok') == 1 and not changed and kind != 'delete':
            self.finding('a mount was told it did what the catalog does '
                         'not hold', obj, rec=rec)
        for r in results:
            if isinstance(r, Failed) and r.errno not in ALLOWED['race']:
                self.finding('unexpected errno', obj, op=rec['op'],
                             step=r.step, err=ename(r.errno), rec=rec)
        if isinstance(results[0], Lost):
            raise results[0]
        self.ryw(obj, rec['op'], wait=True)

    def op_recheck(self):
        """Read one of my images back, any time after I wrote it."""
        obj = self.pick('pending', 'committed', 'gone')
        if obj is not None:
            self.ryw(obj, 'recheck')

    def op_read(self):
        """Read an image of any thread, or a shared folder (logged)."""
        self.client.reader.walk_once(self, self.rng)


def read_fd(fd):
    chunks = []
    while True:
        b = os.read(fd, 65536)
        if not b:
            return b''.join(chunks)
        chunks.append(b)


class Reader(Actor):
    """A thread that walks the tree and logs what it reads."""

    def __init__(self, client, rng):
        super().__init__(client, 'd%dr' % client.me, rng)
        self.lock = threading.Lock()

    def run(self):
        try:
            while not self.client.stopping:
                self.client.pace(self, self.client.ops + READ_PACE)
                if self.client.stopping:
                    break
                try:
                    self.walk_once(self, self.rng)
                except Lost as e:
                    self.client.park(self, e.daemon)
        except Exception:
            self.crashed()
        finally:
            with self.client.cond:
                self.client.waiting.add(self)
                self.client._maybe_parked()
            self.log.close()

    def walk_once(self, actor, rng):
        """List a folder of a region and read what is in it."""
        region = rng.choice(REGIONS)
        base = os.path.join(actor.client.path(actor.me), region)
        if rng.random() < 0.7:
            folders = [('custom', os.path.join(base, 'custom'))]
        else:
            peers = read_step(actor, os.listdir,
                              os.path.join(base, 'shared')) or []
            folders = [('shared/' + p, os.path.join(base, 'shared', p))
                       for p in rng.sample(sorted(peers), min(2, len(peers)))]
        for folder, path in folders:
            entries = read_step(actor, os.listdir, path)
            if entries is None:
                continue
            actor.write(k='list', account=actor.account, region=region,
                        folder=folder, entries=entries)
            for e in rng.sample(sorted(entries),
                                min(WALK_READS, len(entries))):
                p = os.path.join(path, e)
                st = read_step(actor, os.lstat, p)
                if st is None:
                    continue
                if os.path.stat.S_ISLNK(st.st_mode):
                    target = read_step(actor, os.readlink, p)
                    if target is not None:
                        actor.write(k='link', account=actor.account,
                                    region=region, folder=folder, entry=e,
                                    target=target)
                    continue
                info = actor.read_info(os.path.join(p, 'info'))
                if info is None:
                    continue
                actor.write(k='read', account=actor.account, region=region,
                            folder=folder, entry=e, id=info.get('ID'),
                            name=info.get('NAME'),
                            desc=digest(info.get('DESCRIPTION')),
                            type=info.get('TYPE'),
                            info_region=info.get('REGION'),
                            owner=info.get('OWNER'))


def read_step(actor, func, path):
    """func(path) for a reader: None when it failed as a read may (the
    name went meanwhile); any other errno is a finding."""
    try:
        return actor.step('read', func, path)
    except Failed as f:
        if f.errno not in ALLOWED['read']:
            actor.finding('unexpected errno', op='read', step='read',
                          err=ename(f.errno), path=path)
        return None


# --- the checker -----------------------------------------------------------

def scan(log_dir):
    """Every record of every thread's log, one at a time; torn lines left
    out (a long run's logs do not fit in memory as objects)."""
    for name in sorted(os.listdir(log_dir)):
        with open(os.path.join(log_dir, name)) as f:
            for line in f:
                if line.endswith('\n'):
                    yield json.loads(line)


class Findings:
    """Broken invariants: counted by kind, the first few of each kept."""

    EXAMPLES = 3

    def __init__(self):
        self.count = collections.Counter()
        self.examples = collections.defaultdict(list)

    def add(self, finding):
        kind = kind_of(finding)
        self.count[kind] += 1
        if len(self.examples[kind]) < self.EXAMPLES:
            self.examples[kind].append(finding)

    def __len__(self):
        return sum(self.count.values())

    def summary(self):
        """Lines that say each kind: how many, and examples."""
        lines = []
        for kind, n in self.count.most_common():
            lines.append('  %6d  %s' % (n, kind))
            for f in self.examples[kind]:
                lines.append('          e.g. %s' % json.dumps(
                    f, default=str, ensure_ascii=False)[:700])
        return lines


def kind_of(finding):
    """The kind of a finding, to count findings of one defect together."""
    what = finding['what']
    if what == 'unexpected errno':
        kind = '%s: %s at %s %s' % (what, finding.get('err'),
                                    finding.get('op'), finding.get('step'))
        if finding.get('context'):
            kind += ', ' + finding['context']
        return kind
    if what == 'read-your-writes' and finding.get('listing'):
        return ('read-your-writes: an image directory lists other files '
                'than it holds')
    if what == 'read-your-writes':
        return '%s, after %s' % (what, finding.get('after'))
    if finding.get('context'):
        return '%s, %s' % (what, finding['context'])
    return what


class History:
    """What the operations that went through ever put in the catalog.

    Names and descriptions are kept by object (a worker's image, from its
    mkdir on, pending or committed: one catalog row), since a mount may
    show an object under a name it had a moment ago."""

    def __init__(self, initial):
        self.entries = collections.defaultdict(set)  # (acct, region): entry
        self.ids = collections.defaultdict(set)      # (acct, region): id
        self.names = collections.defaultdict(set)    # object: name
        self.descs = collections.defaultdict(set)    # object: digest
        self.obj = {}                                # id: object
        self.holders = collections.defaultdict(set)  # (acct, r, entry): obj
        self.shared = set()                          # (id, account)
        for img in initial['images']:
            key = 'seed-%s' % img['id']
            self.image(img['owner'], img['region'], img['id'], key)
            self.name(img['owner'], img['region'], key, img['name'])
            self.descs[key].add(digest(img['desc']))
            for peer in img['shares']:
                self.shared.add((img['id'], peer))

    def image(self, account, region, ident, key):
        self.ids[(account, region)].add(ident)
        self.obj[ident] = key

    def name(self, account, region, key, name):
        self.names[key].add(name)
        self.holders[(account, region, entry_of(name))].add(key)
        self.entries[(account, region)].add(entry_of(name))

    def resync(self, rec):
        """A finding made a worker take an image as the catalog held it:
        reported once, its state is then known."""
        o = rec['obj']
        self.name(rec['account'], o['region'], o['key'], o['name'])
        self.descs[o['key']].add(digest(o['desc']))
        if o['id']:
            self.image(rec['account'], o['region'], o['id'], o['key'])

    def op(self, rec):
        acct, region, op = rec['account'], rec.get('region'), rec['op']
        key = rec.get('obj')
        if rec.get('made'):
            self.name(acct, region, key, rec['name'])
        if not rec.get('ok') and not rec.get('deleted'):
            return
        if op in ('mkdir', 'copy', 'commit'):
            self.name(acct, region, key, rec['name'])
        if op in ('commit', 'copy') and rec.get('id'):
            self.image(acct, region, rec['id'], key)
            self.descs[key].add(rec['desc'])
        elif op in ('rename', 'edit', 'scratch_edit', 'race-rename'):
            self.name(acct, region, key, rec.get('final_name', rec['name']))
            if 'desc' in rec:
                self.descs[key].add(rec['desc'])
        elif op == 'share':
            self.shared.add((rec['id'], rec['peer']))

    def names_of(self, ident):
        return self.names[self.obj.get(ident)]

    def one_object(self, account, region, entry, other):
        """Whether the entries entry and other were names of one object of
        account in region."""
        return bool(self.holders[(account, region, entry)] &
                    self.holders[(account, region, other)])

    def entry_of_image(self, entry, ident):
        """Whether entry is one that image ident was ever shown as."""
        return any(entry in (entry_of(n), '%s (%s)' % (entry_of(n), ident))
                   for n in self.names_of(ident))


class Checker:
    """The logs of a run against the catalog it left."""

    def __init__(self, log_dir, initial):
        self.log_dir = log_dir
        self.initial = initial
        self.hist = History(initial)
        self.findings = Findings()
        self.finals = []
        self.charged = collections.Counter()     # (acct, region, day)
        self.ops = collections.Counter()         # (op, ok or refused)
        self.errnos = collections.Counter()
        self.reads = collections.Counter()
        self.cut_off = 0

    def scan(self):
        """What the threads found, did and read, in two passes: what the
        operations made, then every read against it."""
        for r in scan(self.log_dir):
            k = r['k']
            if k in ('finding', 'crash'):
                self.findings.add(r)
            elif k == 'op':
                self.op(r)
            elif k == 'resync':
                self.hist.resync(r)
            elif k == 'final':
                self.finals.append(r)
            else:
                self.reads[k] += 1
        for r in scan(self.log_dir):
            if r['k'] in ('list', 'read', 'link'):
                self.read(r)

    def op(self, r):
        self.hist.op(r)
        self.ops[(r['op'], 'ok' if r['ok'] else 'refused')] += 1
        if 'err' in r:
            self.errnos[r['err']] += 1
        if 'lost' in r:
            self.cut_off += 1
        if r.get('charge'):
            acct, region, n = r['charge']
            self.charged[(acct, region, ops_day(r['day']))] += n

    def read(self, rec):
        """A listing or a read shows what some operation wrote, whatever
        mount it went through and however late."""
        hist, k = self.hist, rec['k']
        acct, region, folder = rec['account'], rec['region'], rec['folder']
        peer = folder.split('/', 1)[1] if folder != 'custom' else None
        if k == 'list':
            for e in rec['entries']:
                ok = e in hist.entries[(acct, region)] or (
                    peer and any(hist.entry_of_image(e, i)
                                 for i in hist.ids[(peer, region)]))
                if not ok:
                    self.findings.add(dict(what='a listing shows a name no '
                                           'operation made', entry=e,
                                           rec=rec))
            return
        if k == 'link':
            target = rec['target'].split('/')[-1]
            if rec['target'] == '../../custom/' + rec['entry'] and \
                    rec['entry'] in hist.entries[(acct, region)]:
                return
            if rec['target'].startswith('../../custom/') and \
                    hist.one_object(acct, region, rec['entry'], target):
                self.findings.add(dict(what='a share link points to its '
                                       'image by an older name', rec=rec))
                return
            self.findings.add(dict(what='a share link no operation made',
                                   rec=rec))
            return
        ident = rec['id']
        want_owner = acct if folder == 'custom' else peer
        want_type = 'custom' if folder == 'custom' else 'shared'
        bad = []
        if ident not in hist.ids[(want_owner, region)]:
            bad.append('an id no operation made here')
        elif not hist.entry_of_image(rec['entry'], ident):
            bad.append('shown under a name it never had')
        elif rec['name'] not in hist.names_of(ident):
            bad.append('a NAME it never had')
        elif rec['desc'] not in hist.descs[hist.obj[ident]]:
            bad.append('a DESCRIPTION it never had')
        if (rec['type'], rec['owner'], rec['info_region']) != \
                (want_type, want_owner, region):
            bad.append('TYPE, OWNER or REGION wrong')
        if peer and (ident, acct) not in hist.shared:
            bad.append('never shared with this account')
        for what in bad:
            self.findings.add(dict(what='a read shows ' + what, rec=rec))

    def catalog(self, conn, accounts):
        """The catalog holds what the operations made, and nothing else;
        it charged exactly the operations that went through."""
        add = self.findings.add
        want_images, want_pending, want_shares = {}, set(), set()
        for f in self.finals:
            for o in f['objs']:
                if o['state'] == 'committed':
                    want_images[o['id']] = (f['account'], o['region'],
                                            o['name'], o['desc'])
                    want_shares |= {(o['id'], p) for p in o['shares']}
                elif o['state'] == 'pending':
                    want_pending.add((f['account'], o['region'], o['name']))
        marks = ','.join('?' * len(accounts))
        have_images, have_pending = {}, set()
        for ident, owner, region, name, desc in conn.execute(
                "SELECT id, owner, region, name, description FROM images "
                "WHERE kind = 'custom' AND owner IN (%s)" % marks, accounts):
            if ident is None:
                have_pending.add((owner, region, name))
            else:
                have_images[ident] = (owner, region, name, desc)
        for ident in sorted(set(want_images) | set(have_images)):
            want, have = want_images.get(ident), have_images.get(ident)
            if have is None:
                add(dict(what='an image committed is lost', id=ident,
                         want=want))
            elif want is None:
                add(dict(what='an image no operation made (or one deleted '
                         'that is still there)', id=ident, have=have))
            elif want != have:
                add(dict(what='an image holds what no operation left there',
                         id=ident, want=want, have=have))
        for p in sorted(want_pending ^ have_pending):
            add(dict(what='a pending image lost' if p in want_pending else
                     'a pending image no operation made (or one removed)',
                     image=p))
        have_shares = set(conn.execute(
            'SELECT i.id, s.account FROM shares s JOIN images i ON '
            'i.row = s.image'))
        for sh in sorted(want_shares ^ have_shares):
            add(dict(what='a share lost' if sh in want_shares else
                     'a share no operation made', share=sh))
        want_peers = {tuple(p) for p in self.initial['peers']}
        for f in self.finals:
            want_peers |= {(f['account'], r, u) for r, u in f['folders']}
        have_peers = set(conn.execute(
            'SELECT account, region, peer FROM peers'))
        for p in sorted(want_peers ^ have_peers):
            add(dict(what='a peer folder lost' if p in want_peers else
                     'a peer folder no operation made', peer=p))
        have_ops = {(a, r, d): c for a, r, d, c in conn.execute(
            'SELECT account, region, day, count FROM ops')}
        for key in sorted(set(self.charged) | set(have_ops)):
            if self.charged.get(key, 0) != have_ops.get(key, 0):
                add(dict(what='operations charged are not the operations '
                         'that went through', key=key,
                         want=self.charged.get(key, 0),
                         have=have_ops.get(key, 0)))
        return dict(images=len(have_images), pending=len(have_pending),
                    shares=len(have_shares), peers=len(have_peers),
                    charged=sum(have_ops.values()))


# What check_limits asks of a catalog: each row is a broken rule.
LIMIT_QUERIES = (
    ('more than %d custom images in a region' % MAX_CUSTOM,
     "SELECT owner, region, count(*) FROM images WHERE kind = 'custom' "
     'GROUP BY owner, region HAVING count(*) > %d' % MAX_CUSTOM),
    ('more than %d operations in a region in a day' % MAX_OPS,
     'SELECT account, region, day, count FROM ops WHERE count > %d'
     % MAX_OPS),
    ('an image shared with more than %d accounts' % MAX_SHARES,
     'SELECT image, count(*) FROM shares GROUP BY image HAVING count(*) > %d'
     % MAX_SHARES),
    ('a share of an image that is no committed custom image, or with its '
     'owner',
     'SELECT s.image, s.account FROM shares s LEFT JOIN images i ON '
     "i.row = s.image WHERE i.row IS NULL OR i.kind != 'custom' OR "
     'i.id IS NULL OR i.owner = s.account'),
    ('a peer folder of the account itself',
     'SELECT account, region FROM peers WHERE account = peer'),
)


def check_limits(conn):
    """The rules of DESIGN.md section 4 that a state of the catalog shows:
    [(what, rows)] of those broken. One read transaction: one state."""
    broken = []
    conn.execute('BEGIN')
    try:
        for what, sql in LIMIT_QUERIES:
            rows = conn.execute(sql).fetchall()
            if rows:
                broken.append((what, rows))
    finally:
        conn.execute('COMMIT')
    return broken


def client_main(cfg_json):
    client = Client(json.loads(cfg_json))
    return client.main()


if __name__ == '__main__':
    if len(sys.argv) == 3 and sys.argv[1] == 'client':
        sys.exit(client_main(sys.argv[2]))
    sys.stderr.write('usage: stress.py client CONFIG-JSON\n')
    sys.exit(2)
