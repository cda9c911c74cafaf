"""What close(2) says of a written info: the truth, at once.

The flush that close(2) sends commits the text written so far, even an
empty one (touch, cp of an empty file, ': >'), so that a refusal is what
close returns and a success is in the catalog before close returns. A
shell's '>' closes the fd it dup2'ed before the command writes: the text
that comes after that flush makes the image again (an amend) as the same
one operation, and a refused one leaves the image pending, as if the flush
had made nothing. Two daemons on one catalog at the daily limit, and a
clock the test moves (libfaketime) for the day's roll-over.
"""
import errno
import os
import threading

import pytest

from helpers import (drive_tty, ename, expect_errno, listing, parse_info,
                     read_info, run, write_all)
from conftest import SLOW, charged
from test_custom import (AGENT, BJ, FAKETIME_LIB, GZ, MAX_OPS, SG, WEB,
                         close_errno, committed, faketime_env, image_id,
                         ops_count, pending, prepare, tool_env)

# every test commits texts without a source, which only the local backend
# takes (tencentcloud: EINVAL), and counts the operations it charges
pytestmark = pytest.mark.local_only

OK3 = ('success',) * 3      # dup_then_write: the three steps succeeded
ROUNDS = 200 if SLOW > 1 else 4000     # test_listings_read_meanwhile...


@pytest.fixture
def two(mount, seeded_db, catalog):
    """two(ops=...) -> (a, b, conn): two daemons on one catalog."""
    def factory(ops=None):
        db = seeded_db()
        conn = catalog(db)
        prepare(conn, ops=ops)
        return mount(db=db), mount(db=db), conn
    return factory


def custom(mnt, name='', region=BJ):
    return os.path.join(mnt, region, 'custom', name)


def open_info(mnt, name, region=BJ):
    return os.open(os.path.join(custom(mnt, name, region), 'info'),
                   os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)


def commit_text(mnt, name, text, region=BJ):
    """open, write, close: the errno symbol of the first refusal, or
    'success'."""
    fd = open_info(mnt, name, region)
    try:
        write_all(fd, text)
    except OSError as e:
        close_errno(fd)
        return ename(e.errno)
    return ename(close_errno(fd))


def first_flush(mnt, name, region=BJ):
    """open info, dup the fd, close the first (a flush with nothing
    written, which close says succeeded): the dup, still open."""
    fd = open_info(mnt, name, region)
    out = os.dup(fd)
    assert ename(close_errno(fd)) == 'success'
    return out


def test_touch_commits_before_close_returns(two):
    """While a dup of the fd holds the open file (no RELEASE can come),
    close of the other fd has committed the empty text already."""
    a, b, conn = two()
    os.mkdir(custom(a, 'touched'))
    fd = open_info(a, 'touched')
    keep = os.dup(fd)
    try:
        assert ename(close_errno(fd)) == 'success'
        assert 'touched' in committed(conn, BJ)
        assert ops_count(conn, BJ) == charged(1)
    finally:
        assert ename(close_errno(keep)) == 'success'
    assert ops_count(conn, BJ) == charged(1)


def test_touch_at_the_limit_is_refused_by_close(two):
    """The other daemon used the day's last operation after this one's
    open: close says EAGAIN and the image stays pending."""
    a, b, conn = two(ops={BJ: MAX_OPS - 1})
    os.mkdir(custom(a, 'late'))
    os.mkdir(custom(b, 'first'))
    fd = open_info(a, 'late')
    keep = os.dup(fd)
    assert commit_text(b, 'first', '') == 'success'
    assert ops_count(conn, BJ) == charged(MAX_OPS)
    assert ename(close_errno(fd)) == 'EAGAIN'
    assert ename(close_errno(keep)) == 'EAGAIN'
    assert pending(conn, BJ) == ['late']
    assert sorted(committed(conn, BJ)) == ['first']
    assert listing(custom(a, 'late')) == []
    assert ops_count(conn, BJ) == charged(MAX_OPS)


