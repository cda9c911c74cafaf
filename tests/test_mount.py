# SPDX-License-Identifier: GPL-2.0
"""imagefs as a system program: mount(8), fstab, the background, syslog,
df, --help, the man page and make install (issue 13).

The mount(8) tests run in a private mount namespace of their own (unshare),
where /usr/local/bin is this build: mount(8) clears PATH, so mount.fuse3
finds imagefs only in the shell's default path, and nothing of the test
may show outside. A daemon started in the background is found by its
mountpoint (unique to the test) in /proc, waited for, and killed only if
it outlives its unmount.
"""

import os
import re
import shlex
import signal
import socket
import sqlite3
import stat
import subprocess
import time

import pytest

from helpers import listing, read_info, run
from conftest import (EXIT_DEADLINE, MOUNT_DEADLINE, TESTS_DIR, fusermount,
                      in_mount_table, require_bin, wait_for)

REPO = os.path.normpath(os.path.join(TESTS_DIR, '..'))
GZ = 'ap-guangzhou'
NAME_MAX = 60
MAX_CUSTOM = 10
GIB = 1 << 30
SLOT_GB_DEFAULT = 50            # a free slot's worth while no image says

# libfuse's options that imagefs does not honour (it has one thread)
NOT_HONOURED = ('clone_fd', 'max_idle_threads', 'max_threads')
# fstab options for mount(8) and systemd only
FSTAB_ONLY = ('_netdev', 'noauto', 'nofail', 'user', 'users', 'defaults')

root_only = pytest.mark.skipif(os.geteuid() != 0,
                               reason='mount(8) and namespaces need root')


# --- daemons in the background ---------------------------------------------

def daemon_pids(mnt):
    """The processes whose command line has mnt as an argument."""
    want = os.fsencode(os.fspath(mnt))
    pids = []
    for pid in os.listdir('/proc'):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                args = f.read().split(b'\0')
        except OSError:
            continue
        if want in args:
            pids.append(int(pid))
    return pids


def reap(mnt):
    """Unmount mnt if mounted; wait for its daemons; kill any that stay."""
    if in_mount_table(mnt):
        fusermount(mnt, '-u')
    if wait_for(lambda: not daemon_pids(mnt), EXIT_DEADLINE):
        return True
    for pid in daemon_pids(mnt):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_for(lambda: not daemon_pids(mnt), EXIT_DEADLINE)
    if in_mount_table(mnt):
        fusermount(mnt, '-u', '-z')
    return False


@pytest.fixture
def background(tmp_path):
    """Factory: background(args, env=None) runs imagefs without -f.

    Returns the finished starting process (its status and stderr); the
    mountpoints it names are unmounted and their daemons reaped at
    teardown, which fails the test when one had to be killed.
    """
    mnts = []

    def start(args, env=None, mnt=None):
        if mnt is not None:
            mnts.append(mnt)
        # files, not pipes: under valgrind the daemon keeps a copy of
        # stderr for valgrind's own words, and a pipe would not end
        out, err = tmp_path / 'bg.out', tmp_path / 'bg.err'
        with open(out, 'wb') as o, open(err, 'wb') as e:
            r = subprocess.run([require_bin(), *args], env=env,
                               stdin=subprocess.DEVNULL, stdout=o, stderr=e,
                               timeout=MOUNT_DEADLINE)
        r.stdout, r.stderr = out.read_bytes(), err.read_bytes()
        return r

    yield start
    stuck = [m for m in mnts if not reap(m)]
    assert not stuck, 'daemons killed after their unmount: %s' % stuck


def fresh(tmp_path):
    """A catalog path (the daemon makes it) and a mountpoint."""
    mnt = tmp_path / 'bg'
    mnt.mkdir()
    return os.fspath(tmp_path / 'catalog.db'), mnt


def seeded(tmp_path, mount):
    """A catalog made by the daemon (then unmounted), and a mountpoint."""
    m = mount()
    assert m.unmount() == 0, m.log_text()
    return m.db, fresh(tmp_path)[1]


