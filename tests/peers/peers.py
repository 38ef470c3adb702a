"""Starts and stops the real protocol peers on loopback for tests, the demo and benchmarks.

Each peer binds 127.0.0.1 on a free port, keeps its data under a directory the caller owns, has
telemetry off, and is killed (with its data left for inspection) when stopped.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".peers" / "bin"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, timeout=30.0, what="peer"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout}s")


def require(binary):
    path = BIN / binary
    if not path.exists():
        subprocess.run(["bash", str(ROOT / "tests" / "peers" / "build"), binary if binary in (
            "ferretdb", "restic", "kopia", "fake-gcs-server", "versitygw") else "mongo-tools"], check=True)
    return path


class Peer:
    """A server process on loopback: stopped on exit from a `with` block."""
    proc = None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class SyntheticGcs(Peer):
    """A FAKE GCS JSON API that makes its objects up (tests/peers/synthetic_gcs.py): millions of them,
    no storage. Read-only; bucket `synthetic`."""

    def __init__(self, objects, per_folder=1000, empty=False):
        self.port = free_port()
        self.args = ["--objects", str(objects), "--per-folder", str(per_folder)] + (["--empty"] if empty else [])
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def start(self):
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("synthetic_gcs.py")), "--port", str(self.port),
                                      *self.args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, self.proc, what="synthetic GCS")
        return self

    def env(self):
        return {"CLOUD_STORAGE_EMULATOR_ENDPOINT": self.endpoint}


class AckMongo(Peer):
    """A FAKE MongoDB (tests/peers/ack_mongo.py) that acknowledges every write and stores nothing: a
    restore tool's client path measured alone."""

    def __init__(self):
        self.port = free_port()
        self.uri = f"mongodb://127.0.0.1:{self.port}/"

    def start(self):
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("ack_mongo.py")), "--port", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, self.proc, what="acknowledging MongoDB")
        return self


