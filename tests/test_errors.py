# SPDX-License-Identifier: GPL-2.0
"""What people read when something is refused (issue 13).

The task here is the message itself, so these tests read it: one line in
the log (stderr with -f) per error, naming the image (region/kind/name),
what was asked, the errno's words, the rule and what would make it pass;
the same line as user.imagefs.error. The errno is checked as everywhere.
"""

import errno
import os

import pytest

from helpers import expect_errno, write_all, write_file
from conftest import wait_for, EXIT_DEADLINE

GZ = 'ap-guangzhou'
SG = 'ap-singapore'
PEER = '100000000003'
MAX_OPS = 5
DAILY = ('ap-guangzhou: 5 of 5 image operations used today; the next is '
         'possible at 00:00 UTC+8')


def error_lines(mnt):
    """The log's error lines (the daemon runs with -f: stderr)."""
    return [line[len('imagefs: '):] for line in mnt.log_text().splitlines()
            if line.startswith('imagefs: ') and ': ' in line[9:]]


def xattr_error(path):
    return os.getxattr(path, 'user.imagefs.error').decode()


def close_quietly(fd):
    try:
        os.close(fd)
    except OSError:
        pass


def use_up_operations(mnt, n=MAX_OPS):
    for i in range(n):
        d = os.path.join(mnt, GZ, 'custom', 'n%d' % i)
        os.mkdir(d)
        write_file(os.path.join(d, 'info'), '')


