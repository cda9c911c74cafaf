# SPDX-License-Identifier: GPL-2.0
"""A loopback HTTP(S) server of disk images for the import tests (issue 5).

    srv = ImageServer({'disk.qcow2': '/tmp/.../disk.qcow2'}).start()
    srv.url('disk.qcow2')                       # 200 with Content-Length
    srv.url('disk.qcow2', length=0)             # no Content-Length
    srv.stop()

Bound to 127.0.0.1 on a port the kernel picks, one thread per request, and
everything it does is bounded in time: a trickle or a hang ends when the
server stops (or after HANG_MAX s), so teardown never waits on a client.

One path per file, /files/<name>, and what the answer looks like comes from
the query (several may be combined, in the order below):

    tag=X          nothing; makes a URL unique (its own hit counter)
    auth=1         401 unless the request carries Basic credentials
                   server.credentials ('user:password', kept out of URLs)
    redirect=N     302 to the same URL with redirect=N-1 (0: the file)
    status=N       answer N (404, 500 ...) with a short body
    fail=K         500 for the first K requests of this URL, then the file
    hang=1         read the request, then send nothing until stopped
    length=0       no Content-Length: close-delimited (HTTP/1.0 style)
    chunked=1      no Content-Length: Transfer-Encoding: chunked
    cut=N          announce the whole length, send N bytes, close
    chunk=N&delay=S  send N bytes every S seconds (a trickle)

Every request is recorded (hits(), requests()), and the number of file
bodies being sent at once is tracked (active(), max_active()).
"""

import base64
import http.server
import os
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse

HANG_MAX = 60.0         # s: a hang or trickle never lasts longer than this
SEND_BLOCK = 64 * 1024


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'imageserver/1'

    def log_message(self, fmt, *args):
        self.server.owner._log(fmt % args)

    def do_HEAD(self):
        self._serve(head=True)

    def do_GET(self):
        self._serve(head=False)

    # --- helpers ---

    def _small(self, status, text, extra=()):
        body = (text + '\n').encode()
        self.send_response(status)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Content-Length', str(len(body)))
        self.send_header('Connection', 'close')
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)
        self.close_connection = True

    def _wait(self, seconds):
        """Sleep seconds, or less when the server stops; False if stopped."""
        return not self.server.owner.stopping.wait(seconds)

    def _serve(self, head):
        owner = self.server.owner
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        n = owner._record(self.path, self.headers)
        if not url.path.startswith('/files/'):
            return self._small(404, 'not found')
        name = urllib.parse.unquote(url.path[len('/files/'):])
        path = owner.files.get(name)
        if 'auth' in q:
            want = 'Basic ' + base64.b64encode(
                owner.credentials.encode()).decode()
            if self.headers.get('Authorization') != want:
                return self._small(401, 'who are you', [
                    ('WWW-Authenticate', 'Basic realm="images"')])
        if 'redirect' in q and int(q['redirect']) > 0:
            q2 = dict(q, redirect=str(int(q['redirect']) - 1))
            loc = url.path + '?' + urllib.parse.urlencode(q2)
            return self._small(302, 'moved', [('Location', loc)])
        if 'status' in q:
            return self._small(int(q['status']), 'status %s' % q['status'])
        if 'fail' in q and n <= int(q['fail']):
            return self._small(500, 'try again later')
        if q.get('hang'):
            self._wait(HANG_MAX)
            self.close_connection = True
            return None
        if path is None:
            return self._small(404, 'no such file')
        with open(path, 'rb') as f:
            data = f.read()
        self._send_file(data, q, head)
        return None

    def _send_file(self, data, q, head):
        owner = self.server.owner
        chunked = q.get('chunked') == '1'
        length = q.get('length') != '0' and not chunked
        cut = int(q['cut']) if 'cut' in q else None
        chunk = int(q.get('chunk', SEND_BLOCK))
        delay = float(q.get('delay', 0))

        if length:
            self.send_response(200)
        else:
            # close-delimited bodies are HTTP/1.0 only
            if not chunked:
                self.protocol_version = 'HTTP/1.0'
            self.send_response(200)
        self.send_header('Content-Type', 'application/octet-stream')
        if length:
            self.send_header('Content-Length', str(len(data)))
        if chunked:
            self.send_header('Transfer-Encoding', 'chunked')
        self.send_header('Connection', 'close')
        self.end_headers()
        self.close_connection = True
        if head:
            return
        body = data if cut is None else data[:cut]
        owner._body(+1)
        try:
            deadline = time.monotonic() + HANG_MAX
            for off in range(0, len(body), chunk):
                if off and delay and not self._wait(delay):
                    return                      # stopped: just close
                if time.monotonic() > deadline:
                    return
                piece = body[off:off + chunk]
                if chunked:
                    self.wfile.write(b'%x\r\n' % len(piece) + piece + b'\r\n')
                else:
                    self.wfile.write(piece)
                self.wfile.flush()
                owner._sent(self.path, len(piece))
            if chunked:
                self.wfile.write(b'0\r\n\r\n')
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError,
                socket.timeout):
            owner._log('client went away: %s' % self.path)
        finally:
            owner._body(-1)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, owner, context=None):
        self.owner = owner
        self.context = context
        super().__init__(('127.0.0.1', 0), _Handler)

    def finish_request(self, request, client_address):
        # TLS handshake in the request's own thread, bounded in time
        if self.context is not None:
            request.settimeout(10)
            try:
                request = self.context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as e:
                self.owner._log('TLS handshake failed: %s' % e)
                self.owner.tls_failures += 1
                return
        else:
            request.settimeout(HANG_MAX + 10)
        super().finish_request(request, client_address)