# --- private mount namespaces ----------------------------------------------

def in_namespace(tmp_path, script, timeout=120):
    """Run a sh script as root in a private mount namespace where
    /usr/local/bin holds only imagefs (this build)."""
    bindir = tmp_path / 'bin'
    bindir.mkdir(exist_ok=True)
    wrapper = bindir / 'imagefs'
    wrapper.write_text('#!/bin/sh\nexec %s "$@"\n'
                       % shlex.quote(require_bin()))
    wrapper.chmod(0o755)
    full = 'set -eu\nmount --bind %s /usr/local/bin\n%s' % (
        shlex.quote(os.fspath(bindir)), script)
    # from tmp_path: mount(8) takes a SOURCE that names a file in the
    # current directory (the repository's imagefs) for that file's path
    return subprocess.run(['unshare', '--mount', '--propagation', 'private',
                           'sh', '-c', full], cwd=tmp_path,
                          stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout)


@pytest.fixture
def namespace(tmp_path):
    """Factory: namespace(script, *mountpoints) -> CompletedProcess.

    The script must unmount what it mounts; at teardown the daemons of the
    mountpoints named are waited for, and killed (failing the test) if
    they outlive the namespace's script.
    """
    mnts = []

    def run_script(script, *mountpoints):
        mnts.extend(mountpoints)
        return in_namespace(tmp_path, script)

    yield run_script
    stuck = []
    for m in mnts:
        if not wait_for(lambda: not daemon_pids(m), EXIT_DEADLINE):
            stuck.append(m)
            for pid in daemon_pids(m):
                os.kill(pid, signal.SIGTERM)
            wait_for(lambda: not daemon_pids(m), EXIT_DEADLINE)
    assert not stuck, 'daemons left after the namespace: %s' % stuck


def q(path):
    return shlex.quote(os.fspath(path))


# --- mount -t fuse.imagefs and fstab -----------------------------------------

@root_only
def test_mount_t_fuse_imagefs(tmp_path, namespace):
    db, mnt = fresh(tmp_path)
    r = namespace('''
mount -t fuse.imagefs imagefs {mnt} -o db={db},_netdev,nofail,x-systemd.automount,x-systemd.idle-timeout=60,comment=systemd.automount
grep " {mnt} " /proc/self/mounts
ls {mnt}
umount {mnt}
'''.format(mnt=mnt, db=db), mnt)
    assert r.returncode == 0, r.stderr.decode()
    lines = r.stdout.decode().splitlines()
    source, mountpoint, fstype = lines[0].split()[:3]
    assert (source, mountpoint, fstype) == ('imagefs', os.fspath(mnt),
                                            'fuse.imagefs')
    assert GZ in lines[1:]
    assert not in_mount_table(mnt)


@root_only
def test_mount_a_with_a_test_fstab(tmp_path, namespace):
    db, mnt = fresh(tmp_path)
    later = tmp_path / 'later'
    later.mkdir()
    fstab = tmp_path / 'fstab'
    fstab.write_text(
        '# a test fstab\n'
        'images@100000000001  {mnt}  fuse.imagefs  db={db},account='
        '100000000001,_netdev,user,x-systemd.requires=network-online.target,'
        'x-systemd.mount-timeout=30  0  0\n'
        'imagefs  {later}  fuse.imagefs  db={db},noauto,nofail  0  0\n'
        .format(mnt=mnt, later=later, db=db))
    r = namespace('''
mount -a -T {fstab}
ls {mnt}/{gz}/custom
grep -c " {later} " /proc/self/mounts || true
mount -T {fstab} {later}
ls {later}/{gz}/custom
grep -E " ({mnt}|{later}) " /proc/self/mounts
umount {mnt}
umount {later}
'''.format(fstab=q(fstab), mnt=mnt, later=later, gz=GZ), mnt, later)
    assert r.returncode == 0, r.stderr.decode()
    out = r.stdout.decode().splitlines()
    assert out[:2] == ['build-agent', 'web-server-2026']
    assert out[2] == '0', 'mount -a mounted the noauto line'
    assert out[3:5] == ['build-agent', 'web-server-2026']
    mounted = [line.split()[:3] for line in out[5:]]
    assert mounted == [['images@100000000001', os.fspath(mnt),
                        'fuse.imagefs'],
                       ['imagefs', os.fspath(later), 'fuse.imagefs']]


