"""GCS bucket source against fake-gcs-server (memory backend, generations kept): round trips with every
metadata field and awkward names into another bucket and a directory, incremental backups that only
list, restores as of an earlier time with --delete-extra, versions, the plan's gsutil runbook step,
the guarded sync, faults (429/503, truncated and vanishing downloads, failed listings), and drills
whose checks read the restored bucket back and fail when it was tampered with."""
import concurrent.futures
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import peers
from conftest import LIFEBOAT

META = dict(contentType="application/x-eyewear", contentEncoding="identity", contentDisposition="attachment; f=x",
            contentLanguage="fr", cacheControl="public, max-age=60", metadata={"team": "ml", "release": "v3"},
            customTime="2026-11-20T14:03:27Z", storageClass="NEARLINE")
WRITABLE = ("contentType", "contentEncoding", "contentDisposition", "contentLanguage", "cacheControl", "metadata",
            "customTime", "storageClass")
AWKWARD = ["with space/and more spaces.txt", "unicode/日本語/ñandú ü.bin", "double//slash", "a", "a/b",
           "folder/", "zero-byte", "100%/x", "deep/" * 12 + "leaf", "dots/../up", "dots/./here", "emoji/🛟.json"]


def fill(gcs, bucket, names_data, threads=8, **meta):
    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        list(ex.map(lambda nd: gcs.put(bucket, nd[0], nd[1], **meta), names_data))


def state(gcs, bucket, prefix=""):
    """name (relative to prefix) → (crc32c, size, writable metadata) of every live object."""
    out = {}
    for o in gcs.list(bucket, prefix):
        out[o["name"][len(prefix):]] = (o.get("crc32c"), int(o["size"]), {k: o.get(k) for k in WRITABLE if o.get(k) is not None})
    return out


@pytest.fixture
def gcs(tmp_path):
    with peers.FakeGCS(tmp_path / "gcs", https=True) as g:
        yield g


@pytest.fixture
def gcs_http():
    with peers.FakeGCS() as g:
        yield g


def run(lb, gcs, *args, check=True, env=None):
    return lb.run(*args, check=check, env=dict(gcs.env(), **(env or {})))


def test_round_trip_every_metadata_field_and_awkward_names(lb, gcs, tmp_path):
    gcs.create_bucket("assets")
    gcs.create_bucket("restored")
    rnd = random.Random(7)
    objects = [(f"frames/{i // 100:02d}/frame-{i:05d}.json", rnd.randbytes(rnd.randint(1, 3000))) for i in range(1990)]
    objects += [(n, b"" if n in ("zero-byte", "folder/") else rnd.randbytes(rnd.randint(1, 5000))) for n in AWKWARD]
    fill(gcs, "assets", objects, **META)
    before = state(gcs, "assets")
    assert len(before) == 2002
    assert all(v[2] == {k: META[k] for k in WRITABLE} for v in before.values()), "the peer keeps every field we set"

    r = run(lb, gcs, "--json", "backup", "gcs", "gs://assets")
    out = json.loads(r.stdout)
    assert out["summary"]["objects"] == 2002 and out["summary"]["objects_downloaded"] == 2002

    r = run(lb, gcs, "restore", "gcs", "--to", "gs://restored/copy", "--check", "counts", "--check", "hashes")
    assert "check counts: ok" in r.stdout and "check hashes: ok" in r.stdout, r.stdout
    after = state(gcs, "restored", "copy/")
    assert after == before
    for name, data in objects[::97] + objects[-len(AWKWARD):]:
        assert gcs.get("restored", "copy/" + name) == data, name

    target = tmp_path / "files"
    r = run(lb, gcs, "restore", "gcs", "--target", target, "--check", "counts", "--check", "hashes")
    assert "check hashes: ok" in r.stdout, r.stdout
    for name, data in objects[:50]:
        assert (target / name).read_bytes() == data
    # Awkward names land at their escaped places, all inside the target.
    assert (target / "a%").read_bytes() == dict(objects)["a"] and (target / "a" / "b").read_bytes() == dict(objects)["a/b"]
    assert (target / "double" / "%00" / "slash").exists() and (target / "folder" / "%00").stat().st_size == 0
    assert (target / "dots" / "%2E%2E" / "up").exists() and (target / "100%25" / "x").exists()
    assert not (tmp_path / "up").exists()
    assert (target / "unicode/日本語/ñandú ü.bin").read_bytes() == dict(objects)["unicode/日本語/ñandú ü.bin"]

    # An include that selects nothing proves nothing: its check fails and says why. (Each check failing
    # on a tampered target: test_gcs_checks_see_a_missing_critical_object_changed_metadata_extras_and_empty_includes.)
    r = run(lb, gcs, "restore", "gcs", "--target", tmp_path / "files", "--include", "nothing-matches", "--check", "hashes",
            check=False)
    assert r.returncode == 1 and "no object of the snapshot matches the include patterns (nothing-matches)" in r.stdout, r.stdout
    # A dry run names exactly the object missing from the target.
    gcs.delete("restored", "copy/frames/00/frame-00004.json")
    r = run(lb, gcs, "restore", "gcs", "--to", "gs://restored/copy", "--dry-run")
    assert "would restore copy/frames/00/frame-00004.json" in r.stdout and "1 objects would be restored" in r.stdout


