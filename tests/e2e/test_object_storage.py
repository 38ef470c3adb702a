"""Repositories on S3 (versitygw) and GCS (fake-gcs-server), started on loopback: round trips with
multipart/resumable uploads and paginated listings, faults, copies between regions, object lock, and
the service-account token flow against a local token endpoint that checks the JWT signature."""
import base64
import calendar
import http.server
import json
import os
import random
import signal
import threading
import time
import urllib.parse
import urllib.request

import pytest

import peers
from conftest import Lifeboat, tree_digest


def make_tree(root, seed=1, big_mb=20):
    import random
    rnd = random.Random(seed)
    (root / "docs").mkdir(parents=True)
    for i in range(40):
        (root / "docs" / f"f{i}.txt").write_bytes(rnd.randbytes(rnd.randint(0, 40000)))
    (root / "big.bin").write_bytes(rnd.randbytes(big_mb << 20))  # packs of 16 MiB: multipart/resumable
    return root


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with peers.VersityGW(tmp_path_factory.mktemp("versitygw")) as gw:
        yield gw


@pytest.fixture(scope="module")
def gcs():
    with peers.FakeGCS() as f:
        yield f


def boat(url, tmp_path, env, name="restore"):
    b = Lifeboat(url)
    b.env.update(env)
    b.env["LIFEBOAT_RETRY_BASE_MS"] = "5"
    return b


def round_trip(b, tmp_path):
    src = make_tree(tmp_path / "src")
    b.init()
    b.run("backup", src)
    (src / "docs" / "f0.txt").write_text("changed")
    b.run("backup", src)
    out = tmp_path / "out"
    b.run("restore", "latest", "--target", out, "--verify")
    assert tree_digest(out / src.relative_to("/")) == tree_digest(src)
    assert "no errors" in b.run("check", "--read-data").stdout
    return src


def test_s3_round_trip_multipart_and_pagination(s3, tmp_path):
    b = boat(f"s3:{s3.endpoint}/roundtrip/some/prefix", tmp_path, {**s3.env(), "LIFEBOAT_S3_MULTIPART_THRESHOLD": "5000000",
                                                             "LIFEBOAT_LIST_PAGE_SIZE": "3"})
    round_trip(b, tmp_path)
    keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket="roundtrip")["Contents"]]
    assert all(k.startswith("some/prefix/") for k in keys) and "some/prefix/config" in keys
    assert len([k for k in keys if "/data/" in k]) >= 2
    assert len(b.json("snapshots")) == 2  # listed across pages of 3


def test_gcs_round_trip_resumable_and_pagination(gcs, tmp_path):
    b = boat("gs:roundtrip/prefix", tmp_path, {**gcs.env(), "LIFEBOAT_GCS_RESUMABLE_THRESHOLD": "5000000",
                                        "LIFEBOAT_LIST_PAGE_SIZE": "3"})
    round_trip(b, tmp_path)
    listing = json.load(urllib.request.urlopen(f"{gcs.endpoint}/storage/v1/b/roundtrip/o?prefix=prefix/data/"))
    assert len(listing["items"]) >= 2