def test_what_close_said_was_stored_holds_its_operation(two):
    """close said the empty text was stored, while a dup of the fd holds
    the open file: the day's last operation is its, and the other daemon
    is refused it (before, the commit came at the RELEASE, and was refused
    then, with nobody told)."""
    a, b, conn = two(ops={BJ: MAX_OPS - 1})
    os.mkdir(custom(a, 'told'))
    os.mkdir(custom(b, 'after'))
    keep = first_flush(a, 'told')
    assert commit_text(b, 'after', '') == 'EAGAIN'
    assert ename(close_errno(keep)) == 'success'
    assert sorted(committed(conn, BJ)) == ['told']
    assert pending(conn, BJ) == ['after']
    assert ops_count(conn, BJ) == charged(MAX_OPS)


def test_the_last_operation_goes_to_one_daemon(two):
    """touch in one daemon and in the other at the limit: the first close
    takes the last operation, the second close is refused."""
    a, b, conn = two(ops={BJ: MAX_OPS - 1})
    os.mkdir(custom(a, 'one'))
    os.mkdir(custom(b, 'two'))
    fa, fb = open_info(a, 'one'), open_info(b, 'two')
    assert ename(close_errno(fa)) == 'success'
    assert ename(close_errno(fb)) == 'EAGAIN'
    assert sorted(committed(conn, BJ)) == ['one']
    assert pending(conn, BJ) == ['two']
    assert ops_count(conn, BJ) == charged(MAX_OPS)


def dup_then_write(mnt, name, text, region=BJ):
    """What a shell's '>' does: open, dup2 onto another fd, close the
    first (a flush with nothing written), write, close. The errno symbols
    of (the first close, the write, the last close)."""
    fd = open_info(mnt, name, region)
    out = os.dup(fd)
    first = close_errno(fd)
    try:
        write_all(out, text)
        wrote = 0
    except OSError as e:
        wrote = e.errno
    last = close_errno(out)
    return tuple(ename(e) for e in (first, wrote, last))


def test_text_after_the_first_flush_is_one_operation(two):
    a, b, conn = two(ops={BJ: MAX_OPS - 1})
    os.mkdir(custom(a, 'echoed'))
    assert dup_then_write(a, 'echoed', 'DESCRIPTION="after a dup2"\n'
                          'ARCH=arm64\n') == OK3
    info = read_info(os.path.join(custom(a, 'echoed'), 'info'))
    assert info['DESCRIPTION'] == 'after a dup2'
    assert info['ARCH'] == 'arm64'
    assert ops_count(conn, BJ) == charged(MAX_OPS)   # one, at the limit
    # the other daemon shows the text, not the defaults
    got = parse_info(open(os.path.join(custom(b, 'echoed'), 'info'),
                          'rb').read())
    assert got['DESCRIPTION'] == 'after a dup2'
    assert got['ID'] == info['ID']


def test_sh_echo_and_cat_charge_one_operation(two, tmp_path):
    a, b, conn = two()
    os.mkdir(custom(a, 'echoed'))
    r = run(['sh', '-c', 'echo \'DESCRIPTION="by echo"\' > info'],
            cwd=custom(a, 'echoed'))
    assert r.returncode == 0, r.stderr
    assert read_info(os.path.join(custom(a, 'echoed'), 'info'))[
        'DESCRIPTION'] == 'by echo'
    assert ops_count(conn, BJ) == charged(1)
    saved = tmp_path / 'saved-info'
    saved.write_text('INSTANCE=ins-abcd1234\nDESCRIPTION="by cat"\n')
    os.mkdir(custom(a, 'catted'))
    r = run(['bash', '-c', 'cat "$0" > info', os.fspath(saved)],
            cwd=custom(a, 'catted'))
    assert r.returncode == 0, r.stderr
    info = read_info(os.path.join(custom(a, 'catted'), 'info'))
    assert info['SOURCE'] == 'instance:ins-abcd1234'
    assert info['DESCRIPTION'] == 'by cat'
    assert ops_count(conn, BJ) == charged(2)