def test_large_object_streams_and_symlinked_target_is_refused(lb, gcs, tmp_path):
    gcs.create_bucket("big")
    big = os.urandom(1 << 20) * 200  # 200 MiB (dedups inside, streams through)
    gcs.put("big", "model/weights.bin", big, contentType="application/octet-stream")
    gcs.put("big", "tmp/readme", b"hello")
    env = dict(gcs.env())
    timed = subprocess.run(["/usr/bin/time", "-f", "%M", str(LIFEBOAT), "backup", "gcs", "gs://big"],
                           env=dict(lb.env, **env), capture_output=True, text=True)
    assert timed.returncode == 0, timed.stderr
    rss_kib = int(timed.stderr.strip().splitlines()[-1])
    assert rss_kib < 200 * 1024, f"backup of a 200 MiB object used {rss_kib} KiB: it must stream"
    gcs.create_bucket("big-restored")
    run(lb, gcs, "restore", "gcs", "--to", "gs://big-restored", "--check", "hashes")
    assert state(gcs, "big-restored") == state(gcs, "big")
    assert hashlib.sha256(gcs.get("big-restored", "model/weights.bin")).digest() == hashlib.sha256(big).digest()
    # A symlink planted in the target is never followed.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = tmp_path / "t"
    target.mkdir()
    (target / "tmp").symlink_to(elsewhere)
    r = run(lb, gcs, "restore", "gcs", "--target", target, "--include", "tmp/*", check=False)
    assert r.returncode == 1 and "symlink" in r.stderr and str(target / "tmp") in r.stderr
    assert list(elsewhere.iterdir()) == []


def test_unchanged_bucket_of_10000_objects_only_lists(lb, tmp_path):
    for i in range(10000):
        d = tmp_path / "preload" / "many" / f"d{i % 50}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"o{i}").write_bytes(b"x%d" % i)
    # The filesystem backend on tmpfs: the memory backend spent 75 s of this test scanning its bucket.
    shm = Path("/dev/shm")
    store = Path(tempfile.mkdtemp(prefix="lifeboat-gcs-", dir=shm if shm.is_dir() else tmp_path))
    try:
        with peers.FakeGCS(preload=tmp_path / "preload", filesystem=store) as gcs:
            first = json.loads(run(lb, gcs, "--json", "backup", "gcs", "gs://many").stdout)["summary"]
            assert first["objects"] == 10000 and first["objects_downloaded"] == 10000
            unchanged_backup_only_lists(lb, gcs)
    finally:
        shutil.rmtree(store, ignore_errors=True)


def unchanged_backup_only_lists(lb, gcs):
    proxy = peers.FaultyHttpProxy(gcs.port)
    log = []
    proxy._match = lambda method, path, log=log: log.append((method, path))
    try:
        r = run(lb, gcs, "--json", "backup", "gcs", "gs://many", env={"CLOUD_STORAGE_EMULATOR_ENDPOINT": proxy.endpoint})
    finally:
        proxy.close()
    s = json.loads(r.stdout)["summary"]
    assert s["objects_unchanged"] == 10000 and s["objects_downloaded"] == 0 and s["data_added_bytes"] < 2_000_000
    assert log and all(m == "GET" and "alt=media" not in p and ("/o?" in p or p.endswith("/b/many")) for m, p in log), log[:5]
    assert sum("/o?" in p for _, p in log) == 10  # ten pages of 1,000


