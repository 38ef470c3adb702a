"""What users see when things go wrong: exit codes, messages, and a repository that stays sound."""
import contextlib
import os
import random
import resource
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import LIFEBOAT, Lifeboat


def test_missing_repository_exits_10(tmp_path):
    boat = Lifeboat(tmp_path / "nowhere")
    p = boat.run("snapshots", check=False)
    assert p.returncode == 10
    assert "lifeboat init" in p.stderr
    p = boat.run("snapshots", "--json", check=False)
    assert p.returncode == 10 and '"repository_missing"' in p.stdout


def test_wrong_password_exits_12(lb):
    p = lb.run("snapshots", env={"LIFEBOAT_PASSWORD": "guess"}, check=False)
    assert p.returncode == 12
    assert "wrong password" in p.stderr


def test_password_file_and_key_management(lb, tmp_path):
    pwfile = tmp_path / "pw"
    pwfile.write_text("second password\n")
    lb.run("key", "add", "--kdf-memory-kib", "1024", "--kdf-iterations", "1", env={"LIFEBOAT_NEW_PASSWORD": "second password"})
    keys = lb.json("key", "list")
    assert len(keys) == 2 and sum(k["current"] for k in keys) == 1
    env = {"LIFEBOAT_PASSWORD": ""}
    p = lb.run("--password-file", pwfile, "key", "list", "--json", env=env)
    assert p.returncode == 0
    other = next(k["id"] for k in keys if not k["current"])
    p = lb.run("key", "remove", [k["id"] for k in keys if k["current"]][0][:8], check=False)
    assert p.returncode == 1 and "opened with" in p.stderr
    lb.run("key", "passwd", "--kdf-memory-kib", "1024", "--kdf-iterations", "1", env={"LIFEBOAT_NEW_PASSWORD": "third"})
    assert lb.run("snapshots", check=False).returncode == 12  # the old password is gone
    lb.run("key", "remove", other[:8], env={"LIFEBOAT_PASSWORD": "third"})
    assert lb.run("snapshots", env={"LIFEBOAT_PASSWORD": "second password"}, check=False).returncode == 12
    assert lb.run("snapshots", env={"LIFEBOAT_PASSWORD": "third"}).returncode == 0