@root_only
def test_mount_reports_a_start_up_failure(tmp_path, namespace):
    """mount(8) sees imagefs's status: an error is not a silent success."""
    db, mnt = fresh(tmp_path)
    r = namespace('''
mount -t fuse.imagefs imagefs {mnt} -o db={db},account=no-digits
'''.format(mnt=mnt, db=db), mnt)
    assert r.returncode != 0
    assert b'no-digits' in r.stderr
    assert not in_mount_table(mnt)


# --- the mountpoint ----------------------------------------------------------

def test_a_file_is_not_a_mountpoint(tmp_path, background):
    f = tmp_path / 'file'
    f.write_text('not a directory\n')
    r = background(['-o', 'db=%s' % (tmp_path / 'c.db'), os.fspath(f)],
                   mnt=f)
    assert r.returncode == 1
    assert os.fspath(f).encode() in r.stderr
    assert b'not a directory' in r.stderr
    assert not in_mount_table(f)
    assert f.read_text() == 'not a directory\n'


def test_a_mountpoint_is_not_mounted_twice(tmp_path, mount, background):
    m = mount()
    r = background(['-o', 'db=%s' % m.db, m], mnt=None)
    assert r.returncode == 1
    assert b'already a mountpoint' in r.stderr
    assert GZ in listing(m)     # the first mount serves on
    with open('/proc/self/mountinfo') as f:
        assert sum(' %s ' % m in line for line in f) == 1


def test_a_missing_mountpoint(tmp_path, background):
    mnt = tmp_path / 'nowhere'
    r = background(['-o', 'db=%s' % (tmp_path / 'c.db'), os.fspath(mnt)])
    assert r.returncode == 1
    assert os.fspath(mnt).encode() in r.stderr
    assert not os.path.exists(tmp_path / 'c.db'), 'opened the catalog'


# --- start-up in the background ----------------------------------------------

def test_background_exits_0_once_it_serves(tmp_path, background):
    db, mnt = fresh(tmp_path)
    r = background(['-o', 'db=%s' % db, 'imagefs', os.fspath(mnt)], mnt=mnt)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stderr == b'' and r.stdout == b''
    # the exit itself says it serves: no waiting
    assert os.path.ismount(mnt)
    assert GZ in listing(mnt)
    [pid] = daemon_pids(mnt)
    assert os.getsid(pid) == pid, 'the daemon leads a session of its own'
    assert os.readlink('/proc/%d/cwd' % pid) == '/'


def damage(db, offset):
    """Overwrite db from offset on with junk: the header stays valid."""
    size = os.path.getsize(db)
    with open(db, 'r+b') as f:
        f.seek(offset)
        f.write(bytes((i * 37 + 11) % 256 for i in range(size - offset)))


@pytest.mark.parametrize('offset', [100, 4096])
def test_a_damaged_catalog_exits_1(tmp_path, mount, background, offset):
    db, mnt = seeded(tmp_path, mount)
    for ext in ('-wal', '-shm'):
        if os.path.exists(db + ext):
            os.unlink(db + ext)
    damage(db, offset)
    r = background(['-o', 'db=%s' % db, os.fspath(mnt)], mnt=mnt)
    assert r.returncode == 1
    assert db.encode() in r.stderr
    assert b'malformed' in r.stderr
    assert not in_mount_table(mnt)
    assert not daemon_pids(mnt)


def newer_catalog(db):
    conn = sqlite3.connect(db)
    conn.execute('PRAGMA user_version = 99')
    conn.commit()
    conn.close()