def test_copy_text_after_the_first_flush_is_charged_to_the_source(two):
    """The flush made the image in BJ (charged there); the copy text that
    follows makes it a copy of a GZ image: BJ's charge is given back and
    GZ is charged, in one transaction."""
    a, b, conn = two()
    ident = image_id(conn, WEB)
    os.mkdir(custom(a, 'copied'))
    assert dup_then_write(a, 'copied', 'ID=%s\n' % ident) == OK3
    info = read_info(os.path.join(custom(a, 'copied'), 'info'))
    assert info['SOURCE'] == 'copy:%s@%s' % (ident, GZ)
    assert ops_count(conn, BJ) == charged(0)
    assert ops_count(conn, GZ) == charged(1)


def test_refused_text_after_the_first_flush_leaves_it_pending(two):
    """The source's region used its day's operations (the other daemon):
    the write says EAGAIN, and the image the first flush made is pending
    again, its charge given back."""
    a, b, conn = two(ops={GZ: MAX_OPS - 1})
    ident = image_id(conn, WEB)
    os.mkdir(custom(a, 'refused'))
    out = first_flush(a, 'refused')
    assert 'refused' in committed(conn, BJ)
    os.rename(custom(b, AGENT, GZ), custom(b, 'agent-2', GZ))  # GZ's last
    expect_errno(errno.EAGAIN, write_all, out, 'ID=%s\n' % ident)
    assert ename(close_errno(out)) == 'EAGAIN'
    assert pending(conn, BJ) == ['refused']
    assert listing(custom(a, 'refused')) == []
    assert ops_count(conn, BJ) == charged(0)
    assert ops_count(conn, GZ) == charged(MAX_OPS)
    # and it takes a text again
    assert commit_text(a, 'refused', 'DESCRIPTION=again\n') == 'success'
    assert ops_count(conn, BJ) == charged(1)


def test_listings_read_meanwhile_show_no_refused_info(two):
    """Readers list a pending image's directory without pause while a
    refused text comes and goes: a reader may still be copying into the
    kernel's cache a listing answered while the writer held info; the
    writer's own next listing must not show it. Nor a scratch file made
    and unlinked: the kernel checks its copy against the directory's
    version seen by the last reader to start, not by the one it holds."""
    a, b, conn = two()
    path = custom(a, 'listed')
    os.mkdir(path)
    stop = threading.Event()
    errors = []

    def reader():
        try:
            while not stop.is_set():
                os.listdir(path)
        except OSError as e:
            errors.append(ename(e.errno))

    readers = [threading.Thread(target=reader) for _ in range(3)]
    for t in readers:
        t.start()
    shown = []
    try:
        for k in range(ROUNDS):
            if k % 2:
                scratch = os.path.join(path, '.info.swp')
                with open(scratch, 'w') as f:
                    f.write('NAME=x\n')
                os.unlink(scratch)
            else:
                assert commit_text(a, 'listed', 'BOGUS=1\n') == 'EINVAL'
            got = listing(path)
            if got:
                shown.append((k, got))
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert errors == []
    assert shown == []
    assert pending(conn, BJ) == ['listed']


def test_refused_at_the_last_close_leaves_it_pending(two):
    """The write's check passed; the other daemon then used the source
    region's last operation: the last close says EAGAIN, the image is
    pending again."""
    a, b, conn = two(ops={GZ: MAX_OPS - 1})
    ident = image_id(conn, WEB)
    os.mkdir(custom(a, 'late'))
    out = first_flush(a, 'late')
    write_all(out, 'ID=%s\n' % ident)
    os.rename(custom(b, AGENT, GZ), custom(b, 'agent-2', GZ))
    assert ename(close_errno(out)) == 'EAGAIN'
    assert pending(conn, BJ) == ['late']
    assert ops_count(conn, BJ) == charged(0)
    assert ops_count(conn, GZ) == charged(MAX_OPS)


