# SPDX-License-Identifier: GPL-2.0
"""GIO, as file managers use it (gio from libglib2.0-bin), on a mount.

Listing, info, copying out and in, gio save into info, gio move (rename),
gio remove, and gio trash, which must be refused so that a file manager
offers to delete instead. gio prints no errno: each refusal's errno is read
from the syscall gio made, traced with strace (failed calls only).
"""

import os
import re
import subprocess

from helpers import listing, parse_info, read_info

GZ = 'ap-guangzhou'
BJ = 'ap-beijing'
SG = 'ap-singapore'              # takes no copies
GIO_ENV = dict(os.environ, GIO_USE_VFS='local', LC_ALL='C.UTF-8')

# 1234 rename("/a", "/b") = -1 EXDEV (Invalid cross-device link)
FAILED_RE = re.compile(r'^(?:\d+ +)?(\w+)\((.*)\) += -1 (E[A-Z]+) ')


def gio(tmp_path, *args, input=None):
    """Run gio under strace: (status, its failed calls as (syscall, args,
    errno) but ENOENT, its output)."""
    trace = tmp_path / 'strace.txt'
    r = subprocess.run(['strace', '-f', '-qq', '-Z', '-e',
                        'trace=file,write,close',
                        '-o', os.fspath(trace), 'gio', *args],
                       env=GIO_ENV, input=input, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    failed = []
    for line in trace.read_text().splitlines():
        m = FAILED_RE.match(line)
        if m and m.group(3) != 'ENOENT':
            failed.append(m.groups())
    return r.returncode, failed, r.stdout.decode()


def refused(failed, syscall_re, path, errno_name):
    """Whether a failed call like syscall_re on path gave errno_name."""
    return [f for f in failed if re.fullmatch(syscall_re, f[0]) and
            '"%s"' % path in f[1] and f[2] == errno_name]


def test_gio_lists_and_tells_about_images(mount, tmp_path):
    mnt = mount()
    custom = os.path.join(mnt, GZ, 'custom')
    rc, _, out = gio(tmp_path, 'list', custom)
    assert rc == 0
    assert sorted(out.split()) == listing(custom)
    rc, _, out = gio(tmp_path, 'list', '-l', '-a', 'time::modified',
                     os.path.join(mnt, GZ))
    assert rc == 0
    rows = dict((line.split('\t')[0], line) for line in out.splitlines())
    assert sorted(rows) == ['custom', 'market', 'public', 'shared']
    assert all('(directory)' in row for row in rows.values())

    info = os.path.join(custom, 'build-agent', 'info')
    rc, _, out = gio(tmp_path, 'info', '-a',
                     'standard::content-type,standard::size,time::modified',
                     info)
    assert rc == 0
    assert 'standard::content-type: text/plain' in out
    assert 'standard::size: %d' % os.path.getsize(info) in out
    assert 'time::modified: %d' % os.stat(info).st_mtime in out


def test_gio_copies_info_out_and_in(mount, tmp_path):
    mnt = mount()
    info = os.path.join(mnt, GZ, 'custom', 'build-agent', 'info')
    out = tmp_path / 'saved-info'
    rc, failed, _ = gio(tmp_path, 'copy', info, os.fspath(out))
    assert rc == 0, failed
    with open(info, 'rb') as f:
        assert out.read_bytes() == f.read()

    # in: into a pending image of another region, as cp does
    target = os.path.join(mnt, BJ, 'custom', 'build-agent')
    os.mkdir(target)
    rc, failed, _ = gio(tmp_path, 'copy', info, os.path.join(target, 'info'))
    assert rc == 0, failed
    copied = read_info(os.path.join(target, 'info'))
    assert copied['SOURCE'] == 'copy:%s@%s' % (
        parse_info(out.read_bytes())['ID'], GZ)

    # a region that takes no copies refuses it at the write
    target = os.path.join(mnt, SG, 'custom', 'build-agent')
    os.mkdir(target)
    rc, failed, _ = gio(tmp_path, 'copy', info, os.path.join(target, 'info'))
    assert rc != 0
    assert [f for f in failed if f[0] in ('write', 'close') and
            f[2] == 'EOPNOTSUPP'], failed
    assert listing(target) == []


def test_gio_save_into_info(mount, tmp_path):
    mnt = mount()
    info = os.path.join(mnt, GZ, 'custom', 'build-agent', 'info')
    before = read_info(info)
    rc, failed, _ = gio(tmp_path, 'save', info,
                        input=b'DESCRIPTION="saved by gio"\n')
    assert rc == 0, failed
    after = read_info(info)
    assert after['DESCRIPTION'] == 'saved by gio'
    assert after['ID'] == before['ID']
    assert listing(os.path.dirname(info)) == ['info'], 'a temporary file stayed'

    # a read-only key is refused, and gio says so
    rc, failed, _ = gio(tmp_path, 'save', info, input=b'ARCH=arm64\n')
    assert rc != 0
    # gio writes a temporary file, then renames it onto info: the commit
    assert [f for f in failed if re.fullmatch(r'rename(at2?)?', f[0]) and
            f[1].endswith('"%s"' % info) and f[2] == 'EPERM'], failed
    assert read_info(info) == after

    # public images are read-only: gio cannot make its temporary file
    public = os.path.join(mnt, GZ, 'public')
    image = os.path.join(public, listing(public)[0])
    rc, failed, _ = gio(tmp_path, 'save', os.path.join(image, 'info'),
                        input=b'DESCRIPTION="x"\n')
    assert rc != 0
    assert [f for f in failed if f[0] in ('open', 'openat') and
            f[2] == 'EROFS'], failed


def test_gio_move_renames(mount, tmp_path):
    mnt = mount()
    custom = os.path.join(mnt, GZ, 'custom')
    rc, failed, _ = gio(tmp_path, 'move', os.path.join(custom, 'build-agent'),
                        os.path.join(custom, 'build-agent-2'))
    assert rc == 0, failed
    assert listing(custom) == ['build-agent-2', 'web-server-2026']
    assert read_info(os.path.join(custom, 'build-agent-2', 'info'))[
        'NAME'] == 'build-agent-2'

    # to another region: the rename is EXDEV, and gio does not copy a dir
    src = os.path.join(custom, 'build-agent-2')
    dst = os.path.join(mnt, BJ, 'custom', 'build-agent-2')
    rc, failed, _ = gio(tmp_path, 'move', src, dst)
    assert rc != 0
    assert refused(failed, r'rename(at2?)?', src, 'EXDEV'), failed
    assert listing(custom) == ['build-agent-2', 'web-server-2026']
    assert listing(os.path.join(mnt, BJ, 'custom')) == []


def test_gio_remove(mount, tmp_path):
    mnt = mount()
    custom = os.path.join(mnt, GZ, 'custom')
    image = os.path.join(custom, 'build-agent')
    # an image directory is not empty: remove info first, as rm -r does
    rc, failed, _ = gio(tmp_path, 'remove', image)
    assert rc != 0
    assert refused(failed, 'rmdir', image, 'ENOTEMPTY'), failed
    rc, failed, _ = gio(tmp_path, 'remove', os.path.join(image, 'info'))
    assert rc == 0, failed
    rc, failed, _ = gio(tmp_path, 'remove', image)
    assert rc == 0, failed
    assert listing(custom) == ['web-server-2026']

    # a shared image cannot be deleted by its owner while shared
    peer = os.path.join(mnt, GZ, 'shared', '100000000003')
    os.mkdir(peer)
    os.symlink('../../custom/web-server-2026',
               os.path.join(peer, 'web-server-2026'))
    info = os.path.join(custom, 'web-server-2026', 'info')
    rc, failed, _ = gio(tmp_path, 'remove', info)
    assert rc != 0
    assert refused(failed, 'unlink(at)?', info, 'EBUSY'), failed
    assert os.path.exists(info)

    # an image shared with me is not mine to delete
    theirs = os.path.join(mnt, GZ, 'shared', '100000000002',
                          'ml-training-base', 'info')
    rc, failed, _ = gio(tmp_path, 'remove', theirs)
    assert rc != 0
    assert refused(failed, 'unlink(at)?', theirs, 'EPERM'), failed

    # nor a public one
    public = os.path.join(mnt, GZ, 'public')
    info = os.path.join(public, listing(public)[0], 'info')
    rc, failed, _ = gio(tmp_path, 'remove', info)
    assert rc != 0
    assert refused(failed, 'unlink(at)?', info, 'EROFS'), failed


def test_gio_trash_is_refused_so_file_managers_delete(mount, tmp_path):
    mnt = mount()
    image = os.path.join(mnt, GZ, 'custom', 'build-agent')
    uid = os.getuid()
    for path in (image, os.path.join(image, 'info')):
        rc, failed, _ = gio(tmp_path, 'trash', path)
        assert rc != 0
        # GIO looks for a trash folder at the top of the mount, and may
        # not make one there
        assert refused(failed, r'mkdir(at)?',
                       os.path.join(mnt, '.Trash-%d' % uid), 'EPERM'), \
            failed
        assert os.path.exists(path)
    assert not [n for n in os.listdir(mnt) if n.startswith('.')]
    # what a file manager offers then: delete for good
    rc, failed, _ = gio(tmp_path, 'remove', os.path.join(image, 'info'))
    assert rc == 0, failed
    rc, failed, _ = gio(tmp_path, 'remove', image)
    assert rc == 0, failed
    assert not os.path.exists(image)