def test_create_only_and_clear_errors(s3, gcs, tmp_path):
    for url, env in ((f"s3:{s3.endpoint}/createonly", s3.env()), ("gs:createonly", gcs.env())):
        b = boat(url, tmp_path, env)
        b.init()
        p = b.run("init", check=False)
        assert p.returncode == 1 and "already holds a repository" in p.stderr
    p = boat(f"s3:{s3.endpoint}/createonly", tmp_path, {"AWS_ACCESS_KEY_ID": "nobody", "AWS_SECRET_ACCESS_KEY": "wrong"}).run(
        "snapshots", check=False)
    assert p.returncode == 1 and "check the credentials" in p.stderr
    creds = tmp_path / "credentials"
    creds.write_text(f"[default]\naws_access_key_id = nobody\n\n[backup]\naws_access_key_id = {s3.access_key}\n"
                     f"aws_secret_access_key = {s3.secret_key}\n")
    from_file = boat(f"s3:{s3.endpoint}/createonly", tmp_path, {"AWS_SHARED_CREDENTIALS_FILE": str(creds),
                                                                "AWS_PROFILE": "backup"})
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        from_file.env.pop(k, None)
    assert from_file.json("snapshots") == []  # opened with the profile's keys
    p = boat(f"s3:{s3.endpoint}/nothing-here", tmp_path, s3.env()).run("snapshots", check=False)
    assert p.returncode == 10
    # A bucket name the server refuses ("b" is too short): the rule for names, not a bare "HTTP 400" (a HEAD
    # reply has no body) or a page of XML.
    bad = boat(f"s3:{s3.endpoint}/b/repo", tmp_path, s3.env())
    for cmd in ("init", "snapshots"):
        p = bad.run(cmd, check=False)
        assert p.returncode == 1 and "S3 bucket names are 3-63 characters" in p.stderr and "<Error>" not in p.stderr, p.stderr
    dead = boat(f"s3:http://127.0.0.1:{peers.free_port()}/b", tmp_path, {**s3.env(), "LIFEBOAT_RETRY_BASE_MS": "1"})
    p = dead.run("snapshots", check=False)
    assert p.returncode == 1 and "after 8 attempts" in p.stderr


@pytest.mark.parametrize("where", ["s3", "gcs"])
def test_backup_and_restore_complete_through_faults(where, s3, gcs, tmp_path):
    url, env = (f"s3:{s3.endpoint}/faults", s3.env()) if where == "s3" else ("gs:faults", gcs.env())
    b = boat(url, tmp_path, env)
    b.init()
    src = make_tree(tmp_path / "src", big_mb=40)
    faults = {"LIFEBOAT_FAULTS": "seed=3,fail=0.15,lose=0.1,truncate=0.15,delay=0.05,delay_ms=50"}
    b.run("backup", src, env=faults)
    out = tmp_path / "out"
    b.run("restore", "latest", "--target", out, env=faults)
    assert tree_digest(out / src.relative_to("/")) == tree_digest(src)
    b.run("check", "--read-data", env=faults)
    assert "no errors" in b.run("check", "--read-data").stdout
    # Faults that never stop: a clean failure naming the cause, and nothing half-written.
    (src / "new.txt").write_text("never stored")
    p = b.run("backup", src, env={"LIFEBOAT_FAULTS": "fail=1"}, check=False)
    assert p.returncode == 1 and "injected fault" in p.stderr and "attempts" in p.stderr
    assert len(b.json("snapshots")) == 1
    assert "no errors" in b.run("check", "--read-data").stdout


def test_copy_to_second_region_sealed_and_reencrypted(s3, gcs, tmp_path):
    env = {**s3.env(), **gcs.env()}
    primary = boat(f"s3:{s3.endpoint}/primary", tmp_path, env)
    src = round_trip(primary, tmp_path)
    # Same keys: sealed blobs travel as they are.
    same = f"gs:region2-same"
    primary.run("init", "--copy-keys-from", primary.repo, env={"LIFEBOAT_REPOSITORY": same})
    r = primary.json("copy", "--to", same)
    assert r["mode"] == "sealed" and r["snapshots_copied"] == 2 and r["blobs_verified"] > 0
    again = primary.json("copy", "--to", same)
    assert again["snapshots_copied"] == 0 and again["snapshots_present"] == 2 and again["bytes_sent"] == 0
    # Different keys: re-encrypted; the blobs shared by both snapshots go once.
    other = boat("gs:region2-other", tmp_path, env)
    other.env["LIFEBOAT_PASSWORD"] = "another password"
    other.init()
    r2 = primary.json("copy", "--to", other.repo, env={"LIFEBOAT_TO_PASSWORD": "another password"})
    assert r2["mode"] == "re-encrypted" and r2["snapshots_copied"] == 2
    assert r2["blobs_copied"] == r["blobs_copied"], (r, r2)  # each blob once, as in the sealed copy
    for dest in (boat(same, tmp_path, env), other):
        out = tmp_path / f"out-{dest.repo.replace(':', '_')}"
        dest.run("restore", "latest", "--target", out, "--verify")
        assert tree_digest(out / src.relative_to("/")) == tree_digest(src)
        assert "no errors" in dest.run("check", "--read-data").stdout


