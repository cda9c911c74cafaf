# SPDX-License-Identifier: GPL-2.0
"""Helpers the mounted tests share: the info syntax, errno checks, tools.

The mount fixture itself is in conftest.py.
"""

import errno
import os
import re
import subprocess

import pytest

# The bytes of a bare value, and a key, in the info syntax (DESIGN.md 2).
BARE_RE = re.compile(r'[A-Za-z0-9._:,/+@-]*')
KEY_RE = re.compile(r'([A-Z][A-Z0-9_]*)=')

# Tools see names and numbers as they are.
TOOL_ENV = dict(os.environ, LC_ALL='C.UTF-8', QUOTING_STYLE='literal')


def parse_info_pairs(data, where='info'):
    """The (key, value) pairs of an info text, checking its syntax.

    os-release syntax as DESIGN.md section 2 says: one KEY=VALUE a line, a
    value bare when made only of A-Za-z0-9._:,/+@- and otherwise in double
    quotes with backslash, double quote, $ and backquote escaped; absent
    keys omitted, none repeated.
    """
    text = data.decode('utf-8')
    assert text.endswith('\n'), '%s: no final newline' % where
    pairs = []
    i = 0
    while i < len(text):
        m = KEY_RE.match(text, i)
        assert m, '%s: not KEY=VALUE at %r' % (where, text[i:i + 40])
        key, i = m.group(1), m.end()
        if text.startswith('"', i):
            i += 1
            value = []
            while True:
                assert i < len(text), '%s: %s: unterminated' % (where, key)
                c = text[i]
                if c == '"':
                    i += 1
                    break
                assert c not in '$`', \
                    '%s: %s: unescaped %r: sh would expand it' % (where, key, c)
                if c == '\\' and text[i + 1:i + 2] in ('\\', '"', '$', '`'):
                    value.append(text[i + 1])
                    i += 2
                    continue
                value.append(c)
                i += 1
            value = ''.join(value)
            assert not BARE_RE.fullmatch(value), \
                '%s: %s: %r is quoted but could be bare' % (where, key, value)
        else:
            value = BARE_RE.match(text, i).group(0)
            i += len(value)
        assert text.startswith('\n', i), \
            '%s: %s: junk after the value: %r' % (where, key, text[i:i + 40])
        i += 1
        assert value != '', '%s: %s is empty: absent keys are omitted' % (
            where, key)
        pairs.append((key, value))
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), '%s: repeated keys %s' % (where, keys)
    return pairs


def parse_info(data, where='info'):
    """The key/value dict of an info text (checked as parse_info_pairs)."""
    return dict(parse_info_pairs(data, where))


def read_info(path):
    with open(path, 'rb') as f:
        return parse_info(f.read(), path)


def quote(value):
    """A value as the info syntax writes it."""
    if value and BARE_RE.fullmatch(value):
        return value
    return '"%s"' % re.sub(r'([\\"$`])', r'\\\1', value)


def render(info):
    return ''.join('%s=%s\n' % (k, quote(v)) for k, v in info.items())


def listing(path):
    return sorted(os.listdir(path))


def ename(e):
    """The errno symbol (EOPNOTSUPP, as DESIGN.md names it, not ENOTSUP)."""
    if not e:
        return 'success'
    if e == errno.EOPNOTSUPP:
        return 'EOPNOTSUPP'
    return errno.errorcode.get(e, str(e))


def names(errnos):
    if isinstance(errnos, int):
        errnos = (errnos,)
    return '/'.join(ename(e) for e in errnos)


def expect_errno(errnos, func, *args):
    """Call func(*args); it must fail with one of errnos (returned)."""
    if isinstance(errnos, int):
        errnos = (errnos,)
    what = getattr(func, '__name__', func)
    try:
        func(*args)
    except OSError as e:
        assert e.errno in errnos, '%s%r: %s, expected %s' % (
            what, args, ename(e.errno), names(errnos))
        return e.errno
    pytest.fail('%s%r succeeded, expected %s' % (what, args, names(errnos)))


def write_all(fd, data):
    """Write all of data; a short write goes on until an error shows."""
    if isinstance(data, str):
        data = data.encode()
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def write_file(path, text, flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC):
    """open, write, close: each must succeed."""
    fd = os.open(path, flags, 0o644)
    try:
        write_all(fd, text)
    except BaseException:
        try:
            os.close(fd)
        except OSError:
            pass
        raise
    os.close(fd)


def create_exclusive(path):
    """open(O_CREAT | O_EXCL) and close: a new, empty file."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))


def run(cmd, cwd=None, env=None, input=None, timeout=30):
    """A tool, its output captured, with TOOL_ENV unless env is given."""
    return subprocess.run(cmd, cwd=cwd, env=env or TOOL_ENV, input=input,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout)


def drive_tty(argv, steps, cwd=None, env=None, timeout=20):
    """Run argv on a pseudo-terminal (an editor) and type into it.

    steps: (marker, keys) pairs: wait until the screen output holds marker
    (bytes), then type keys. Returns the exit status, or fails the test
    naming the marker that never came (the program is killed).
    """
    import pty
    import select
    import signal
    import time

    pid, fd = pty.fork()
    if pid == 0:
        try:
            if cwd:
                os.chdir(cwd)
            os.execvpe(argv[0], argv, env or TOOL_ENV)
        finally:
            os._exit(127)
    seen = b''
    try:
        for marker, keys in steps:
            deadline = time.monotonic() + timeout
            while marker not in seen:
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail('%s: no %r on the screen; last: %r' % (
                        argv[0], marker, seen[-300:]))
                ready, _, _ = select.select([fd], [], [], left)
                if ready:
                    try:
                        seen += os.read(fd, 65536)
                    except OSError:
                        pytest.fail('%s ended before %r' % (argv[0],
                                                           marker))
            seen = b''
            os.write(fd, keys)
        deadline = time.monotonic() + timeout
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                pid = 0
                return os.waitstatus_to_exitcode(status)
            if time.monotonic() > deadline:
                pytest.fail('%s did not exit' % argv[0])
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                try:
                    os.read(fd, 65536)
                except OSError:
                    pass
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