@pytest.mark.local_only
def test_the_daily_limit_says_when_the_next_is_possible(mount):
    mnt = mount(extra_opts=['xattr'])
    use_up_operations(mnt)
    one_more = os.path.join(mnt, GZ, 'custom', 'one-more')
    os.mkdir(one_more)
    # a shell's >: a flush before the write, both refused the same way
    fd = os.open(os.path.join(one_more, 'info'),
                 os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    dup = os.dup(fd)
    expect_errno(errno.EAGAIN, os.close, dup)
    expect_errno(errno.EAGAIN, write_all, fd, 'DESCRIPTION=x\n')
    expect_errno(errno.EAGAIN, os.close, fd)
    want = ('ap-guangzhou/custom/one-more: commit: Resource temporarily '
            'unavailable: ' + DAILY)
    assert xattr_error(one_more) == want
    lines = [line for line in error_lines(mnt) if 'one-more' in line]
    assert lines == [want], 'logged once, as one line'


def refused_delete_of_a_shared_image(mnt):
    """Share web-server-2026 with PEER, then try to delete it (EBUSY):
    the peer folder and the image directory."""
    peer = os.path.join(mnt, GZ, 'shared', PEER)
    os.mkdir(peer)
    os.symlink('../../custom/web-server-2026',
               os.path.join(peer, 'web-server-2026'))
    image = os.path.join(mnt, GZ, 'custom', 'web-server-2026')
    expect_errno(errno.EBUSY, os.unlink, os.path.join(image, 'info'))
    return peer, image


@pytest.mark.local_only
def test_deleting_a_shared_image_names_the_share(mount):
    mnt = mount(extra_opts=['xattr'])
    peer, image = refused_delete_of_a_shared_image(mnt)
    want = ('ap-guangzhou/custom/web-server-2026: delete: Device or resource '
            'busy: web-server-2026 is shared with 100000000003: remove '
            '../shared/100000000003/web-server-2026 first')
    assert xattr_error(image) == want
    assert error_lines(mnt) == [want]
    # what it says works
    os.unlink(os.path.join(peer, 'web-server-2026'))
    os.unlink(os.path.join(image, 'info'))
    os.rmdir(image)


def test_an_unknown_key_is_named(mount):
    mnt = mount(extra_opts=['xattr'])
    demo = os.path.join(mnt, GZ, 'custom', 'demo')
    os.mkdir(demo)
    fd = os.open(os.path.join(demo, 'info'), os.O_WRONLY | os.O_CREAT, 0o644)
    expect_errno(errno.EINVAL, write_all, fd,
                 'DESCRIPTION=fine\nFOO=1\n')
    close_quietly(fd)
    want = ('ap-guangzhou/custom/demo: write: Invalid argument: line 2: '
            'unknown key FOO')
    assert xattr_error(demo) == want
    assert [line for line in error_lines(mnt) if 'demo' in line] == [want]


TEXT_ERRORS = {
    # text written to build-agent's info: errno, what the reason says
    'read-only key': ('ARCH=arm64\n', errno.EPERM,
                      'ARCH is read-only: only NAME and DESCRIPTION can '
                      'change'),
    'not KEY=VALUE': ('just words\n', errno.EINVAL, 'line 1: not KEY=VALUE'),
    'a key twice': ('DESCRIPTION=a\nDESCRIPTION=b\n', errno.EINVAL,
                    'line 2: DESCRIPTION a second time'),
    'unquoted $': ('DESCRIPTION="$HOME"\n', errno.EINVAL,
                   'line 1: DESCRIPTION: a "value" ends with a " and '
                   'escapes $ and `'),
    'long name': ('NAME=%s\n' % ('n' * 61), errno.ENAMETOOLONG,
                  'NAME: a name has at most 60 characters'),
}


@pytest.mark.parametrize('case', sorted(TEXT_ERRORS))
def test_a_refused_edit_says_what_is_wrong(mount, case):
    text, err, reason = TEXT_ERRORS[case]
    mnt = mount(extra_opts=['xattr'])
    image = os.path.join(mnt, GZ, 'custom', 'build-agent')
    fd = os.open(os.path.join(image, 'info'), os.O_WRONLY | os.O_TRUNC)
    expect_errno(err, write_all, fd, text)
    close_quietly(fd)
    msg = xattr_error(image)
    assert msg == 'ap-guangzhou/custom/build-agent: write: %s: %s' % (
        os.strerror(err), reason)
    assert error_lines(mnt) == [msg]


@pytest.mark.local_only
def test_a_copy_names_the_regions_that_copy(mount):
    mnt = mount(extra_opts=['xattr'])
    with open(os.path.join(mnt, GZ, 'custom', 'build-agent', 'info')) as f:
        text = f.read()
    target = os.path.join(mnt, SG, 'custom', 'build-agent')
    os.mkdir(target)
    fd = os.open(os.path.join(target, 'info'), os.O_WRONLY | os.O_CREAT)
    expect_errno(errno.EOPNOTSUPP, write_all, fd, text)
    close_quietly(fd)
    msg = xattr_error(target)
    assert msg.startswith('ap-singapore/custom/build-agent: write: '
                          'Operation not supported: ap-singapore does not '
                          'copy images; only ')
    for region in ('ap-guangzhou', 'ap-beijing', 'ap-shanghai',
                   'ap-hongkong'):
        assert region in msg
    assert error_lines(mnt) == [msg]


def test_a_rename_names_the_rule(mount):
    mnt = mount(extra_opts=['xattr'])
    custom = os.path.join(mnt, GZ, 'custom')
    long = 'x' * 61
    expect_errno(errno.ENAMETOOLONG, os.rename,
                 os.path.join(custom, 'build-agent'),
                 os.path.join(custom, long))
    assert xattr_error(os.path.join(custom, 'build-agent')) == (
        'ap-guangzhou/custom/build-agent: rename: File name too long: '
        '%s: a name has at most 60 characters' % long)


def test_errors_are_one_line_each(mount):
    mnt = mount(extra_opts=['xattr'])
    demo = os.path.join(mnt, GZ, 'custom', 'demo')
    os.mkdir(demo)
    for text in ('FOO=1\n', 'OS_TYPE=plan9\n', 'IMPORT_URL=ftp://x/y\n'
                 'OS_TYPE=linux\nPLATFORM=Ubuntu\nARCH=x86_64\n'):
        fd = os.open(os.path.join(demo, 'info'),
                     os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            write_all(fd, text)
            os.close(fd)
        except OSError:
            close_quietly(fd)
        assert '\n' not in xattr_error(demo)
    lines = error_lines(mnt)
    assert len(lines) == 3, lines
    assert all(line.startswith('ap-guangzhou/custom/demo: ')
               for line in lines)


def test_the_cloud_s_words_reach_the_log(mount):
    """tencentcloud: the action, the cloud's code and its RequestId."""
    mnt = mount(backend='tencentcloud', extra_opts=['xattr'])
    _, image = refused_delete_of_a_shared_image(mnt)
    msg = xattr_error(image)
    assert msg.startswith('ap-guangzhou/custom/web-server-2026: delete: '
                          'Device or resource busy: DeleteImages: the cloud '
                          'says ')
    assert '(RequestId ' in msg
    assert wait_for(lambda: msg in error_lines(mnt), EXIT_DEADLINE)