def test_copy_from_a_region_without_copies_leaves_it_pending(two):
    a, b, conn = two()
    os.mkdir(custom(a, 'sg', SG))
    assert dup_then_write(a, 'sg', 'DESCRIPTION=sg\n', SG) == OK3
    ident = read_info(os.path.join(custom(a, 'sg', SG), 'info'))['ID']
    os.mkdir(custom(a, 'from-sg'))
    assert dup_then_write(a, 'from-sg', 'ID=%s\n' % ident) == \
        ('success', 'EOPNOTSUPP', 'EOPNOTSUPP')
    assert pending(conn, BJ) == ['from-sg']
    assert ops_count(conn, BJ) == charged(0)


def test_shared_meanwhile_is_kept(two):
    """The other mount shared the image the first flush made: it is in use,
    the text that follows cannot make it again (EBUSY), and it stays."""
    a, b, conn = two()
    os.mkdir(custom(a, 'kept'))
    out = first_flush(a, 'kept')
    peer = os.path.join(b, BJ, 'shared', '100000000002')
    os.mkdir(peer)
    os.symlink('../../custom/kept', os.path.join(peer, 'kept'))
    expect_errno(errno.EBUSY, write_all, out, 'DESCRIPTION=late\n')
    assert ename(close_errno(out)) == 'EBUSY'
    assert 'kept' in committed(conn, BJ)
    assert ops_count(conn, BJ) == charged(2)    # the commit, the share


def test_amend_across_midnight(mount, seeded_db, catalog, tmp_path):
    """The first flush at 23:59:50 UTC+8, the text after midnight: the
    operation is charged once, to the day it was finally made."""
    if not os.path.exists(FAKETIME_LIB):
        pytest.skip('libfaketime not installed (apt-get install faketime)')
    db = seeded_db()
    conn = catalog(db)
    before, after = '2026-11-28', '2026-11-29'
    conn.execute('INSERT INTO ops (account, region, day, count) VALUES '
                 '(?, ?, ?, ?)', ('100000000001', BJ, before, MAX_OPS - 1))
    conn.commit()
    clock = tmp_path / 'faketime'
    clock.write_text('@2026-11-28 15:59:50\n')
    mnt = mount(db=db, env=faketime_env(clock))
    os.mkdir(custom(mnt, 'midnight'))
    out = first_flush(mnt, 'midnight')
    assert ops_count(conn, BJ, day=before) == charged(MAX_OPS)
    clock.write_text('@2026-11-28 16:00:30\n')
    write_all(out, 'DESCRIPTION="a new day"\n')
    assert ename(close_errno(out)) == 'success'
    assert ops_count(conn, BJ, day=before) == charged(MAX_OPS - 1)
    assert ops_count(conn, BJ, day=after) == charged(1)
    assert read_info(os.path.join(custom(mnt, 'midnight'), 'info'))[
        'DESCRIPTION'] == 'a new day'


# --- the everyday tools ------------------------------------------------------

EMPTY_TOOLS = {
    'touch': lambda d, src: ['touch', os.path.join(d, 'info')],
    'cp /dev/null': lambda d, src: ['cp', '/dev/null',
                                    os.path.join(d, 'info')],
    'cp an empty file': lambda d, src: ['cp', src, os.path.join(d, 'info')],
    'sh :>': lambda d, src: ['sh', '-c', ': > "$0"/info', d],
    'bash :>': lambda d, src: ['bash', '-c', ': > "$0"/info', d],
}