class FerretDB(Peer):
    """FerretDB v1 (MongoDB wire protocol) on SQLite, with local.oplog.rs created so changes are logged."""

    def __init__(self, workdir: Path, oplog_bytes=512 * 1024 * 1024):
        self.dir = Path(workdir)
        self.port = free_port()
        self.uri = f"mongodb://127.0.0.1:{self.port}/"
        self.oplog_bytes = oplog_bytes
        self.proc = None

    def start(self):
        data, state = self.dir / "data", self.dir / "state"
        data.mkdir(parents=True, exist_ok=True)
        state.mkdir(parents=True, exist_ok=True)
        self.log = open(self.dir / "ferretdb.log", "ab")
        self.proc = subprocess.Popen(
            [str(require("ferretdb")), "--handler=sqlite", f"--sqlite-url=file:{data}/",
             f"--listen-addr=127.0.0.1:{self.port}", f"--state-dir={state}", "--debug-addr=-",
             "--telemetry=disable", "--repl-set-name=rs0", "--log-level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.proc, what="ferretdb")
        if self.oplog_bytes:
            self.create_oplog(self.oplog_bytes)
        return self

    def client(self):
        import pymongo
        return pymongo.MongoClient(self.uri, directConnection=True, serverSelectionTimeoutMS=5000)

    def create_oplog(self, size):
        c = self.client()
        if "oplog.rs" not in c.local.list_collection_names():
            c.local.create_collection("oplog.rs", capped=True, size=size)
        c.close()



class CuttingProxy:
    """A TCP proxy on loopback that forwards to a port and cuts every connection once `cut_after`
    bytes have flowed back to the client: a server that dies mid-stream."""

    def __init__(self, target_port, cut_after):
        self.target_port = target_port
        self.cut_after = cut_after
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        self.cuts = 0  # connections cut after `cut_after` bytes (proof the server went away mid-stream)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pipe, args=(client, upstream, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, self.cut_after), daemon=True).start()

    def _pipe(self, src, dst, limit):
        sent = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if limit is not None and sent + len(data) > limit:
                    self.cuts += 1
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self):
        self.closed = True
        self.sock.close()


def mongo_tool(name):
    return str(require(name))


def rmtree(path):
    shutil.rmtree(path, ignore_errors=True)



class VersityGW(Peer):
    """versitygw (S3 with SigV4, versioning and object lock) on a POSIX directory."""

    access_key, secret_key = "lifeboat-test", "lifeboat-test-secret"

    def __init__(self, workdir: Path, iam=False):
        """iam: versitygw's own IAM (users, bucket policies) and its access log, for tests of what a
        credential may do and of which requests a client made."""
        self.dir = Path(workdir)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.iam = iam
        self.admin_port = free_port() if iam else None
        self.proc = None

    def start(self):
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        (self.dir / "versions").mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, ROOT_ACCESS_KEY=self.access_key, ROOT_SECRET_KEY=self.secret_key)
        self.log = open(self.dir / "versitygw.log", "ab")
        extra = []
        if self.iam:
            (self.dir / "iam").mkdir(parents=True, exist_ok=True)
            extra = ["--admin-port", f"127.0.0.1:{self.admin_port}", "--iam-dir", str(self.dir / "iam"),
                     "--access-log", str(self.dir / "access.log")]
        self.proc = subprocess.Popen([str(require("versitygw")), "--port", f"127.0.0.1:{self.port}", *extra, "posix",
                                      "--versioning-dir", str(self.dir / "versions"), str(self.dir / "data")],
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.proc, what="versitygw")
        if self.iam:
            wait_for_port(self.admin_port, self.proc, what="versitygw admin")
        return self

    def create_user(self, access, secret):
        """A user of role "user": it may touch only what a bucket policy grants it."""
        p = subprocess.run([str(require("versitygw")), "admin", "--access", self.access_key, "--secret", self.secret_key,
                            "--endpoint-url", f"http://127.0.0.1:{self.admin_port}", "create-user", "--access", access,
                            "--secret", secret, "--role", "user"], capture_output=True, text=True)
        assert p.returncode == 0, p.stdout + p.stderr

    def grant(self, bucket, user, actions):
        """A bucket policy allowing `user` exactly `actions` (e.g. s3:PutObject) on the bucket and its objects."""
        import json
        policy = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": [user]}, "Action": list(actions),
            "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]}
        self.client().put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))

    def requests(self, requester=None):
        """(requester, operation, status) of every request in the access log."""
        out = []
        path = self.dir / "access.log"
        for line in (path.read_text().splitlines() if path.exists() else []):
            f = line.split()
            if len(f) < 12 or not f[2].startswith("["):
                continue
            # owner bucket [time zone] ip requester request-id operation key uri status …
            who, op, status = f[5], f[7], f[10]
            if requester is None or who == requester:
                out.append((who, op, status))
        return out

    def env(self):
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}

    def client(self):
        import boto3
        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name="us-east-1")