@contextlib.contextmanager
def unprivileged(prefix):
    """A world-writable scratch directory holding a repository, and how to run lifeboat as nobody
    (65534) on it once the repository is handed over (CI runs as root, so these never skip there)."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root to drop to an unprivileged user")
    import tempfile
    base = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        os.chmod(base, 0o777)
        boat = Lifeboat(base / "repo")
        boat.init()

        def as_nobody(*args):
            subprocess.run(["chown", "-R", "65534:65534", str(boat.repo)], check=True)
            cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(LIFEBOAT), *map(str, args)]
            return subprocess.run(cmd, env=boat.env, capture_output=True, text=True)
        yield base, boat, as_nobody
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_unreadable_files_are_skipped_and_exit_3():
    with unprivileged("lifeboat-unreadable-") as (base, boat, as_nobody):
        src = base / "src"
        src.mkdir()
        (src / "ok.txt").write_text("fine")
        (src / "secret.txt").write_text("no access")
        os.chmod(src / "secret.txt", 0)
        p = as_nobody("backup", src)
        assert p.returncode == 3, p.stderr
        assert "secret.txt" in p.stderr and "Permission denied" in p.stderr
        snaps = boat.json("snapshots")
        assert len(snaps) == 1 and snaps[0]["summary"]["unreadable"] == 1
        files = [l for l in boat.run("ls", "latest").stdout.splitlines() if l.endswith(".txt")]
        assert files == [str(src / "ok.txt")]


def test_restoring_where_the_user_may_not_write_fails_once_with_the_cause():
    with unprivileged("lifeboat-unwritable-") as (base, boat, as_nobody):
        src = base / "src"
        src.mkdir()
        for i in range(20):
            (src / f"f{i}.txt").write_text(f"file {i}")
        boat.run("backup", src)
        target = base / "root-only"
        target.mkdir(mode=0o755)  # root's: nobody may not write into it
        p = as_nobody("restore", "latest", "--target", target, "--overwrite", "always")
        assert p.returncode == 1, p.stderr
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        assert len(lines) == 1 and "cannot write into target" in lines[0] and "Permission denied" in lines[0], p.stderr
        assert list(target.iterdir()) == []


def test_lock_conflict_exits_11(lb, tmp_path):
    # The backup holds its lock until the test lets its command end (a file appears); `check` runs once
    # the lock is in the repository.
    go = tmp_path / "go"
    slow = lb.popen("backup", "--stdin-from-command", "--", "sh", "-c", f"while [ ! -e {go} ]; do sleep 0.05; done; echo done")
    deadline = time.time() + 30
    while not any((lb.repo / "locks").iterdir()):
        assert slow.poll() is None and time.time() < deadline, "the backup took no lock"
        time.sleep(0.02)
    p = lb.run("check", check=False)
    go.touch()
    slow.wait(timeout=30)
    assert p.returncode == 11, p.stderr
    assert "locked" in p.stderr and "lifeboat unlock" in p.stderr
    assert slow.returncode == 0
    lb.run("check")


def big_tree(root: Path, files=60, size=4 << 20):
    root.mkdir()
    rnd = random.Random(7)
    for i in range(files):
        (root / f"f{i:03}").write_bytes(rnd.randbytes(size))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_backup_leaves_a_sound_repository_and_next_backup_reuses_data(lb, tmp_path, sig):
    src = tmp_path / "src"
    big_tree(src)
    p = lb.popen("backup", src)
    # Signal once two packs are on disk: deterministic, and well before the ~240 MiB are done.
    deadline = time.monotonic() + 60
    while sum(1 for f in (lb.repo / "data").rglob("*") if f.is_file() and not f.name.startswith(".")) < 2:
        assert p.poll() is None, "backup finished before two packs were seen"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    p.send_signal(sig)
    p.wait(timeout=60)
    assert p.returncode == (130 if sig == signal.SIGINT else -9), p.stderr.read()
    assert lb.json("snapshots") == [], "an interrupted backup must not leave a snapshot"
    check = lb.run("check", "--read-data", check=False)
    assert check.returncode == 0, check.stderr
    # No unlock needed: the killed process's lock names a pid that is gone, so it counts as stale.
    out = lb.json("backup", src)
    total = 60 * (4 << 20)
    assert out["summary"]["data_added_bytes"] < total, "packs written before the interruption must be reused"
    lb.run("restore", "latest", "--target", tmp_path / "r", "--verify")
    lb.run("check", "--read-data")


def flip(path: Path, offset: int):
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0x55
    path.write_bytes(bytes(data))


def test_damaged_repository_files_are_named_and_restores_fail_loudly(lb, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "doc.txt").write_bytes(os.urandom(200000))
    lb.run("backup", src)
    packs = sorted(p for p in (lb.repo / "data").rglob("*") if p.is_file())
    assert packs
    for pack in packs:
        saved = pack.read_bytes()
        for damage in ("flip", "truncate"):
            if damage == "flip":
                flip(pack, len(saved) // 3)
            else:
                pack.write_bytes(saved[: len(saved) // 2])
            p = lb.run("check", "--read-data", check=False)
            assert p.returncode == 1 and pack.name in p.stderr, p.stderr
            target = tmp_path / f"r-{pack.name[:6]}-{damage}"
            # Every pack holds something the snapshot needs (the file's data or its trees): the
            # restore must fail, say so, and leave no file behind, whole or partial.
            r = lb.run("restore", "latest", "--target", target, check=False)
            assert r.returncode != 0, f"restore from a {damage}ed pack exited 0: {r.stdout}"
            assert "error" in r.stderr and pack.name in r.stderr, r.stderr
            leftovers = [f for f in target.rglob("*") if f.is_file()] if target.exists() else []
            assert leftovers == [], f"a failed restore left {leftovers}"
            pack.write_bytes(saved)
    lb.run("check", "--read-data")
    for kind in ("index", "snapshots"):
        f = next((lb.repo / kind).iterdir())
        saved = f.read_bytes()
        flip(f, 30)
        p = lb.run("check", check=False)
        assert p.returncode == 1 and f.name in p.stderr, p.stderr
        f.write_bytes(saved)
    lb.run("check", "--read-data")


def test_progress_shows_on_a_terminal_only(lb, tmp_path):
    import pty
    src = tmp_path / "src"
    big_tree(src, files=30, size=4 << 20)
    master, slave = pty.openpty()
    p = subprocess.Popen([str(Path(__file__).resolve().parents[2] / "build" / "lifeboat"), "backup", str(src)],
                         env=lb.env, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    p.wait(timeout=120)
    os.close(master)
    assert p.returncode == 0
    assert b"files" in seen and b"/s" in seen, seen[:500]
    q = lb.run("backup", src)  # stderr is a pipe here: no progress lines
    assert "\r" not in q.stderr


def packs_by_size(repo: Path):
    return sorted((p for p in (repo / "data").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


def test_backup_never_builds_on_a_pack_that_is_gone(lb, tmp_path):
    """A pack file deleted behind Lifeboat's back: the next backup (with its parent, and with --force)
    must store that data again rather than reference it, warn that the repository is damaged, and
    leave a snapshot that restores whole."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(6):
        (src / f"f{i}").write_bytes(os.urandom(300_000))
    lb.run("backup", src)
    gone = packs_by_size(lb.repo)[-1]  # the largest: file data
    gone.unlink()
    for flags in ([], ["--force"]):
        p = lb.run("backup", *flags, src)
        assert p.returncode == 0, p.stderr
        assert "repository is damaged" in p.stderr and gone.name[:8] in p.stderr and "lifeboat check" in p.stderr, p.stderr
        out = tmp_path / f"out{len(flags)}"
        lb.run("restore", "latest", "--target", out, "--verify")
        for i in range(6):
            assert (out / str(src).lstrip("/") / f"f{i}").read_bytes() == (src / f"f{i}").read_bytes()
    # The older snapshot is still damaged, and check says so.
    p = lb.run("check", check=False)
    assert p.returncode == 1 and gone.name in p.stderr, p.stderr