@pytest.mark.parametrize('tool', sorted(EMPTY_TOOLS))
def test_empty_info_tools(two, tmp_path, tool):
    """Each makes one image with the defaults, charged once; at the limit
    (the other daemon used it) the tool is told (shells ignore close: the
    image stays pending, with nothing charged)."""
    a, b, conn = two(ops={BJ: MAX_OPS - 2})
    src = tmp_path / 'empty'
    src.write_bytes(b'')
    os.mkdir(custom(a, 'made'))
    r = run(EMPTY_TOOLS[tool](custom(a, 'made'), os.fspath(src)))
    assert r.returncode == 0, r.stderr
    assert 'made' in committed(conn, BJ)
    assert ops_count(conn, BJ) == charged(MAX_OPS - 1)
    os.mkdir(custom(a, 'refused'))
    os.mkdir(custom(b, 'other'))
    assert commit_text(b, 'other', '') == 'success'
    r = run(EMPTY_TOOLS[tool](custom(a, 'refused'), os.fspath(src)))
    if tool.endswith(':>'):
        assert r.returncode == 0, r.stderr
    else:
        assert r.returncode != 0, 'told a refused info was stored'
    assert pending(conn, BJ) == ['refused']
    assert ops_count(conn, BJ) == charged(MAX_OPS)


def test_tar_and_rsync_of_a_folder_with_an_empty_info(two, tmp_path):
    a, b, conn = two(ops={BJ: MAX_OPS - 2})
    tree = tmp_path / 'tree'
    (tree / 'from-tar').mkdir(parents=True)
    (tree / 'from-tar' / 'info').write_bytes(b'')
    (tree / 'from-rsync').mkdir()
    (tree / 'from-rsync' / 'info').write_bytes(b'')
    tarball = tmp_path / 'one.tar'
    r = run(['tar', '-C', os.fspath(tree), '-cf', os.fspath(tarball),
             'from-tar'])
    assert r.returncode == 0, r.stderr
    r = run(['tar', '-C', custom(a), '-xf', os.fspath(tarball)])
    assert r.returncode == 0, r.stderr
    r = run(['rsync', '-r', os.fspath(tree / 'from-rsync'), custom(a)])
    assert r.returncode == 0, r.stderr
    assert sorted(committed(conn, BJ)) == ['from-rsync', 'from-tar']
    assert ops_count(conn, BJ) == charged(MAX_OPS)
    # at the limit, each is told
    (tree / 'from-tar').rename(tree / 'tar-late')
    (tree / 'from-rsync').rename(tree / 'rsync-late')
    r = run(['tar', '-C', os.fspath(tree), '-cf', os.fspath(tarball),
             'tar-late'])
    assert r.returncode == 0, r.stderr
    r = run(['tar', '-C', custom(a), '-xf', os.fspath(tarball)])
    assert r.returncode != 0, 'tar was told a refused info was stored'
    r = run(['rsync', '-r', os.fspath(tree / 'rsync-late'), custom(a)])
    assert r.returncode != 0, 'rsync was told a refused info was stored'
    assert sorted(committed(conn, BJ)) == ['from-rsync', 'from-tar']
    assert ops_count(conn, BJ) == charged(MAX_OPS)


def test_editors_write_a_pending_info(two, tmp_path):
    """vim and nano save a new info into a pending image: one operation
    each, the text they saved."""
    a, b, conn = two()
    os.mkdir(custom(a, 'vim'))
    r = run(['vim', '-es', '-u', 'NONE', '-i', 'NONE', '-c',
             'call setline(1, \'DESCRIPTION="by vim"\')', '-c', 'wq',
             'info'], cwd=custom(a, 'vim'), env=tool_env(tmp_path))
    assert r.returncode == 0, r.stderr
    assert read_info(os.path.join(custom(a, 'vim'), 'info'))[
        'DESCRIPTION'] == 'by vim'
    assert ops_count(conn, BJ) == charged(1)
    os.mkdir(custom(a, 'nano'))
    status = drive_tty(['nano', 'info'], [
        (b'New File', b'DESCRIPTION="by nano"\r'),
        (b'by nano', b'\x0f'),                 # ^O: write out
        (b'File Name to Write', b'\r'),
        (b'Wrote', b'\x18')],                  # ^X: exit
        cwd=custom(a, 'nano'), env=tool_env(tmp_path, TERM='xterm'))
    assert status == 0
    assert read_info(os.path.join(custom(a, 'nano'), 'info'))[
        'DESCRIPTION'] == 'by nano'
    assert ops_count(conn, BJ) == charged(2)