class FakeGCS(Peer):
    """fake-gcs-server (GCS JSON API) with the memory backend (it keeps generations).

    With https=True it serves TLS with a certificate made here for 127.0.0.1 (gsutil speaks only
    https): Lifeboat trusts it through LIFEBOAT_CA_FILE and gsutil through its boto config."""

    def __init__(self, workdir: Path = None, https=False, preload: Path = None, filesystem: Path = None):
        """preload: a folder whose subfolders are loaded as buckets at start (fast for thousands of objects).
        filesystem: keep objects in this folder (its filesystem backend) instead of memory. The memory
        backend finds an object by scanning the whole bucket (a 10,000-object bucket takes 22 s to load and
        3-5 ms per read); the filesystem backend opens a file, but keeps no generations and fsyncs every
        object it stores, so give it a tmpfs folder."""
        self.port = free_port()
        self.https = https
        self.preload = preload
        self.filesystem = filesystem
        self.dir = Path(workdir) if workdir else None
        self.endpoint = f"{'https' if https else 'http'}://127.0.0.1:{self.port}"
        self.proc = None

    def start(self):
        args = [str(require("fake-gcs-server")), "-scheme", "https" if self.https else "http", "-host", "127.0.0.1",
                "-port", str(self.port), "-public-host", f"127.0.0.1:{self.port}", "-log-level", "error"]
        args += ["-backend", "filesystem", "-filesystem-root", str(self.filesystem)] if self.filesystem else ["-backend", "memory"]
        if self.preload:
            args += ["-data", str(self.preload)]
        if self.https:
            self.dir.mkdir(parents=True, exist_ok=True)
            self.cert, key = self.dir / "cert.pem", self.dir / "key.pem"
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                            "-out", str(self.cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                            "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
            args += ["-cert-location", str(self.cert), "-private-key-location", str(key)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, self.proc, what="fake-gcs-server")
        return self

    def env(self):
        e = {"CLOUD_STORAGE_EMULATOR_ENDPOINT": self.endpoint}
        if self.https:
            e["LIFEBOAT_CA_FILE"] = str(self.cert)
        return e

    def request(self, method, path, body=None, headers=None, raw=False):
        """One JSON API call (path after the endpoint); returns (status, parsed JSON, or bytes when raw)."""
        import http.client
        import json
        import ssl
        if self.https:
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=60,
                                               context=ssl.create_default_context(cafile=str(self.cert)))
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = dict(headers or {}, **{"Content-Type": "application/json"})
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        conn.close()
        if raw:
            return r.status, data
        try:
            return r.status, json.loads(data) if data else None
        except ValueError:
            return r.status, data

    def create_bucket(self, name, versioning=False):
        st, _ = self.request("POST", "/storage/v1/b", {"name": name, "versioning": {"enabled": versioning}})
        assert st == 200, st

    def put(self, bucket, name, data: bytes, **metadata):
        """Uploads an object with metadata (contentType, metadata, cacheControl, …); returns its resource."""
        import json
        from urllib.parse import quote
        boundary = "peerboundary81f2"
        meta = dict(metadata, name=name)
        body = (f"--{boundary}\r\nContent-Type: application/json\r\n\r\n{json.dumps(meta)}\r\n--{boundary}\r\n"
                f"Content-Type: {meta.get('contentType', 'application/octet-stream')}\r\n\r\n").encode() + data + \
            f"\r\n--{boundary}--\r\n".encode()
        st, j = self.request("POST", f"/upload/storage/v1/b/{quote(bucket, safe='')}/o?uploadType=multipart", body,
                             {"Content-Type": f"multipart/related; boundary={boundary}"})
        assert st == 200, (st, j)
        return j

    def list(self, bucket, prefix="", versions=False):
        """Every object resource under prefix (all pages)."""
        from urllib.parse import quote
        out, token = [], ""
        while True:
            q = f"/storage/v1/b/{quote(bucket, safe='')}/o?maxResults=1000&prefix={quote(prefix, safe='')}"
            if versions:
                q += "&versions=true"
            if token:
                q += f"&pageToken={quote(token, safe='')}"
            st, j = self.request("GET", q)
            assert st == 200, (st, j)
            out += j.get("items", [])
            token = j.get("nextPageToken", "")
            if not token:
                return out

    def get(self, bucket, name, generation=None):
        from urllib.parse import quote
        q = f"/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}?alt=media"
        if generation:
            q += f"&generation={generation}"
        st, data = self.request("GET", q, headers={"Accept-Encoding": "gzip"}, raw=True)
        assert st == 200, (st, data)
        return data

    def delete(self, bucket, name):
        from urllib.parse import quote
        self.request("DELETE", f"/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}")

    def boto_config(self, path: Path):
        """A BOTO_CONFIG for gsutil against this server (https only). gsutil's bundled httplib2 does not
        take our certificate as a CA (it still answers "self-signed"), so it skips verification on loopback."""
        path.write_text(f"""[Credentials]
gs_json_host = 127.0.0.1
gs_json_port = {self.port}
gs_host = 127.0.0.1
gs_port = {self.port}
[Boto]
https_validate_certificates = False
[GSUtil]
prefer_api = json
default_project_id = p
""")
        return {"BOTO_CONFIG": str(path), "CLOUDSDK_CORE_PASS_CREDENTIALS_TO_GSUTIL": "false",
                "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true", "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
                "GSUTIL_STATE_DIR": str(path.parent / "gsutil-state")}