def test_a_foreign_or_damaged_snapshot_file_does_not_stop_backups(lb, tmp_path):
    import hashlib
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_text("a" * 1000)
    lb.run("backup", src)
    junk = b"not a lifeboat snapshot"
    foreign = lb.repo / "snapshots" / hashlib.sha256(junk).hexdigest()  # well named, but not sealed by us
    foreign.write_bytes(junk)
    (src / "a").write_text("b" * 1000)
    p = lb.run("backup", src)
    assert p.returncode == 0, p.stderr
    assert f"skipping snapshot file {foreign.name[:8]}" in p.stderr and "lifeboat check" in p.stderr, p.stderr
    out = lb.json("backup", src)  # and the parent is still found among the readable ones
    assert out["summary"]["files_unmodified"] == 1, out["summary"]


def test_check_read_data_reads_every_pack_file_indexed_or_not(lb, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "doc").write_bytes(os.urandom(100_000))
    lb.run("backup", src)
    assert "no errors" in lb.run("check", "--read-data").stdout
    pack = next(p for p in (lb.repo / "data").rglob("*") if p.is_file())
    # An unindexed copy under another pack's name (its content does not hash to it), and a file whose
    # name is no pack ID at all: neither is named by the index, both are damage.
    wrong = pack.parent / ("0" * 62 + pack.name[-2:])
    wrong = (lb.repo / "data" / wrong.name[:2]) / wrong.name
    wrong.parent.mkdir(exist_ok=True)
    wrong.write_bytes(pack.read_bytes())
    stray = pack.parent / "not-a-pack"
    stray.write_bytes(b"junk")
    quick = lb.run("check", check=False)  # without --read-data these are leftovers, not damage
    assert quick.returncode == 0, quick.stderr
    p = lb.run("check", "--read-data", check=False)
    assert p.returncode == 1, p.stdout + p.stderr
    assert f"pack {wrong.name}: content does not match its name" in p.stderr, p.stderr
    assert "pack file not-a-pack: the name is not a pack ID" in p.stderr, p.stderr