class ImageServer:
    """The server: files maps a name to a file path; certfile/keyfile make
    it an HTTPS server."""

    def __init__(self, files, certfile=None, keyfile=None):
        self.files = dict(files)
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self._hits = {}
        self._requests = []
        self._active = 0
        self._max_active = 0
        self._bytes = {}
        self.log = []
        self.tls_failures = 0
        self.credentials = 'user:password'     # what auth=1 asks for
        context = None
        if certfile:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(certfile, keyfile)
        self.scheme = 'https' if context else 'http'
        self.httpd = _Server(self, context)
        self.port = self.httpd.server_address[1]
        self.thread = None

    # --- life ---

    def start(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={'poll_interval': 0.05},
                                       name='imageserver', daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- URLs ---

    def base(self):
        return '%s://127.0.0.1:%d' % (self.scheme, self.port)

    def url(self, name, userinfo=None, **query):
        """The URL of file name with the query options above."""
        netloc = '127.0.0.1:%d' % self.port
        if userinfo:
            netloc = userinfo + '@' + netloc
        q = urllib.parse.urlencode(query)
        return '%s://%s/files/%s%s' % (self.scheme, netloc,
                                       urllib.parse.quote(name),
                                       '?' + q if q else '')

    # --- what happened ---

    def _log(self, line):
        with self.lock:
            self.log.append(line)

    def _record(self, path, headers):
        with self.lock:
            self._hits[path] = self._hits.get(path, 0) + 1
            self._requests.append((time.monotonic(), path, dict(headers)))
            return self._hits[path]

    def _body(self, delta):
        with self.lock:
            self._active += delta
            self._max_active = max(self._max_active, self._active)

    def _sent(self, path, n):
        with self.lock:
            self._bytes[path] = self._bytes.get(path, 0) + n

    def hits(self, url_or_path):
        """How many requests asked for this URL (or path with query)."""
        p = urllib.parse.urlsplit(url_or_path)
        path = p.path + ('?' + p.query if p.query else '')
        with self.lock:
            return self._hits.get(path, 0)

    def sent(self, url_or_path):
        p = urllib.parse.urlsplit(url_or_path)
        path = p.path + ('?' + p.query if p.query else '')
        with self.lock:
            return self._bytes.get(path, 0)

    def requests(self):
        with self.lock:
            return list(self._requests)

    def active(self):
        with self.lock:
            return self._active

    def max_active(self):
        with self.lock:
            return self._max_active


def make_cert(directory):
    """A self-signed certificate for 127.0.0.1: (certfile, keyfile)."""
    cert = os.path.join(directory, 'cert.pem')
    key = os.path.join(directory, 'key.pem')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048',
                    '-nodes', '-subj', '/CN=127.0.0.1',
                    '-addext', 'subjectAltName=IP:127.0.0.1',
                    '-days', '2', '-keyout', key, '-out', cert],
                   check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=60)
    return cert, key


def refused_port():
    """(socket, port): a port bound on 127.0.0.1 that never listens, so
    connecting to it is refused while the socket is held open."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(('127.0.0.1', 0))
    return s, s.getsockname()[1]