def test_restore_as_of_an_earlier_time_with_delete_extra(lb, gcs):
    gcs.create_bucket("assets")
    gcs.put("assets", "a.txt", b"a1")
    gcs.put("assets", "b.txt", b"b1")
    gcs.put("assets", "c.txt", b"c1")
    run(lb, gcs, "backup", "gcs", "gs://assets")
    time.sleep(1.1)  # whole seconds in --at: the instant lies a second after the first backup
    between = time.time()
    time.sleep(1.1)
    gcs.put("assets", "b.txt", b"b2")
    gcs.put("assets", "d.txt", b"d2")
    gcs.delete("assets", "c.txt")
    run(lb, gcs, "backup", "gcs", "gs://assets")
    at = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(between))
    r = run(lb, gcs, "restore", "gcs", "--at", at, "--to", "gs://assets", "--dry-run")
    assert "would delete d.txt" in r.stdout and "would restore b.txt" in r.stdout and "would restore c.txt" in r.stdout
    assert {o["name"] for o in gcs.list("assets")} == {"a.txt", "b.txt", "d.txt"}  # a dry run changes nothing
    r = run(lb, gcs, "restore", "gcs", "--at", at, "--to", "gs://assets")
    assert "1 objects in the target did not exist at that time and were left" in r.stdout
    run(lb, gcs, "restore", "gcs", "--at", at, "--to", "gs://assets", "--delete-extra", "--check", "counts", "--check", "hashes")
    assert {o["name"]: gcs.get("assets", o["name"]) for o in gcs.list("assets")} == {"a.txt": b"a1", "b.txt": b"b1", "c.txt": b"c1"}
    r = run(lb, gcs, "restore", "gcs", "--date", time.strftime("%Y-%m-%d"), "--to", "gs://assets", "--delete-extra")
    assert {o["name"]: gcs.get("assets", o["name"]) for o in gcs.list("assets")} == {"a.txt": b"a1", "b.txt": b"b2", "d.txt": b"d2"}


def test_versions_survive_the_bucket(lb, gcs):
    gcs.create_bucket("versioned", versioning=True)
    for v in (b"v1", b"v2", b"v3"):
        gcs.put("versioned", "model.bin", v)
    gcs.put("versioned", "gone.txt", b"was here")
    gcs.delete("versioned", "gone.txt")
    listed = gcs.list("versioned", versions=True)
    assert len(listed) == 4, listed
    out = json.loads(run(lb, gcs, "--json", "backup", "gcs", "gs://versioned", "--versions").stdout)
    assert out["summary"]["objects"] == 1 and out["summary"]["noncurrent"] == 3
    ls = run(lb, gcs, "ls", "latest").stdout
    gens = sorted(int(o["generation"]) for o in listed if o["name"] == "model.bin")
    assert f"%versions/model.bin%g{gens[0]}" in ls and f"%versions/gone.txt%g" in ls, ls
    for o in listed:
        gcs.request("DELETE", f"/storage/v1/b/versioned/o/{o['name']}?generation={o['generation']}")
    gcs.create_bucket("again")
    run(lb, gcs, "restore", "gcs", "--to", "gs://again")
    assert {o["name"]: gcs.get("again", o["name"]) for o in gcs.list("again")} == {"model.bin": b"v3"}