class QuietHandler:
    """Mixed into the request handlers of the in-process servers below: HTTP/1.1, no request log, and
    one way to answer."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, data=b"", ctype="application/json", headers=()):
        data = data if isinstance(data, bytes) else json.dumps(data).encode()
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class LoopbackHttpServer:
    """A threaded HTTP server in this process on 127.0.0.1, stopped by close() or a `with` block."""

    def serve(self, handler):
        import http.server
        import socketserver

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class FaultyHttpProxy(LoopbackHttpServer):
    """A loopback HTTP proxy in front of an http:// peer that misbehaves on request: `rules` is a list of
    (method, path substring, action, count) with action a status such as "503", "429" or "403" (answer
    it), "cut" (send half the body, then close), "flip" (change the body's first byte), "garble" (200 with a
    body that is not JSON) or a callable (run before the request is forwarded, given the request body if
    it takes an argument; one that returns (status, JSON body) answers in the server's place); each rule fires `count` times (None: always). Every other
    request is forwarded as it is. `after` is a list of (method, path substring, callable): each runs with
    the request body once the server has answered a matching request, before the answer is passed on."""

    def __init__(self, target_port, rules=(), after=()):
        import http.server
        self.rules = [list(r) for r in rules]
        self.after = list(after)
        self.hits = []
        proxy = self

        class Handler(QuietHandler, http.server.BaseHTTPRequestHandler):
            def _handle(self):
                import http.client
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                action = proxy._match(self.command, self.path)
                if callable(action):  # something happens on the server first (an object vanishes, …)
                    import inspect
                    answer = action(body) if inspect.signature(action).parameters else action()
                    action = None
                    if isinstance(answer, tuple):  # or the callable answers itself: (status, JSON body)
                        return self.reply(answer[0], answer[1])
                if action and action.isdigit():  # answer with that status, a body shaped like the API's errors
                    return self.reply(int(action), b'{"error":{"code":%s,"message":"injected"}}' % action.encode())
                if action == "garble":
                    return self.reply(200, b"<html>not json", ctype=None)
                up = http.client.HTTPConnection("127.0.0.1", target_port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                up.request(self.command, self.path, body=body, headers=headers)
                r = up.getresponse()
                data = r.read()
                up.close()
                from urllib.parse import unquote
                for m, sub, fn in proxy.after:
                    if m == self.command and sub in unquote(self.path):
                        fn(body)
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if action == "flip" and data:  # same length, one byte changed: only a checksum can tell
                    data = bytes([data[0] ^ 0xFF]) + data[1:]
                if action == "cut" and len(data) > 1:
                    self.wfile.write(data[:len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        self.serve(Handler)
        self.endpoint = self.url

    def _match(self, method, path):
        from urllib.parse import unquote
        with threading.Lock():
            for r in self.rules:
                m, sub, action, count = r
                if m == method and sub in unquote(path) and (count is None or count > 0):
                    if count is not None:
                        r[3] -= 1
                    self.hits.append((method, path, action))
                    return action
        return None


def chromium_screenshot(url, png, width=1280, height=1800):
    """Renders a page in headless Chromium (network features and telemetry off) and saves a PNG;
    returns the DOM as Chromium saw it."""
    import shutil
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        raise RuntimeError("chromium is not installed (scripts/setup installs it)")
    flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             "--disable-background-networking", "--disable-sync", "--disable-component-update",
             "--disable-default-apps", "--metrics-recording-only", "--disable-breakpad", "--disable-crash-reporter",
             f"--window-size={width},{height}"]
    home = Path(png).parent / ".chromium"
    env = dict(os.environ, HOME=str(home))
    subprocess.run([exe, *flags, f"--user-data-dir={home}", f"--screenshot={png}", url], env=env, check=True,
                   capture_output=True, timeout=120)
    dom = subprocess.run([exe, *flags, f"--user-data-dir={home}", "--dump-dom", url], env=env, check=True,
                         capture_output=True, text=True, timeout=120).stdout
    return dom


def png_colours(png):
    """How many distinct colours a PNG (8-bit RGB/RGBA, as Chromium writes) uses: a blank page has one."""
    import struct
    import zlib
    data = Path(png).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, ctype = 8, b"", 0, 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", chunk[:10])
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    bpp = 4 if ctype == 6 else 3
    raw = zlib.decompress(idat)
    stride = width * bpp + 1
    colours = set()
    # Sample rows without unfiltering (filters keep distinct rows distinct enough to count as "not blank").
    for y in range(0, height, max(1, height // 200)):
        row = raw[y * stride + 1:(y + 1) * stride]
        colours.update(row[i:i + 3] for i in range(0, len(row), bpp * 7))
    return len(colours)


class SecretManagerFake(Peer):
    """tests/peers/secret_manager_fake.py: a FAKE of Secret Manager's REST v1 API (no emulator exists).

    Lifeboat reaches it through LIFEBOAT_SECRETMANAGER_ENDPOINT with a static bearer token."""

    def __init__(self, max_page=3):
        self.port = free_port()
        self.max_page = max_page
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def start(self):
        import sys
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "peers" / "secret_manager_fake.py"),
                                      "--port", str(self.port), "--max-page", str(self.max_page)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, self.proc, what="Secret Manager fake")
        return self

    def env(self, token="test-token"):
        return {"LIFEBOAT_SECRETMANAGER_ENDPOINT": self.endpoint, "GOOGLE_OAUTH_ACCESS_TOKEN": token,
                "LIFEBOAT_RETRY_BASE_MS": "20"}

    def call(self, method, path, body=None, token="test-token"):
        """One API call (path after /v1/ or a /_fake/ control path); returns (status, parsed JSON)."""
        import http.client
        import json
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        data = json.dumps(body).encode() if body is not None else None
        url = path if path.startswith("/_fake/") else "/v1/" + path
        conn.request(method, url, body=data, headers={"Authorization": f"Bearer {token}",
                                                     "Content-Type": "application/json"})
        r = conn.getresponse()
        out = r.read()
        conn.close()
        return r.status, json.loads(out) if out else None

    def create_secret(self, project, sid, labels=None, annotations=None):
        st, body = self.call("POST", f"{project}/secrets?secretId={sid}",
                             {"replication": {"automatic": {}}, "labels": labels or {}, "annotations": annotations or {}})
        assert st == 200, body
        return body

    def add_version(self, project, sid, data: bytes):
        import base64
        st, body = self.call("POST", f"{project}/secrets/{sid}:addVersion",
                             {"payload": {"data": base64.b64encode(data).decode()}})
        assert st == 200, body
        return int(body["name"].rsplit("/", 1)[1])


class Giftless(Peer):
    """Giftless (PyPI), a Git LFS server: batch API and basic transfers, objects on local disk, JWT auth.

    `lfs_url(org, repo)` is the endpoint with a token for every repository of `org` as HTTP basic
    credentials (user `_jwt`), as a repository's .lfsconfig names it."""

    KEY = "lifeboat-test-key-with-32-bytes!"

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.dir = Path(workdir)
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def start(self):
        import sys
        self.dir.mkdir(parents=True, exist_ok=True)
        config = self.dir / "giftless.yaml"
        config.write_text(f"""AUTH_PROVIDERS:
  - factory: giftless.auth.jwt:factory
    options: {{algorithm: HS256, private_key: "{self.KEY}"}}
PRE_AUTHORIZED_ACTION_PROVIDER:
  factory: giftless.auth.jwt:factory
  options: {{algorithm: HS256, private_key: "{self.KEY}", default_lifetime: 3600}}
TRANSFER_ADAPTERS:
  basic:
    factory: giftless.transfer.basic_streaming:factory
    options:
      storage_class: giftless.storage.local_storage:LocalStorage
      storage_options: {{path: "{self.dir / 'objects'}"}}
""")
        env = dict(os.environ, GIFTLESS_CONFIG_FILE=str(config), FLASK_DEBUG="0")
        self.proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "giftless.wsgi_entrypoint", "run",
                                      "--host", "127.0.0.1", "--port", str(self.port)], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(self.dir))
        wait_for_port(self.port, self.proc, what="giftless")
        return self

    def token(self, org):
        import jwt
        return jwt.encode({"sub": "lifeboat-tests", "exp": int(time.time()) + 7200, "scopes": [f"obj:{org}/*"]},
                          self.KEY, algorithm="HS256")

    def lfs_url(self, org, repo):
        return f"http://_jwt:{self.token(org)}@127.0.0.1:{self.port}/{org}/{repo}.git/info/lfs"