# what goes wrong: (the arguments before MOUNTPOINT and after it, what to
# do to the catalog first, words the message must hold)
STARTUP_FAILURES = {
    'unknown option': (['-o', 'frobnicate'], [], None, b'frobnicate'),
    'bad account': (['-o', 'account=12ab'], [], None, b'12ab'),
    'bad timeout': (['-o', 'timeout=-1'], [], None, b'timeout'),
    'newer catalog': ([], [], newer_catalog, b'newer'),
    'catalog in /proc': (['-o', 'db=/proc/imagefs/catalog.db'], [], None,
                         b'/proc/imagefs'),
    'unknown backend': (['-o', 'backend=s3'], [], None, b's3'),
    'no credentials': (['-o', 'backend=tencentcloud,profile=nobody'], [],
                       None, b'credentials'),
    'too many arguments': (['src'], ['one-more'], None, b'one-more'),
}


@pytest.mark.parametrize('case', sorted(STARTUP_FAILURES))
def test_start_up_failures_exit_1_with_a_message(tmp_path, background, case):
    before, after, prepare, words = STARTUP_FAILURES[case]
    db, mnt = fresh(tmp_path)
    if prepare:
        prepare(db)
    env = dict(os.environ, HOME=os.fspath(tmp_path))
    for var in ('TENCENTCLOUD_SECRET_ID', 'TENCENTCLOUD_SECRET_KEY',
                'TCCLI_PROFILE'):
        env.pop(var, None)
    r = background(['-o', 'db=%s' % db, *before, os.fspath(mnt), *after],
                   env=env, mnt=mnt)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert words in r.stderr, r.stderr.decode()
    assert r.stderr.startswith(b'imagefs: '), r.stderr.decode()
    assert not in_mount_table(mnt)


def test_sigterm_unmounts_and_exits_0(mount):
    m = mount()
    m.proc.send_signal(signal.SIGTERM)
    assert m.proc.wait(timeout=EXIT_DEADLINE) == 0
    assert wait_for(lambda: not in_mount_table(m), EXIT_DEADLINE)


# --- messages: stderr in the foreground, syslog in the background -------------

SYSLOG_TAG_RE = re.compile(rb'^<(\d+)>.*? imagefs\[(\d+)\]: (.*)$', re.S)


@root_only
def test_background_messages_go_to_syslog(tmp_path, namespace):
    """In a namespace whose /dev/log is this test's socket."""
    db, mnt = fresh(tmp_path)
    sock_path = tmp_path / 'log.sock'
    log = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    log.bind(os.fspath(sock_path))
    os.chmod(sock_path, 0o666)
    try:
        r = namespace('''
mount -t tmpfs -o mode=755 none /dev
mknod -m 666 /dev/null c 1 3
mknod -m 666 /dev/fuse c 10 229
touch /dev/log
mount --bind {sock} /dev/log
imagefs -o db={db} imagefs {mnt}
M={mnt}/{gz}
mkdir $M/shared/100000000003
ln -s ../../custom/web-server-2026 $M/shared/100000000003/web-server-2026
rm -r $M/custom/web-server-2026 2>/dev/null && exit 9
ls $M/custom
fusermount3 -u {mnt}
'''.format(sock=q(sock_path), db=q(db), mnt=q(mnt), gz=GZ), mnt)
        assert r.returncode == 0, r.stderr.decode()
        assert r.stderr == b'', 'the daemon wrote to the terminal'
        assert wait_for(lambda: not daemon_pids(mnt), EXIT_DEADLINE)
        log.setblocking(False)
        lines = []
        while True:
            try:
                lines.append(log.recv(4096))
            except BlockingIOError:
                break
    finally:
        log.close()
    found = [SYSLOG_TAG_RE.match(line) for line in lines]
    assert found and all(found), lines
    texts = [m.group(3).decode() for m in found]
    busy = [t for t in texts if 'web-server-2026' in t]
    assert len(busy) == 1, texts
    assert '100000000003' in busy[0]
    # LOG_DAEMON (3) << 3 | LOG_ERR (3)
    assert int(found[texts.index(busy[0])].group(1)) == 3 * 8 + 3