def test_plan_runbook_gsutil_cp_brings_the_assets_back(lb, gcs, tmp_path):
    gcs.create_bucket("p-assets")
    gcs.create_bucket("p-backups")
    rnd = random.Random(3)
    objects = [(f"img/{i:03d}.png", rnd.randbytes(rnd.randint(10, 20000))) for i in range(60)] + [("index.html", b"<html>")]
    fill(gcs, "p-assets", objects, contentType="image/png")
    before = state(gcs, "p-assets")
    run(lb, gcs, "backup", "gcs", "gs://p-assets")
    for name, _ in objects:
        gcs.delete("p-assets", name)
    day = time.strftime("%Y-%m-%d")
    run(lb, gcs, "restore", "gcs", "--date", day, "--to", f"gs://p-backups/storage/{day}/")
    env = dict(os.environ, **gcs.boto_config(tmp_path / "boto.cfg"))
    # The plan's §3.2 command, literally.
    cmd = f"gsutil -m cp -r gs://p-backups/storage/{day}/* gs://p-assets/"
    p = subprocess.run(cmd, shell=True, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    after = state(gcs, "p-assets")
    assert {k: v[:2] for k, v in after.items()} == {k: v[:2] for k, v in before.items()}
    for name, data in objects:
        assert gcs.get("p-assets", name) == data


def test_sync_copies_and_refuses_dangerous_deletes(lb, gcs_http):
    gcs = gcs_http
    gcs.create_bucket("src")
    gcs.create_bucket("dst")
    fill(gcs, "src", [(f"f{i}", b"%d" % i) for i in range(40)], contentType="text/plain", metadata={"k": "v"})
    run(lb, gcs, "sync", "gs://src", "gs://dst")
    assert state(gcs, "dst") == state(gcs, "src")
    r = run(lb, gcs, "--json", "sync", "gs://src", "gs://dst")
    assert json.loads(r.stdout)["copied"] == 0 and json.loads(r.stdout)["unchanged"] == 40
    # The source loses a quarter of its objects: --delete would remove 10 of 40, more than 10%.
    for i in range(10):
        gcs.delete("src", f"f{i}")
    gcs.put("src", "f39", b"changed")
    r = run(lb, gcs, "sync", "gs://src", "gs://dst", "--delete", check=False)
    assert r.returncode == 1 and "would remove 10 of the 40 objects" in r.stderr and "nothing was copied or deleted" in r.stderr
    assert len(gcs.list("dst")) == 40 and gcs.get("dst", "f39") == b"39"
    # A source listing that fails (every retry) deletes nothing, even with no limit.
    proxy = peers.FaultyHttpProxy(gcs.port, [("GET", "/b/src/o?", "503", None)])
    try:
        r = run(lb, gcs, "sync", "gs://src", "gs://dst", "--delete", "--max-delete", "100%", check=False,
                env={"CLOUD_STORAGE_EMULATOR_ENDPOINT": proxy.endpoint, "LIFEBOAT_RETRY_BASE_MS": "1"})
        assert r.returncode == 1 and "the source listing failed" in r.stderr, r.stderr
        # An unreadable listing (200 with garbage) is a failed listing too.
        proxy.rules = [["GET", "/b/src/o?", "garble", None]]
        r = run(lb, gcs, "sync", "gs://src", "gs://dst", "--delete", "--max-delete", "100%", check=False,
                env={"CLOUD_STORAGE_EMULATOR_ENDPOINT": proxy.endpoint, "LIFEBOAT_RETRY_BASE_MS": "1"})
        assert r.returncode == 1 and "the source listing failed" in r.stderr, r.stderr
    finally:
        proxy.close()
    assert len(gcs.list("dst")) == 40
    r = run(lb, gcs, "sync", "gs://src", "gs://dst", "--delete", "--max-delete", "10", "--dry-run")
    assert "would delete f0" in r.stdout and len(gcs.list("dst")) == 40
    run(lb, gcs, "sync", "gs://src", "gs://dst", "--delete", "--max-delete", "10")
    assert state(gcs, "dst") == state(gcs, "src")


def test_faults_are_retried_or_fail_cleanly(lb, gcs_http):
    gcs = gcs_http
    r = run(lb, gcs, "backup", "gcs", "gs://no-such-bucket", check=False)
    assert r.returncode == 1 and "gs://no-such-bucket does not exist" in r.stderr
    gcs.create_bucket("flaky")
    fill(gcs, "flaky", [(f"o{i}", os.urandom(3000)) for i in range(20)] + [("vanish.txt", b"soon gone")])
    env = {"LIFEBOAT_RETRY_BASE_MS": "1"}
    proxy = peers.FaultyHttpProxy(gcs.port, [("GET", "alt=media", "503", 3), ("GET", "alt=media", "429", 3),
                                             ("GET", "/o/o1?alt=media", "cut", 2),
                                             ("GET", "/o/vanish.txt?alt=media", lambda: gcs.delete("flaky", "vanish.txt"), 1)])
    try:
        r = run(lb, gcs, "--json", "backup", "gcs", "gs://flaky", env=dict(env, CLOUD_STORAGE_EMULATOR_ENDPOINT=proxy.endpoint))
        out = json.loads(r.stdout)
        assert out["summary"]["objects"] == 20
        assert any("vanish.txt: deleted during the backup" in w for w in out["warnings"]), out["warnings"]
        actions = [a for _, _, a in proxy.hits]
        assert actions.count("503") == 3 and actions.count("429") == 3 and actions.count("cut") == 2
        # A download that is always cut short never becomes a snapshot.
        before = len(lb.json("snapshots"))
        proxy.rules = [["GET", "/o/o2?alt=media", "cut", None]]
        r = run(lb, gcs, "backup", "gcs", "gs://flaky", "--force", check=False,
                env=dict(env, CLOUD_STORAGE_EMULATOR_ENDPOINT=proxy.endpoint))
        assert r.returncode == 1 and "gs://flaky/o2" in r.stderr, r.stderr
        assert len(lb.json("snapshots")) == before
        # Bytes changed in flight, length intact: the CRC32C check catches them; once is retried...
        proxy.rules = [["GET", "/o/o3?alt=media", "flip", 1]]
        r = run(lb, gcs, "backup", "gcs", "gs://flaky", "--force", env=dict(env, CLOUD_STORAGE_EMULATOR_ENDPOINT=proxy.endpoint))
        assert ("GET", "flip") in [(m, a) for m, _, a in proxy.hits]
        # ... always, and the backup fails naming the object and the checksum, with no snapshot.
        proxy.rules = [["GET", "/o/o3?alt=media", "flip", None]]
        before = len(lb.json("snapshots"))
        r = run(lb, gcs, "backup", "gcs", "gs://flaky", "--force", check=False,
                env=dict(env, CLOUD_STORAGE_EMULATOR_ENDPOINT=proxy.endpoint))
        assert r.returncode == 1 and "gs://flaky/o3" in r.stderr and "CRC32C" in r.stderr, r.stderr
        assert len(lb.json("snapshots")) == before
        # No permission: the bucket is named and the credentials are the suspect.
        proxy.rules = [["GET", "/b/flaky", "403", None]]
        r = run(lb, gcs, "backup", "gcs", "gs://flaky", check=False, env=dict(env, CLOUD_STORAGE_EMULATOR_ENDPOINT=proxy.endpoint))
        assert r.returncode == 1 and "gs://flaky" in r.stderr and "credentials" in r.stderr, r.stderr
        lb.run("check")
    finally:
        proxy.close()
    gcs.create_bucket("flaky-restored")
    run(lb, gcs, "restore", "gcs", "--to", "gs://flaky-restored", "--check", "hashes")
    assert state(gcs, "flaky-restored") == state(gcs, "flaky")


PLAN = """
version: 1
objectives: {{rpo: 1h, rto: 4h}}
repositories:
  main: {{url: "{repo}"}}
sources:
  assets-bucket:
    kind: gcs_bucket
    bucket: gs://p-assets/
    critical: ["models/*.onnx"]
    validation: [counts, hashes, critical]
    environments:
      test: {{to: "gs://p-drill/restore/"}}
drills: {{environment: test{hook}}}
"""

TAMPER = r'''
import json, os, ssl, sys, urllib.request
if os.environ["LIFEBOAT_SOURCE"] == "assets-bucket":
    ep = os.environ["CLOUD_STORAGE_EMULATOR_ENDPOINT"]
    ctx = ssl.create_default_context(cafile=os.environ["LIFEBOAT_CA_FILE"])
    req = urllib.request.Request(ep + "/upload/storage/v1/b/p-drill/o?uploadType=media&name=restore/models/face.onnx",
                                 data=b"not the model", method="POST", headers={"Content-Type": "application/octet-stream"})
    urllib.request.urlopen(req, context=ctx).read()
'''


def test_plan_backup_and_drill_read_the_bucket_back(lb, gcs, tmp_path):
    gcs.create_bucket("p-assets")
    gcs.create_bucket("p-drill")
    gcs.put("p-assets", "models/face.onnx", os.urandom(3 << 20), contentType="application/onnx")
    gcs.put("p-assets", "models/notes.txt", b"v3 notes")
    gcs.put("p-assets", "site/index.html", b"<html>")
    plan = tmp_path / "lifeboat.yaml"
    plan.write_text(PLAN.format(repo=lb.repo, hook=""))
    env = dict(gcs.env(), LIFEBOAT_PLAN=str(plan))
    lb.run("plan", "check", env=env)
    out = json.loads(lb.run("--json", "backup", env=env).stdout)
    assert out["failed"] == 0, out
    res = out["backups"][0]["result"]
    checks = res["summary"]["checks"]
    assert checks[0]["check"] == "critical" and checks[0]["ok"] and "1 critical object" in checks[0]["detail"]

    r = lb.run("drill", "--environment", "test", env=env)
    assert "passed" in r.stdout.lower(), r.stdout
    rep = lb.run("report", env=env).stdout
    assert "Validation after the last backup:" in rep and "assets-bucket critical: ok" in rep, rep

    hook = tmp_path / "tamper.py"
    hook.write_text(TAMPER)
    plan.write_text(PLAN.format(repo=lb.repo, hook=f', after_restore: "{sys.executable} {hook}"'))
    r = lb.run("--json", "drill", "--environment", "test", env=env, check=False)
    assert r.returncode == 1
    text = r.stdout + r.stderr
    assert "models/face.onnx" in text and "critical" in text, text


def test_critical_objects_are_reread_from_the_repository_after_each_backup(lb, gcs, tmp_path):
    """An unchanged critical object is not downloaded again, but its stored bytes are read back and
    re-hashed: damage in the repository fails the backup's check, and the report says so."""
    gcs.create_bucket("p-assets")
    gcs.put("p-assets", "models/face.onnx", os.urandom(3 << 20))
    plan = tmp_path / "lifeboat.yaml"
    plan.write_text(PLAN.format(repo=lb.repo, hook=""))
    env = dict(gcs.env(), LIFEBOAT_PLAN=str(plan))
    lb.run("backup", env=env)
    for pack in (lb.repo / "data").rglob("*"):
        if pack.is_file() and pack.stat().st_size > (2 << 20):
            with open(pack, "r+b") as f:
                f.seek(1 << 20)
                b = f.read(1)
                f.seek(1 << 20)
                f.write(bytes([b[0] ^ 0xFF]))
    out = json.loads(lb.run("--json", "backup", env=env, check=False).stdout.splitlines()[0])
    assert out["failed"] == 1, out
    assert "critical" in out["backups"][0]["error"] and "models/face.onnx" in out["backups"][0]["error"], out
    rep = lb.run("report", env=env).stdout
    assert "assets-bucket critical: FAILED" in rep and "check critical after the last backup failed" in rep, rep


GCS_TAMPER = r'''
import json, os, ssl, sys, urllib.parse, urllib.request
ep = os.environ["CLOUD_STORAGE_EMULATOR_ENDPOINT"]
ctx = ssl.create_default_context(cafile=os.environ["LIFEBOAT_CA_FILE"])
def call(method, path, body=None, ctype="application/json"):
    req = urllib.request.Request(ep + path, data=body, method=method, headers={"Content-Type": ctype})
    return urllib.request.urlopen(req, context=ctx).read()
name = lambda n: urllib.parse.quote("restore/" + n, safe="")
how = sys.argv[1]
if how == "drop-critical":
    call("DELETE", "/storage/v1/b/p-drill/o/" + name("models/face.onnx"))
elif how == "metadata":
    call("PATCH", "/storage/v1/b/p-drill/o/" + name("models/notes.txt"), json.dumps({"contentType": "text/x-changed"}).encode())
elif how == "extra":
    call("POST", "/upload/storage/v1/b/p-drill/o?uploadType=media&name=" + name("stray.txt"), b"not in the backup",
         "application/octet-stream")
elif how == "same-size":  # other bytes of the same length: only reading them back can tell
    size = int(json.loads(call("GET", "/storage/v1/b/p-drill/o/" + name("models/face.onnx")))["size"])
    call("POST", "/upload/storage/v1/b/p-drill/o?uploadType=media&name=" + name("models/face.onnx"), os.urandom(size),
         "application/onnx")
'''


def test_gcs_checks_see_a_missing_critical_object_changed_metadata_extras_and_empty_includes(lb, gcs, tmp_path):
    """Each check fails on its own tamper, the expected state being what the test put in the bucket:
    a critical object deleted while another critical one is fine fails `critical`; a content type
    changed fails `hashes`; an object added fails `counts` when the restore deletes extras; an include
    that selects nothing fails `counts`."""
    gcs.create_bucket("p-assets")
    gcs.create_bucket("p-drill")
    gcs.put("p-assets", "models/face.onnx", os.urandom(1 << 20), contentType="application/onnx")
    gcs.put("p-assets", "models/eye.onnx", os.urandom(1 << 16), contentType="application/onnx")
    gcs.put("p-assets", "models/notes.txt", b"v3 notes", contentType="text/plain", cacheControl="no-cache",
            metadata={"owner": "ml"})
    hook = tmp_path / "tamper.py"
    hook.write_text(GCS_TAMPER)
    plan = tmp_path / "lifeboat.yaml"

    def drill(how, env_extra=""):
        plan.write_text(f"""
version: 1
repositories:
  main: {{url: "{lb.repo}"}}
sources:
  assets-bucket:
    kind: gcs_bucket
    bucket: gs://p-assets/
    critical: ["models/*.onnx"]
    validation: [counts, hashes, critical]
    environments:
      test: {{to: "gs://p-drill/restore/", delete_extra: true{env_extra}}}
drills: {{environment: test, after_restore: "{sys.executable} {hook} {how}"}}
""")
        env = dict(gcs.env(), LIFEBOAT_PLAN=str(plan))
        p = lb.run("--json", "drill", env=env, check=False)
        d = json.JSONDecoder().raw_decode(p.stdout)[0]
        return p.returncode, {c["check"]: c for s in d["sources"] for c in s["result"]["checks"]}

    drill("none")  # writes the plan (nothing to restore yet: the drill fails, the backup comes next)
    lb.run("backup", env=dict(gcs.env(), LIFEBOAT_PLAN=str(plan)))
    rc, checks = drill("none")
    assert rc == 0 and all(c["ok"] for c in checks.values()), checks
    assert "metadata" in checks["hashes"]["detail"]

    rc, checks = drill("drop-critical")
    assert rc == 1 and not checks["critical"]["ok"] and "models/face.onnx is missing" in checks["critical"]["detail"], checks
    assert not checks["counts"]["ok"] and checks["hashes"]["ok"] is False

    rc, checks = drill("same-size")
    assert rc == 1 and not checks["critical"]["ok"] and "models/face.onnx (CRC32C" in checks["critical"]["detail"], checks
    assert checks["counts"]["ok"], checks

    rc, checks = drill("metadata")
    assert rc == 1 and not checks["hashes"]["ok"], checks
    assert "models/notes.txt (contentType differs" in checks["hashes"]["detail"], checks["hashes"]
    assert checks["counts"]["ok"] and checks["critical"]["ok"], checks

    rc, checks = drill("extra")
    assert rc == 1 and not checks["counts"]["ok"] and "stray.txt" in checks["counts"]["detail"], checks
    assert checks["hashes"]["ok"] and checks["critical"]["ok"], checks

    rc, checks = drill("none", ', include: ["nothing/*"]')
    assert rc == 1 and not checks["counts"]["ok"] and "matches the include patterns" in checks["counts"]["detail"], checks


def test_an_append_key_backs_up_a_bucket_it_cannot_read_back(lb, gcs, tmp_path):
    """A backup host with an append key backs a bucket up, then again listing only (its cache holds
    the last tree); it is refused the restore; an admin restores every object and its metadata."""
    from conftest import Lifeboat
    lb.run("key", "add", "--role", "append", "--kdf-memory-kib", "1024", "--kdf-iterations", "1",
           env={"LIFEBOAT_NEW_PASSWORD": "append pw"})
    app = Lifeboat(lb.repo, "append pw")
    app.env["LIFEBOAT_CACHE_DIR"] = str(tmp_path / "cache")
    gcs.create_bucket("assets")
    gcs.create_bucket("restored")
    rnd = random.Random(3)
    fill(gcs, "assets", [(f"models/{i:03d}.bin", rnd.randbytes(rnd.randint(1, 20000))) for i in range(200)], **META)
    before = state(gcs, "assets")
    first = json.loads(run(app, gcs, "--json", "backup", "gcs", "gs://assets", "--critical", "models/00*").stdout)
    assert first["summary"]["objects_downloaded"] == 200
    # Its critical objects cannot be read back by it: the check says skipped, neither ok nor failed.
    crit = first["summary"]["checks"][0]
    assert crit["check"] == "critical" and crit["skipped"] and "append key" in crit["detail"], crit
    again = json.loads(run(app, gcs, "--json", "backup", "gcs", "gs://assets").stdout)
    assert again["summary"]["objects_downloaded"] == 0, again["summary"]  # compared with its cached tree
    p = run(app, gcs, "restore", "gcs", "--to", "gs://restored/copy", check=False)
    assert p.returncode == 13 and "append key" in p.stderr, p.stderr
    assert state(gcs, "restored") == {}
    r = run(lb, gcs, "restore", "gcs", "--to", "gs://restored/copy", "--check", "counts", "--check", "hashes")
    assert "check hashes: ok" in r.stdout, r.stdout
    assert state(gcs, "restored", "copy/") == before