class MLflow(Peer):
    """An MLflow tracking server with its model registry (mlflow 3.17.2 in .peers/mlflow), SQLite
    backend, artifacts served by its proxy from a local folder; telemetry off. It forks workers, so it
    runs in its own process group and is stopped as a group."""

    PYTHON = ROOT / ".peers" / "mlflow" / "bin" / "python"
    ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.dir = Path(workdir).resolve()
        self.url = f"http://127.0.0.1:{self.port}"
        self.artifacts = self.dir / "artifacts"

    def start(self):
        import urllib.request
        if not self.PYTHON.exists():
            subprocess.run(["bash", str(ROOT / "scripts" / "setup")], check=True, env=dict(os.environ, LIFEBOAT_SKIP_PEERS="1"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([str(self.PYTHON.parent / "mlflow"), "server", "--backend-store-uri",
                                      f"sqlite:///{self.dir / 'mlflow.db'}", "--artifacts-destination", str(self.artifacts),
                                      "--host", "127.0.0.1", "--port", str(self.port), "--workers", "2"],
                                     env=dict(os.environ, **self.ENV), stdout=open(self.dir / "server.log", "wb"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 180
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited {self.proc.returncode}: see {self.dir / 'server.log'}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        raise RuntimeError("mlflow server did not answer /health within 180 s")

    def stop(self):
        import signal
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def python(self, script, *args, timeout=600):
        """Runs a Python script with mlflow and scikit-learn against this server; returns its stdout."""
        p = subprocess.run([str(self.PYTHON), "-c", script, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                           env=dict(os.environ, MLFLOW_TRACKING_URI=self.url, **self.ENV))
        if p.returncode != 0:
            raise RuntimeError(f"mlflow script failed: {p.stderr[-2000:]}")
        return p.stdout

    def api(self, method, path, body=None):
        import json
        import urllib.request
        req = urllib.request.Request(f"{self.url}/api/2.0/mlflow/{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")


class GitHttp(LoopbackHttpServer):
    """Git's own smart HTTP server (`git http-backend`, run as CGI) on loopback behind HTTP basic auth:
    every request without `user:password` gets 401, as a hosted git server asks for a token."""

    def __init__(self, root, user="alice", password="s3cret-git-pw"):
        import base64
        import http.server
        self.root, self.user, self.password = Path(root), user, password
        want = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        peer = self
        peer.requests = []

        class Handler(QuietHandler, http.server.BaseHTTPRequestHandler):
            def _handle(self):
                from urllib.parse import urlparse
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                peer.requests.append((self.command, self.path, self.headers.get("Authorization") == want))
                if self.headers.get("Authorization") != want:
                    return self.reply(401, ctype=None, headers=[("WWW-Authenticate", 'Basic realm="git"')])
                u = urlparse(self.path)
                env = dict(os.environ, GIT_PROJECT_ROOT=str(peer.root), GIT_HTTP_EXPORT_ALL="1", PATH_INFO=u.path,
                           QUERY_STRING=u.query, REQUEST_METHOD=self.command, REMOTE_USER=peer.user,
                           CONTENT_TYPE=self.headers.get("Content-Type", ""), CONTENT_LENGTH=str(len(body)),
                           HTTP_CONTENT_ENCODING=self.headers.get("Content-Encoding", ""),
                           GIT_PROTOCOL=self.headers.get("Git-Protocol", ""))
                out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
                head, _, data = out.partition(b"\r\n\r\n")
                if not _:
                    head, _, data = out.partition(b"\n\n")
                status, headers = 200, []
                for line in head.decode().splitlines():
                    k, _, v = line.partition(":")
                    if k.lower() == "status":
                        status = int(v.split()[0])
                    elif k:
                        headers.append((k, v.strip()))
                self.reply(status, data, ctype=None, headers=headers)

            do_GET = do_POST = _handle

        self.serve(Handler)

    def url_with_credentials(self, name):
        return f"http://{self.user}:{self.password}@127.0.0.1:{self.port}/{name}"


class HostileMlflow(LoopbackHttpServer):
    """A FAKE, for tests only: a loopback server that speaks the few MLflow REST calls a models backup
    makes (registered-models/search and /get, model-versions/search, get-download-uri, the artifact
    proxy's listing and download) and answers with whatever names it is given — a model called
    "../../x", a version "1/../../../x" — as a hostile or broken registry could. It is not MLflow."""

    def __init__(self, model, version, files=None):
        import http.server
        from urllib.parse import urlparse, parse_qs
        self.files = files or {"MLmodel": b"flavors: {}\n", "model.bin": b"weights"}
        fake = self
        fake.model, fake.version = model, version
        fake.aliases = []  # [{"alias", "version"}] the registered model says its versions hold

        class Handler(QuietHandler, http.server.BaseHTTPRequestHandler):
            _send = QuietHandler.reply

            def do_GET(self):
                u = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(u.query).items()}
                rm = {"name": fake.model, "aliases": fake.aliases, "tags": [], "description": "hostile"}
                mv = {"name": fake.model, "version": fake.version, "source": "mlflow-artifacts:/0/r/artifacts/model",
                      "status": "READY", "last_updated_timestamp": 1700000000000}
                api = "/api/2.0/mlflow/"
                if u.path == api + "registered-models/search":
                    return self._send(200, {"registered_models": [rm]})
                if u.path == api + "registered-models/get":
                    return self._send(200, {"registered_model": rm}) if q.get("name") == fake.model else \
                        self._send(404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no such model"})
                if u.path == api + "model-versions/search":
                    return self._send(200, {"model_versions": [mv]})
                if u.path == api + "model-versions/get-download-uri":
                    return self._send(200, {"artifact_uri": "mlflow-artifacts:/0/r/artifacts/model"})
                arts = "/api/2.0/mlflow-artifacts/artifacts"
                if u.path == arts:
                    top = q.get("path", "") == "0/r/artifacts/model"
                    listing = [{"path": n, "is_dir": False, "file_size": len(b)} for n, b in fake.files.items()] if top else []
                    return self._send(200, {"files": listing})
                if u.path.startswith(arts + "/0/r/artifacts/model/"):
                    from urllib.parse import unquote
                    name = unquote(u.path[len(arts + "/0/r/artifacts/model/"):])
                    if name in fake.files:
                        return self._send(200, fake.files[name], "application/octet-stream")
                return self._send(404, {"error_code": "ENDPOINT_NOT_FOUND", "message": u.path})

        self.serve(Handler)


def firestore_emulator_launcher():
    """The Cloud CLI package's launcher of Google's Cloud Firestore emulator (the real peer; no fake)."""
    out = subprocess.run(["dpkg", "-L", "google-cloud-cli-firestore-emulator"], capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if line.endswith("/cloud_firestore_emulator"):
            return line
    raise RuntimeError("Google's Cloud Firestore emulator is missing: install the Debian package "
                       "google-cloud-cli-firestore-emulator (Google Cloud CLI's apt repository); scripts/setup checks for it")


class FirestoreEmulator(Peer):
    """Google's Cloud Firestore emulator on loopback; Lifeboat finds it through FIRESTORE_EMULATOR_HOST.

    It runs in its own process group (the launcher starts Java) and is stopped as a group."""

    def __init__(self, workdir: Path = None, heap="1g"):
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.workdir = workdir
        self.heap = heap  # 1g holds tens of thousands of small documents; 100k of ~1 KB need several

    def start(self):
        import signal  # noqa: F401
        env = dict(os.environ, JAVA_TOOL_OPTIONS=f"-Xmx{self.heap}", CLOUDSDK_CORE_DISABLE_PROMPTS="1",
                   CLOUDSDK_CORE_DISABLE_USAGE_REPORTING="true")
        log = open(self.workdir / "firestore-emulator.log", "wb") if self.workdir else subprocess.DEVNULL
        self.proc = subprocess.Popen([firestore_emulator_launcher(), "start", "--host=127.0.0.1", f"--port={self.port}"],
                                     stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        import urllib.request
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the Firestore emulator exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"http://{self.host}/", timeout=1) as r:
                    if r.read().strip() == b"Ok":
                        return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the Firestore emulator did not answer within 60 s")

    def stop(self):
        import signal
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(10)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def env(self):
        return {"FIRESTORE_EMULATOR_HOST": self.host, "LIFEBOAT_RETRY_BASE_MS": "20"}

    @staticmethod
    def root(project="p", database="(default)"):
        return f"projects/{project}/databases/{database}/documents"

    def call(self, method, path, body=None):
        """One REST call (path after /v1/); returns (status, parsed JSON)."""
        import http.client
        import json
        from urllib.parse import quote
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        data = json.dumps(body).encode() if body is not None else None
        url = quote(path, safe="/:?=&.()~") if path.startswith("/") else "/v1/" + quote(path, safe="/:?=&.()~")
        conn.request(method, url, body=data,
                     headers={"Authorization": "Bearer owner", "Content-Type": "application/json"})
        r = conn.getresponse()
        out = r.read()
        conn.close()
        return r.status, json.loads(out) if out else None

    def commit(self, writes, project="p", database="(default)"):
        """Writes (each {"update": {...}} or {"delete": name}) in commits of 500; returns the last commit time."""
        t = None
        for i in range(0, len(writes), 500):
            st, body = self.call("POST", f"projects/{project}/databases/{database}/documents:commit",
                                 {"writes": writes[i:i + 500]})
            assert st == 200, body
            t = body["commitTime"]
        return t

    def put(self, docs, project="p", database="(default)"):
        """docs: {relative name: fields (REST Value JSON)}; returns the commit time."""
        root = self.root(project, database)
        return self.commit([{"update": {"name": f"{root}/{n}", "fields": f}} for n, f in docs.items()], project, database)

    def delete(self, names, project="p", database="(default)"):
        root = self.root(project, database)
        return self.commit([{"delete": f"{root}/{n}"} for n in names], project, database)

    def documents(self, project="p", database="(default)", read_time=None):
        """Every document of the database: {relative name: fields}, read with one query."""
        root = self.root(project, database)
        body = {"structuredQuery": {"from": [{"allDescendants": True}],
                                    "orderBy": [{"field": {"fieldPath": "__name__"}}]}}
        if read_time:
            body["readTime"] = read_time
        st, out = self.call("POST", f"{root}:runQuery", body)
        assert st == 200, out
        return {d["document"]["name"][len(root) + 1:]: d["document"].get("fields", {}) for d in out if "document" in d}

    def clear(self, project="p", database="(default)"):
        st, out = self.call("DELETE", f"/emulator/v1/projects/{project}/databases/{database}/documents")
        return st