def test_s3_object_lock_survives_a_stolen_credential(s3, tmp_path):
    b = boat(f"s3:{s3.endpoint}/locked/repo", tmp_path, s3.env())
    b.run("init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1", "--retention", "2d")
    src = make_tree(tmp_path / "src", big_mb=1)
    b.run("backup", src)
    (src / "docs" / "f1.txt").write_text("v2")
    b.run("backup", src)
    c = s3.client()
    assert c.get_object_lock_configuration(Bucket="locked")["ObjectLockConfiguration"]["ObjectLockEnabled"] == "Enabled"
    keys = [o["Key"] for o in c.list_objects_v2(Bucket="locked")["Contents"]]
    packs = [k for k in keys if "/data/" in k]
    for k in packs + [k for k in keys if "/snapshots/" in k]:
        ret = c.get_object_retention(Bucket="locked", Key=k)["Retention"]
        assert ret["Mode"] == "GOVERNANCE" and ret["RetainUntilDate"].timestamp() > time.time() + 86400
    # Someone with the credentials tries to destroy a pack version: refused.
    v = c.list_object_versions(Bucket="locked", Prefix=packs[0])["Versions"][0]["VersionId"]
    with pytest.raises(Exception, match="AccessDenied|object lock"):
        c.delete_object(Bucket="locked", Key=packs[0], VersionId=v)
    # Lifeboat itself keeps locked snapshots and packs, and says so.
    first = b.json("snapshots")[0]["id"]
    p = b.run("forget", first, "--prune")
    assert "under object lock" in p.stderr
    assert len(b.json("snapshots")) == 2
    assert "no errors" in b.run("check", "--read-data").stdout


class TokenEndpoint(http.server.ThreadingHTTPServer):
    """An OAuth2 token endpoint that accepts only JWTs signed by the test's service-account key."""


def test_gcs_without_credentials_off_google_cloud_fails_at_once_naming_what_to_set(tmp_path):
    """No token, no key file, and a metadata server name that does not resolve (`.invalid` never does): not
    a Google Cloud machine. The command fails at once, saying which credentials to set, without retrying
    the lookup (it used to retry 8 times over ~11 s and end with curl's "Couldn't resolve host name")."""
    b = Lifeboat("gs:some-bucket/repo")
    for var in ("GOOGLE_OAUTH_ACCESS_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS", "CLOUD_STORAGE_EMULATOR_ENDPOINT",
                "STORAGE_EMULATOR_HOST", "LIFEBOAT_GCS_ENDPOINT", "LIFEBOAT_RETRY_BASE_MS"):
        b.env.pop(var, None)
    b.env["GCE_METADATA_HOST"] = "metadata.invalid"
    p = b.run("snapshots", check=False)
    assert p.returncode == 1, p.stderr
    assert "no Google credentials" in p.stderr and "metadata.invalid does not resolve" in p.stderr, p.stderr
    assert "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file" in p.stderr, p.stderr
    assert "attempts" not in p.stderr, p.stderr