def test_an_explicit_path_beyond_a_symlink_is_reported_not_dropped(lb, tmp_path):
    a = tmp_path / "A"
    (tmp_path / "elsewhere" / "sub").mkdir(parents=True)
    (tmp_path / "elsewhere" / "sub" / "f").write_text("beyond the link")
    a.mkdir()
    (a / "plain").write_text("in A")
    os.symlink(tmp_path / "elsewhere", a / "link")
    p = lb.run("backup", a, a / "link" / "sub", check=False)
    assert p.returncode == 3, (p.returncode, p.stderr)
    assert str(a / "link" / "sub") in p.stderr and "symbolic link" in p.stderr, p.stderr
    listed = lb.run("ls", "latest").stdout
    assert str(a / "plain") in listed and str(a / "link") in listed  # the rest is backed up
    # A path inside another without a link on the way is simply included.
    (a / "real" / "deeper").mkdir(parents=True)
    assert lb.run("backup", a, a / "real" / "deeper", check=False).returncode == 0


def test_repair_index_rebuilds_it_from_the_packs(lb, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / f"f{i}").write_bytes(os.urandom(200_000))
    lb.run("backup", src)
    (src / "f0").write_bytes(os.urandom(200_000))
    lb.run("backup", src)
    for f in (lb.repo / "index").iterdir():
        f.unlink()
    p = lb.run("check", check=False)
    assert p.returncode == 1 and "lifeboat repair index" in p.stderr, p.stderr
    assert lb.run("restore", "latest", "--target", tmp_path / "before", check=False).returncode != 0
    out = lb.json("repair", "index")
    assert out["packs"] >= 2 and out["blobs"] >= 8 and out["unreadable_packs"] == [], out
    assert "no errors" in lb.run("check", "--read-data").stdout
    lb.run("restore", "latest", "--target", tmp_path / "after", "--verify")
    assert (tmp_path / "after" / str(src).lstrip("/") / "f0").read_bytes() == (src / "f0").read_bytes()


def test_repair_snapshots_drops_what_is_gone_and_keeps_the_rest(tmp_path):
    boat = Lifeboat(tmp_path / "repo")
    boat.run("init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1", "--pack-size-mib", "1")
    src = tmp_path / "src"
    src.mkdir()
    for i in range(8):
        (src / f"f{i}").write_bytes(os.urandom(400_000))
    boat.run("backup", src)
    packs = packs_by_size(boat.repo)
    assert len(packs) >= 3
    packs[-1].unlink()  # a data pack: some files lose their data, others keep it
    p = boat.run("check", check=False)
    assert p.returncode == 1 and "repair snapshots" in p.stderr, p.stderr
    dry = boat.json("repair", "snapshots", "--dry-run")
    assert len(dry["rewritten"]) == 1 and dry["rewritten"][0]["repaired"] == "" and dry["rewritten"][0]["removed"]
    assert len(boat.json("snapshots")) == 1, "a dry run writes nothing"
    boat.run("repair", "index")  # the index no longer names the pack that is gone
    out = boat.json("repair", "snapshots", "--forget")
    (rewritten,) = out["rewritten"]
    lost = {Path(x).name for x in rewritten["removed"]}
    assert lost and len(lost) < 8, lost
    snaps = boat.json("snapshots")
    assert len(snaps) == 1 and "repaired" in snaps[0]["tags"] and snaps[0]["id"] == rewritten["repaired"]
    assert "no errors" in boat.run("check", "--read-data").stdout
    target = tmp_path / "out"
    boat.run("restore", "latest", "--target", target, "--verify")
    restored = {p.name for p in (target / str(src).lstrip("/")).iterdir()}
    assert restored == {f"f{i}" for i in range(8)} - lost
    for name in restored:
        assert (target / str(src).lstrip("/") / name).read_bytes() == (src / name).read_bytes()


def test_a_write_that_fails_removes_its_file_and_names_the_cause(lb, tmp_path):
    """A file that cannot be written whole (here: a file-size limit, as a full disk would) is removed,
    the restore names the file and the cause and fails; files written whole stay."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "small.txt").write_bytes(b"x" * 1000)
    (src / "big.bin").write_bytes(os.urandom(300_000))
    lb.run("backup", src)

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of a signal

    target = tmp_path / "r"
    p = subprocess.run([str(LIFEBOAT), "restore", "latest", "--target", str(target)], env=lb.env, preexec_fn=limit,
                       capture_output=True, text=True)
    assert p.returncode == 1, p.stderr
    assert "big.bin" in p.stderr and "File too large" in p.stderr, p.stderr
    assert sorted(f.name for f in target.rglob("*") if f.is_file()) == ["small.txt"]