# --- df, statfs ----------------------------------------------------------------

def custom_sizes(mnt, region):
    folder = os.path.join(mnt, region, 'custom')
    return [int(read_info(os.path.join(folder, n, 'info'))['SIZE_GB'])
            for n in listing(folder)]


def test_df_lists_the_mount(mount):
    """Either backend: plain df lists the mount, in GiB, from the start."""
    mnt = mount()
    r = run(['df', '-h'])
    assert r.returncode == 0, r.stderr
    assert [line for line in r.stdout.decode().splitlines()
            if line.endswith(' ' + mnt)], 'df -h does not list the mount'
    sv = os.statvfs(mnt)
    assert sv.f_frsize == GIB and sv.f_blocks > 0 and sv.f_files > 0


@pytest.mark.local_only
def test_df_lists_the_mount_with_disk_sizes(mount):
    mnt = mount()
    r = run(['df', '-h'])
    assert r.returncode == 0, r.stderr
    assert [line for line in r.stdout.decode().splitlines()
            if line.endswith(' ' + mnt)], 'df -h does not list the mount'

    sizes = custom_sizes(mnt, GZ)
    sv = os.statvfs(os.path.join(mnt, GZ))
    assert sv.f_frsize == GIB
    used = sv.f_blocks - sv.f_bfree
    assert used == sum(sizes)
    free_slots = MAX_CUSTOM - len(sizes)
    slot = -(-sum(sizes) // len(sizes))
    assert sv.f_bavail == sv.f_bfree == free_slots * slot
    assert (sv.f_files, sv.f_ffree) == (MAX_CUSTOM, free_slots)

    empty = os.statvfs(os.path.join(mnt, 'ap-singapore', 'public'))
    assert empty.f_blocks == empty.f_bfree == MAX_CUSTOM * SLOT_GB_DEFAULT

    top = os.statvfs(mnt)
    regions = listing(mnt)
    assert top.f_files == MAX_CUSTOM * len(regions)
    assert top.f_ffree == top.f_files - len(sizes)
    assert top.f_blocks - top.f_bfree == sum(sizes)

    r = run(['df', '--output=size,used', '-BG', os.path.join(mnt, GZ)])
    size, used = r.stdout.decode().split()[-2:]
    assert used == '%dG' % sum(sizes)
    assert size == '%dG' % (sum(sizes) + free_slots * slot)


def test_name_limit_is_the_real_one(mount):
    mnt = mount()
    assert os.statvfs(mnt).f_namemax == NAME_MAX
    assert os.pathconf(os.path.join(mnt, GZ, 'custom'), 'PC_NAME_MAX') == \
        NAME_MAX


# --- --help, --version, the man page and the README ----------------------------

def help_text():
    r = run([require_bin(), '--help'])
    assert r.returncode == 0 and r.stderr == b''
    return r.stdout.decode()


def help_options(text):
    """The -o names and the flags that --help lists."""
    opts = set(re.findall(r'-o ([a-z_]+)', text))
    flags = set(re.findall(r'(?<![\w-])(-[a-zA-Z]|--[a-z]+)\b', text))
    return opts, flags


def roff_text(path):
    """The man page source with font changes and escapes taken out."""
    with open(path) as f:
        text = f.read()
    text = re.sub(r'\\f[BIRP]', '', text)
    return text.replace('\\-', '-').replace('\\(em', '-')


def test_help_lists_only_what_imagefs_honours():
    text = help_text()
    assert text.startswith('usage: ')
    for name in NOT_HONOURED:
        assert name not in text
    opts, flags = help_options(text)
    assert {'backend', 'db', 'account', 'xattr', 'allow_other'} <= opts
    assert {'-f', '-d', '-s', '-h', '-V'} <= flags


def test_every_help_option_is_in_the_man_page_and_readme():
    text = help_text()
    opts, flags = help_options(text)
    man = roff_text(os.path.join(REPO, 'imagefs.1'))
    with open(os.path.join(REPO, 'README.md')) as f:
        readme = f.read()
    for where, doc in (('imagefs.1', man), ('README.md', readme)):
        missing = sorted('-o ' + o for o in opts if '-o ' + o not in doc)
        missing += sorted(f for f in flags
                          if not re.search(r'(?<![\w-])%s\b' % re.escape(f),
                                           doc))
        missing += sorted(o for o in FSTAB_ONLY if o not in doc)
        assert not missing, '%s lacks %s' % (where, missing)


def test_man_page_sections():
    man = roff_text(os.path.join(REPO, 'imagefs.1'))
    for section in ('SYNOPSIS', 'DESCRIPTION', 'OPTIONS', 'EXIT STATUS',
                    'FILES', 'ENVIRONMENT'):
        assert '.SH %s' % section in man or '.SH "%s"' % section in man
    r = run(['man', '-l', '--warnings', os.path.join(REPO, 'imagefs.1')],
            env=dict(os.environ, MANWIDTH='80', MAN_KEEP_STDERR='1'))
    if r.returncode == 0:
        assert b'warning' not in r.stderr, r.stderr.decode()


def test_version_prints_imagefs_first():
    for flag in ('--version', '-V'):
        r = run([require_bin(), flag])
        assert r.returncode == 0
        lines = r.stdout.decode().splitlines()
        assert re.fullmatch(r'imagefs \d+\.\d+\.\d+', lines[0]), lines
        assert lines[1].startswith('libfuse ')


# --- make install ----------------------------------------------------------------

def make(*args, env=None):
    return subprocess.run(['make', '-s', '-C', REPO, *args], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=600)


def test_make_install_into_a_destdir(tmp_path):
    dest = tmp_path / 'dest'
    r = make('install', 'DESTDIR=%s' % dest, 'PREFIX=/usr')
    assert r.returncode == 0, r.stderr.decode()
    files = {
        'usr/bin/imagefs': 0o755,
        'usr/share/man/man1/imagefs.1': 0o644,
        'usr/lib/systemd/user/imagefs@.service': 0o644,
        'usr/share/doc/imagefs/srv-images.mount': 0o644,
        'usr/share/doc/imagefs/fstab.example': 0o644,
    }
    found = sorted(os.path.relpath(os.path.join(d, f), dest)
                   for d, _, fs in os.walk(dest) for f in fs)
    assert found == sorted(files)
    for rel, mode in files.items():
        st = os.stat(dest / rel)
        assert stat.S_IMODE(st.st_mode) == mode, rel
    unit = (dest / 'usr/lib/systemd/user/imagefs@.service').read_text()
    assert 'ExecStart=/usr/bin/imagefs ' in unit
    assert '@BINDIR@' not in unit
    r = run([os.fspath(dest / 'usr/bin/imagefs'), '--version'])
    assert r.stdout.startswith(b'imagefs ')

    r = make('uninstall', 'DESTDIR=%s' % dest, 'PREFIX=/usr')
    assert r.returncode == 0, r.stderr.decode()
    assert not [f for _, _, fs in os.walk(dest) for f in fs]


def test_installed_units_verify(tmp_path):
    prefix = tmp_path / 'prefix'
    r = make('install', 'PREFIX=%s' % prefix)
    assert r.returncode == 0, r.stderr.decode()
    runtime = tmp_path / 'run'
    runtime.mkdir(mode=0o700)
    env = dict(os.environ, XDG_RUNTIME_DIR=os.fspath(runtime))
    unit = prefix / 'lib/systemd/user/imagefs@.service'
    r = run(['systemd-analyze', 'verify', '--man=no', '--user',
             os.fspath(unit)], env=env)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stderr == b'', r.stderr.decode()
    example = prefix / 'share/doc/imagefs/srv-images.mount'
    r = run(['systemd-analyze', 'verify', '--man=no', os.fspath(example)],
            env=env)
    assert r.returncode == 0, r.stderr.decode()
    # what the examples say is what the daemon accepts
    fstab = (prefix / 'share/doc/imagefs/fstab.example').read_text()
    mount_unit = example.read_text()
    line = re.search(r'^imagefs\s+/srv/images\s+fuse\.imagefs\s+(\S+)',
                     fstab, re.M).group(1)
    assert 'Options=%s\n' % line in mount_unit
    r = make('uninstall', 'PREFIX=%s' % prefix)
    assert r.returncode == 0


# --- directory times -------------------------------------------------------------

def dir_times(mnt, peer_dirs=()):
    rels = ['.']
    for region in (GZ, 'ap-singapore'):
        rels.append(region)
        rels += [os.path.join(region, f)
                 for f in ('public', 'market', 'custom', 'shared')]
    rels += list(peer_dirs)
    return {rel: os.stat(os.path.join(mnt, rel)).st_mtime for rel in rels}


@pytest.mark.local_only
def test_folder_times_are_their_newest_change(tmp_path, mount):
    mnt = mount()
    t = dir_times(mnt, [os.path.join(GZ, 'shared', '100000000002')])
    newest_public = max(os.stat(os.path.join(mnt, GZ, 'public', n)).st_mtime
                        for n in listing(os.path.join(mnt, GZ, 'public')))
    assert t[os.path.join(GZ, 'public')] == newest_public
    custom = [os.stat(os.path.join(mnt, GZ, 'custom', n)).st_mtime
              for n in listing(os.path.join(mnt, GZ, 'custom'))]
    assert t[os.path.join(GZ, 'custom')] == max(custom)
    assert t[os.path.join(GZ, 'shared', '100000000002')] == os.stat(
        os.path.join(mnt, GZ, 'shared', '100000000002',
                     'ml-training-base')).st_mtime
    assert t[GZ] == max(t[os.path.join(GZ, f)]
                        for f in ('public', 'market', 'custom', 'shared'))
    assert t['.'] == max(os.stat(os.path.join(mnt, r)).st_mtime
                         for r in listing(mnt))
    # an empty folder takes its region's time
    assert t[os.path.join('ap-singapore', 'custom')] == t['ap-singapore']
    assert all(v < time.time() - 86400 for v in t.values()), t

    m2 = mount(db=mnt.db)
    assert dir_times(m2, [os.path.join(GZ, 'shared', '100000000002')]) == t
    assert mnt.unmount() == 0
    assert m2.unmount() == 0
    m3 = mount(db=mnt.db)
    assert dir_times(m3, [os.path.join(GZ, 'shared', '100000000002')]) == t


@pytest.mark.local_only
def test_folder_times_move_with_a_change(mount):
    mnt = mount()
    start = int(time.time())
    os.mkdir(os.path.join(mnt, GZ, 'custom', 'fresh'))
    moved = [os.path.join(GZ, 'custom'), GZ, '.']
    assert wait_for(lambda: all(
        os.stat(os.path.join(mnt, rel)).st_mtime >= start for rel in moved),
        MOUNT_DEADLINE), dir_times(mnt)
    t = dir_times(mnt)
    assert t[os.path.join(GZ, 'shared')] < start
    assert t['ap-singapore'] < start

    peer = os.path.join(mnt, GZ, 'shared', '100000000003')
    os.mkdir(peer)
    os.symlink('../../custom/build-agent', os.path.join(peer, 'build-agent'))
    assert wait_for(lambda: os.stat(os.path.join(
        mnt, GZ, 'shared')).st_mtime >= start, MOUNT_DEADLINE)
    assert os.stat(peer).st_mtime >= start
    # a link has the time of its image
    assert os.lstat(os.path.join(peer, 'build-agent')).st_mtime == \
        os.stat(os.path.join(mnt, GZ, 'custom', 'build-agent')).st_mtime