def test_gcs_service_account_token_flow(gcs, tmp_path):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    issued, seen_auth, rejected, bodies = [], [], [], []
    expires = {}  # token -> monotonic time after which the gate refuses it

    def b64d(s):
        return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))

    class Token(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
            head, claims, sig = form["assertion"][0].split(".")
            try:
                key.public_key().verify(b64d(sig), f"{head}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
                c = json.loads(b64d(claims))
                assert c["iss"] == "backup@test.iam.gserviceaccount.com" and c["aud"] == token_uri
                assert "devstorage" in c["scope"] and c["exp"] - c["iat"] == 3600
                assert form["grant_type"][0] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
            except Exception as e:  # noqa: BLE001
                rejected.append(repr(e))
                self.send_response(401)
                self.end_headers()
                return
            tok = f"token-{len(issued)}"
            issued.append(tok)
            expires[tok] = time.monotonic() + 2
            body = json.dumps({"access_token": tok, "expires_in": 2, "token_type": "Bearer"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class Metadata(http.server.BaseHTTPRequestHandler):
        """The GCE metadata server's token path: only with Metadata-Flavor: Google."""

        def log_message(self, *a):
            pass

        def do_GET(self):
            ok = (self.path == "/computeMetadata/v1/instance/service-accounts/default/token"
                  and self.headers.get("Metadata-Flavor") == "Google")
            if not ok:
                self.send_response(403)
                self.end_headers()
                return
            tok = f"token-{len(issued)}"
            issued.append(tok)
            expires[tok] = time.monotonic() + 3600
            body = json.dumps({"access_token": tok, "expires_in": 3600, "token_type": "Bearer"}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class Gate(http.server.BaseHTTPRequestHandler):
        """In front of fake-gcs-server (which ignores auth): only the newest issued token passes, until it expires."""
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def forward(self):
            auth = self.headers.get("Authorization", "")
            seen_auth.append(auth)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            bodies.append(body)
            if not issued or auth != f"Bearer {issued[-1]}" or time.monotonic() > expires[issued[-1]]:
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            req = urllib.request.Request(gcs.endpoint + self.path, data=body if body else None, method=self.command,
                                         headers={k: v for k, v in self.headers.items() if k.lower() not in ("host", "authorization")})
            try:
                resp = urllib.request.urlopen(req)
                status, data, headers = resp.status, resp.read(), resp.headers
            except urllib.error.HTTPError as e:
                status, data, headers = e.code, e.read(), e.headers
            self.send_response(status)
            for k, v in headers.items():
                if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(k, v.replace(gcs.endpoint, f"http://127.0.0.1:{gate.server_port}"))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = forward

    token_srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Token)
    gate = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Gate)
    metadata = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Metadata)
    for s in (token_srv, gate, metadata):
        threading.Thread(target=s.serve_forever, daemon=True).start()
    token_uri = f"http://127.0.0.1:{token_srv.server_port}/token"
    sa = tmp_path / "sa.json"
    sa.write_text(json.dumps({"type": "service_account", "client_email": "backup@test.iam.gserviceaccount.com",
                              "private_key": pem, "token_uri": token_uri}))
    b = boat("gs:authed/r", tmp_path, {"GOOGLE_APPLICATION_CREDENTIALS": str(sa),
                                        "LIFEBOAT_GCS_ENDPOINT": f"http://127.0.0.1:{gate.server_port}"})
    b.env.pop("CLOUD_STORAGE_EMULATOR_ENDPOINT", None)
    try:
        src = tmp_path / "src"
        src.mkdir()
        (src / "a").write_text("hello")
        b.init()
        # One command outlives its token: it reads the repository, then its input takes 3 s, then it
        # uploads; the gate refuses the first token by then, so the upload needs a second one.
        before = len(issued)
        b.run("backup", "--stdin-from-command", "--stdin-filename", "slow.txt", "--", "sh", "-c", "sleep 3; echo slow")
        assert len(issued) - before >= 2, "one command must refresh a token that expired while it ran"
        b.run("backup", src)
        time.sleep(2.5)  # the token expires: the next command must fetch a new one
        out = tmp_path / "out"
        b.run("restore", "latest", "--source", "files", "--target", out)  # the stdin snapshot is another source
        assert (out / src.relative_to("/") / "a").read_text() == "hello"
        # The metadata server (on GCE) as the source of tokens; and object retention sent with uploads
        # (fake-gcs-server does not enforce it, so the request itself is checked).
        m = boat("gs:authed/locked", tmp_path, {"GCE_METADATA_HOST": f"127.0.0.1:{metadata.server_port}",
                                                 "LIFEBOAT_GCS_ENDPOINT": f"http://127.0.0.1:{gate.server_port}"})
        m.env.pop("CLOUD_STORAGE_EMULATOR_ENDPOINT", None)
        bodies.clear()
        m.run("init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1", "--retention", "3d")
        m.run("backup", src)
        meta = [json.loads(body.split(b"\r\n\r\n", 1)[1].split(b"\r\n", 1)[0]) for body in bodies
                if body.startswith(b"--lifeboat")]
        # Locks carry no retention (they must go when released); every other file does.
        meta = [x for x in meta if "/locks/" not in x["name"]]
        assert meta and all(x["retention"]["mode"] == "Unlocked" for x in meta)
        until = calendar.timegm(time.strptime(meta[0]["retention"]["retainUntilTime"], "%Y-%m-%dT%H:%M:%SZ"))
        assert abs(until - (time.time() + 3 * 86400)) < 120
        assert any("/snapshots/" in x["name"] for x in meta) and any("/data/" in x["name"] for x in meta)
    finally:
        token_srv.shutdown()
        gate.shutdown()
        metadata.shutdown()
    assert not rejected and len(issued) >= 4
    assert all(a.startswith("Bearer token-") for a in seen_auth)
    # A key the endpoint does not know is refused with a clear error.
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sa.write_text(json.dumps({"type": "service_account", "client_email": "x@y", "token_uri": "http://127.0.0.1:9/token",
                              "private_key": other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                                 serialization.NoEncryption()).decode()}))
    p = b.run("snapshots", check=False)
    assert p.returncode == 1 and "access token" in p.stderr


def test_object_lock_is_extended_by_prune_and_ends(s3, tmp_path):
    b = boat(f"s3:{s3.endpoint}/shortlock/repo", tmp_path, s3.env())
    b.run("init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1", "--retention", "8s")
    src = make_tree(tmp_path / "src", big_mb=1)
    b.run("backup", src)
    c = s3.client()

    def retain(prefix):
        keys = [o["Key"] for o in c.list_objects_v2(Bucket="shortlock", Prefix=f"repo/{prefix}/")["Contents"]]
        return {k: c.get_object_retention(Bucket="shortlock", Key=k)["Retention"]["RetainUntilDate"].timestamp()
                for k in keys}

    before = retain("data")
    time.sleep(5)  # past half the period: maintenance must push the lock of live data forward
    t = time.time()
    b.run("prune")
    after = retain("data")
    assert all(after[k] >= t + 7 and after[k] > before[k] for k in before), (before, after, t)
    first = b.json("snapshots")[0]["id"]
    p = b.run("forget", first, check=False)
    assert "under object lock" in p.stderr and len(b.json("snapshots")) == 1
    time.sleep(max(0, max(retain("snapshots").values()) - time.time()) + 1.5)
    b.run("forget", first)  # the lock has ended: forgetting works again
    assert b.json("snapshots") == []


def test_an_interrupted_backup_on_s3_still_indexes_its_packs_and_removes_its_lock(s3, tmp_path):
    """After SIGINT the transfers a stopping backup still makes (the index of the packs it finished, the
    lock's removal) go through; only a transfer that has stalled is cut."""
    b = boat(f"s3:{s3.endpoint}/interrupted/repo", tmp_path, s3.env())
    b.init()
    src = tmp_path / "src"
    src.mkdir()
    rnd = random.Random(3)
    for i in range(40):
        (src / f"f{i:02}").write_bytes(rnd.randbytes(4 << 20))
    stored = s3.dir / "data" / "interrupted" / "repo"  # versitygw's posix backend: one file per object

    def objects(kind):
        return [f for f in (stored / kind).rglob("*") if f.is_file()] if (stored / kind).exists() else []

    p = b.popen("backup", src)
    deadline = time.monotonic() + 60
    while len(objects("data")) < 2:
        assert p.poll() is None, "the backup ended before two packs were stored"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert objects("index"), "the packs finished before the interrupt are indexed"
    assert objects("locks") == [], "the lock is removed"
    assert b.json("snapshots") == []
    b.run("check", "--read-data")
