"""Retention, prune and many writers: keep exactly what the policy says and never lose referenced data."""
import hashlib
import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

from conftest import Lifeboat, tree_digest


def digest_dir(d: Path):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir()) if p.is_file()}


def restored_digest(lb: Lifeboat, snap_id: str, src: Path, target: Path):
    p = lb.run("restore", snap_id, "--target", target, check=False)
    if p.returncode != 0:
        return None, p
    return digest_dir(target / str(src).lstrip("/")), p


def repo_bytes(repo: Path) -> int:
    return sum(f.stat().st_size for f in (repo / "data").rglob("*") if f.is_file())


def test_forget_policy_pin_and_prune_reclaim_space(lb, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    states = []
    for i in range(6):
        (src / "data.bin").write_bytes(random.Random(i).randbytes(2 << 20))
        states.append(lb.json("backup", src, "--tag", "nightly")["snapshot_id"])
    first = states[0]
    lb.run("pin", first[:8], "--note", "production model v1")
    dry = lb.json("forget", "--keep-last", "2", "--dry-run")
    assert dry["removed"] == 3 and len(lb.json("snapshots")) == 6
    explained = lb.run("forget", "--keep-last", "2", "--dry-run", "--explain").stdout
    assert "pinned" in explained and "last 2 (#1)" in explained and "matches no rule" in explained
    before = repo_bytes(lb.repo)
    out = lb.json("forget", "--keep-last", "2", "--prune")
    assert out["removed"] == 3
    kept = {s["id"] for s in lb.json("snapshots")}
    assert kept == {first, states[-1], states[-2]}
    assert repo_bytes(lb.repo) < before * 0.7
    lb.run("check", "--read-data")
    lb.run("restore", first[:8], "--target", tmp_path / "r0")
    assert (tmp_path / "r0" / str(src).lstrip("/") / "data.bin").read_bytes() == random.Random(0).randbytes(2 << 20)
    # Without the pin the same policy lets the old snapshot go.
    lb.run("unpin", first[:8])
    lb.run("forget", "--keep-last", "2", "--prune")
    assert len(lb.json("snapshots")) == 2
    p = lb.run("forget", check=False)
    assert p.returncode == 1 and "refusing to forget everything" in p.stderr


def test_crash_loop_never_breaks_the_repository(lb, tmp_path):
    """Seeded: SIGKILL backup, forget and prune at 100 random points; check and the next backup always pass."""
    rnd = random.Random(20261125)
    src = tmp_path / "src"
    src.mkdir()
    for i in range(8):
        (src / f"f{i}").write_bytes(rnd.randbytes(rnd.randint(1, 3) << 20))
    lb.run("backup", src)
    ops = ["backup", "backup", "forget", "prune"]
    kills = 0
    for it in range(100):
        (src / f"f{rnd.randrange(8)}").write_bytes(rnd.randbytes(rnd.randint(1, 3) << 20))
        op = rnd.choice(ops)
        args = {"backup": ["backup", src], "forget": ["forget", "--keep-last", str(rnd.randint(1, 3)), "--prune"],
                "prune": ["prune", "--max-unused", "0%"]}[op]
        p = lb.popen(*args)
        time.sleep(rnd.uniform(0.005, 0.06))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.wait()
        c = lb.run("check", check=False)
        assert c.returncode == 0, f"iteration {it}: check after killing {op}: {c.stderr}"
        if it % 10 == 9:
            lb.run("backup", src)  # the next backup always succeeds
            c = lb.run("check", "--read-data", check=False)
            assert c.returncode == 0, f"iteration {it}: {c.stderr}"
    assert kills >= 50, f"only {kills} of 100 operations were killed mid-way"
    out = lb.json("backup", src)
    lb.run("restore", out["snapshot_id"], "--target", tmp_path / "r", "--verify")
    assert digest_dir(tmp_path / "r" / str(src).lstrip("/")) == digest_dir(src)


def test_concurrent_writers_and_prune_lose_nothing(lb, tmp_path):
    """Three hosts back up while forget+prune run in a loop; every snapshot left restores byte for byte."""
    deadline = time.monotonic() + 25
    expected = {}  # snapshot id -> (source dir, {name: sha256})
    lock = threading.Lock()
    errors = []

    def writer(n):
        rnd = random.Random(n)
        src = tmp_path / f"host{n}"
        src.mkdir()
        # A small pool of contents, so forgotten blobs come back and race prune's marks.
        pool = [rnd.randbytes(600_000) for _ in range(6)]
        for i in range(4):
            (src / f"f{i}").write_bytes(rnd.choice(pool))
        while time.monotonic() < deadline:
            (src / f"f{rnd.randrange(4)}").write_bytes(rnd.choice(pool))
            state = digest_dir(src)
            p = lb.run("--json", "backup", src, "--host", f"host{n}", check=False)
            if os.environ.get("LIFEBOAT_DEBUG_PRUNE"):
                with open(tmp_path / f"writer{n}.log", "a") as log:
                    log.write(p.stdout[:200] + "\n")
            if p.returncode != 0:
                errors.append(f"backup exited {p.returncode}: {p.stdout} {p.stderr}")
                return
            import json
            with lock:
                expected[json.loads(p.stdout)["snapshot_id"]] = (src, state)

    def pruner():
        while time.monotonic() < deadline:
            p = lb.run("forget", "--keep-last", "3", "--group-by", "host", "--prune", "--max-unused", "0%", check=False)
            if os.environ.get("LIFEBOAT_DEBUG_PRUNE"):
                with open(tmp_path / "prune-trace.log", "a") as log:
                    log.write(p.stderr)
            if p.returncode != 0:
                errors.append(f"forget --prune exited {p.returncode}: {p.stdout} {p.stderr}")
                return
            time.sleep(0.2)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)] + [threading.Thread(target=pruner)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    p = lb.run("prune")  # a quiet prune sweeps whatever waited for the writers
    if os.environ.get("LIFEBOAT_DEBUG_PRUNE"):
        with open(tmp_path / "prune-trace.log", "a") as log:
            log.write("FINAL PRUNE\n" + p.stderr)
    lb.run("check", "--read-data")
    remaining = [s["id"] for s in lb.json("snapshots")]
    assert len(remaining) >= 3
    for i, sid in enumerate(remaining):
        src, state = expected[sid]
        got, p = restored_digest(lb, sid, src, tmp_path / f"r{i}")
        assert got == state, f"snapshot {sid[:8]} restored wrong or failed: {p.stderr}"


def test_every_damaged_file_is_named_and_unaffected_snapshots_restore(lb, tmp_path):
    srcs = []
    for n in range(2):
        src = tmp_path / f"src{n}"
        src.mkdir()
        (src / "doc.bin").write_bytes(random.Random(n).randbytes(300_000))
        lb.run("backup", src)
        srcs.append(src)
    snaps = [s["id"] for s in lb.json("snapshots")]
    files = sorted(p for p in lb.repo.rglob("*") if p.is_file() and "locks" not in p.parts)
    assert len(files) >= 8
    for f in files:
        saved = f.read_bytes()
        for damage in ("flip", "truncate"):
            data = bytearray(saved)
            if damage == "flip":
                data[len(data) // 2] ^= 0x10
            else:
                data = data[: len(data) // 2]
            f.write_bytes(bytes(data))
            c = lb.run("check", "--read-data", check=False)
            assert c.returncode != 0, f"{damage} {f.relative_to(lb.repo)} went unnoticed"
            assert f.name in c.stderr, f"{damage} {f.relative_to(lb.repo)}: {c.stderr}"
            # What must happen: damage to the config or the key file stops every restore (nothing
            # decrypts); damage to a pack, an index file or a snapshot file stops exactly the one
            # snapshot whose data, index entries or record it holds, and the other restores whole.
            failed = []
            for n, sid in enumerate(snaps):
                target = tmp_path / f"r-{f.name[:8]}-{damage}-{n}"
                got, p = restored_digest(lb, sid, srcs[n], target)
                if got is None:
                    assert "error" in p.stderr
                    leftover = target / str(srcs[n]).lstrip("/") / "doc.bin"
                    assert not leftover.exists(), "a failed restore left a partial file"
                    failed.append(n)
                else:
                    assert got == digest_dir(srcs[n]), "a restore wrote wrong bytes"
            what = f"{damage} {f.relative_to(lb.repo)}"
            if f.parts[len(lb.repo.parts)] in ("config", "keys"):
                assert failed == [0, 1], f"{what}: every restore must fail, these did not: {failed}"
            else:
                assert len(failed) == 1, f"{what}: exactly one snapshot's restore must fail, these did: {failed}"
                if "snapshots" in f.parts:
                    assert snaps[failed[0]].startswith(f.name[:8]), f"{what}: the other snapshot failed"
            f.write_bytes(saved)
    lb.run("check", "--read-data")


def test_prune_dry_run_predicts_what_the_real_run_deletes(lb, tmp_path):
    """Including packs an earlier prune marked while a backup was running: the next real run sweeps
    them, and its dry run must say so (it used to report nothing to do)."""
    lb.run("init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1", "--pack-size-mib", "1",
           env={"LIFEBOAT_REPOSITORY": str(tmp_path / "small")})
    lb.env["LIFEBOAT_REPOSITORY"] = str(tmp_path / "small")
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / f"f{i}").write_bytes(os.urandom(2_000_000))
        lb.run("backup", src)
        (src / f"f{i}").unlink()
    lb.run("forget", "--keep-last", "1")
    # A backup that started earlier holds its lock: prune marks, but may not delete yet.
    # It holds its lock until the test lets its command end (a file appears), and the prune runs only
    # once that lock is in the repository.
    go = tmp_path / "go"
    slow = lb.popen("backup", "--stdin-from-command", "--", "sh", "-c", f"while [ ! -e {go} ]; do sleep 0.05; done; echo late")
    locks = tmp_path / "small" / "locks"
    deadline = time.time() + 30
    while not (locks.is_dir() and any(locks.iterdir())):
        assert slow.poll() is None and time.time() < deadline, "the slow backup took no lock"
        time.sleep(0.02)
    first = lb.json("prune")
    go.touch()
    slow.wait(timeout=60)
    assert slow.returncode == 0
    assert first["packs_tombstoned"] >= 2 and first["packs_deleted"] == 0 and first["tombstones_waiting"] >= 2, first
    packs = lambda: sorted(p.name for p in (tmp_path / "small" / "data").rglob("*") if p.is_file())
    before = packs()
    dry = lb.json("prune", "--dry-run")
    assert packs() == before, "a dry run changes nothing"
    assert dry["packs_deleted"] == first["tombstones_waiting"], (dry, first)
    real = lb.json("prune")
    for k in ("packs_deleted", "bytes_deleted", "packs_tombstoned", "blobs_unused"):
        assert real[k] == dry[k], (k, dry, real)
    assert len(packs()) == len(before) - real["packs_deleted"]
