"""Backup → break → restore of plain files through the CLI: contents, metadata, selection by time."""
import json
import os
import shutil
import time
from pathlib import Path

from conftest import tree_digest


def make_tree(root: Path):
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty-dir").mkdir()
    (root / "a.txt").write_text("alpha\n")
    (root / "sub" / "b.bin").write_bytes(os.urandom(3 << 20))
    (root / "sub" / "deeper" / "c.txt").write_text("gamma " * 1000)
    (root / "empty").write_bytes(b"")
    (root / "spaces and\nnewline").write_text("odd name")
    os.symlink("a.txt", root / "link-to-a")
    os.link(root / "a.txt", root / "hard-a")
    (root / "script.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(root / "script.sh", 0o750)
    with open(bytes(root) + b"/latin1-\xe9", "wb") as f:
        f.write(b"non-utf8 name")
    with open(root / "sparse", "wb") as f:
        f.seek(20 << 20)
        f.write(b"end")
    os.setxattr(root / "a.txt", "user.purpose", b"demo")
    os.setxattr(root / "sub" / "b.bin", "user.empty", b"")
    os.setxattr(root / "sub", "user.on-a-directory", bytes(range(256)))
    os.utime(root / "sub" / "deeper", ns=(1_500_000_000_123_456_789, 1_500_000_000_123_456_789))
    if os.geteuid() == 0:
        os.chown(root / "sub" / "b.bin", 1234, 5678)


def test_backup_restore_round_trip_keeps_everything(lb, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    make_tree(src)
    out = lb.json("backup", src)
    assert out["summary"]["files_new"] == 9, out["summary"]
    target = tmp_path / "restore"
    r = lb.json("restore", "latest", "--target", target, "--verify")
    assert r["errors"] == []
    assert r["files_verified"] == 8  # every file written (the hard link shares a.txt's inode, checked below)
    restored = target / str(src).lstrip("/")
    assert tree_digest(restored) == tree_digest(src)
    a, hard = (restored / "a.txt").stat(), (restored / "hard-a").stat()
    assert a.st_ino == hard.st_ino
    assert os.getxattr(restored / "a.txt", "user.purpose") == b"demo"
    assert (restored / "sparse").stat().st_blocks * 512 < (1 << 20), "holes must stay holes"
    if os.geteuid() == 0:
        st = (restored / "sub" / "b.bin").stat()
        assert (st.st_uid, st.st_gid) == (1234, 5678)


def test_incremental_backup_skips_unchanged_and_diff_shows_changes(lb, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(50):
        (src / f"f{i:02}").write_text(f"file {i}\n" * 100)
    first = lb.json("backup", src)
    (src / "f07").write_text("changed")
    (src / "new").write_text("new file")
    (src / "f09").unlink()
    second = lb.json("backup", src)
    s = second["summary"]
    assert (s["files_new"], s["files_changed"], s["files_unmodified"]) == (1, 1, 48)
    diff = lb.json("diff", first["snapshot_id"][:8], second["snapshot_id"][:8])
    changes = {(c["change"], c["path"].rstrip("/").rsplit("/", 1)[-1]) for c in diff["changes"]}
    # The directory itself changed mtime (metadata only), the three files changed as they did.
    assert changes == {("M", "f07"), ("+", "new"), ("-", "f09"), ("U", "src")}
    assert (diff["added"], diff["removed"], diff["modified"]) == (1, 1, 1)


def test_restore_at_picks_the_snapshot_of_that_moment(lb, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "state.txt").write_text("version 1")
    lb.run("backup", src)
    time.sleep(1.2)
    between = time.time()  # more than a second after the first backup and before the second
    time.sleep(1.2)
    (src / "state.txt").write_text("version 2")
    lb.run("backup", src)
    state = lambda d: (tmp_path / d / str(src).lstrip("/") / "state.txt").read_text()
    lb.run("restore", "--at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(between)), "--target", tmp_path / "r1")
    assert state("r1") == "version 1"
    # A time without zone is local time: under UTC+5:30 (a POSIX TZ string, no tzdata needed) the
    # wall-clock string of `between` there names the same instant; read as UTC it is 5.5 h later.
    local = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(between + 5.5 * 3600))
    lb.run("restore", "--at", local, "--target", tmp_path / "r2", env={"TZ": "XST-5:30"})
    assert state("r2") == "version 1"
    lb.run("restore", "--at", local, "--target", tmp_path / "r3", env={"TZ": "UTC"})
    assert state("r3") == "version 2"
    # West of UTC too (UTC-7): a zone offset written out wins over TZ.
    west = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(between - 7 * 3600))
    lb.run("restore", "--at", west, "--target", tmp_path / "r4", env={"TZ": "XST+7"})
    assert state("r4") == "version 1"
    explicit = time.strftime("%Y-%m-%dT%H:%M:%S+05:30", time.gmtime(between + 5.5 * 3600))
    lb.run("restore", "--at", explicit, "--target", tmp_path / "r5", env={"TZ": "XST+7"})
    assert state("r5") == "version 1"
    p = lb.run("restore", "--at", "2001-01-01", "--target", tmp_path / "r6", check=False)
    assert p.returncode == 1 and "no snapshot at or before" in p.stderr
    p = lb.run("restore", "--at", "last tuesday", "--target", tmp_path / "r6", check=False)
    assert p.returncode == 1 and "RFC 3339" in p.stderr


def test_include_restores_only_matching_paths(lb, tmp_path):
    src = tmp_path / "src"
    make_tree(src) if src.mkdir() is None else None
    lb.run("backup", src)
    target = tmp_path / "r"
    lb.run("restore", "latest", "--target", target, "--include", "*/sub/deeper")
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert files == [str(src / "sub" / "deeper" / "c.txt").lstrip("/")]


def test_snapshots_ls_stats_json(lb, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "x").write_bytes(b"x" * 100000)
    (src / "y").write_bytes(b"x" * 100000)  # duplicate content
    lb.run("backup", src, "--tag", "daily", "--host", "web-1")
    snaps = lb.json("snapshots")
    assert len(snaps) == 1 and snaps[0]["tags"] == ["daily"] and snaps[0]["hostname"] == "web-1"
    assert lb.json("snapshots", "--host", "other") == []
    lines = [json.loads(l) for l in lb.run("ls", "latest", "--json").stdout.splitlines()]
    paths = {l["path"] for l in lines if "path" in l}
    assert str(src / "x") in paths and str(src / "y") in paths
    stats = lb.json("stats")
    assert stats["restore_size_bytes"] == 200000
    assert stats["dedup_ratio"] >= 2.0
    assert stats["compression_ratio"] > 10


def test_stdin_from_command_stores_output_and_fails_with_the_command(lb, tmp_path):
    out = lb.json("backup", "--stdin-from-command", "--stdin-filename", "dump.sql", "--",
                  "sh", "-c", "for i in $(seq 1 2000); do echo row $i; done")
    assert out["summary"]["total_bytes"] > 10000
    lb.run("restore", "latest", "--target", tmp_path / "r")
    text = (tmp_path / "r" / "dump.sql").read_text()
    assert text.startswith("row 1\n") and text.endswith("row 2000\n")
    p = lb.run("backup", "--stdin-from-command", "--", "sh", "-c", "echo partial; exit 3", check=False)
    assert p.returncode == 1
    assert "exited with status 3" in p.stderr and "no snapshot" in p.stderr
    assert len(lb.json("snapshots")) == 1


def test_json_output_is_valid_whatever_bytes_names_hold(lb, tmp_path):
    base = bytes(tmp_path) + b"/caf\xe9-\xff\xfe"  # not UTF-8
    os.makedirs(base + b"/sub\x80")
    with open(base + b"/sub\x80/n\xe9e", "wb") as f:
        f.write(b"x" * 100)
    src = os.fsdecode(base)
    for args in (["backup", src], ["snapshots"], ["ls", "latest"], ["stats"], ["check"]):
        p = lb.run("--json", *args)
        for line in p.stdout.splitlines():
            json.loads(line)  # raises on invalid JSON
        assert p.stdout.strip(), args
    entries = [json.loads(l) for l in lb.run("--json", "ls", "latest").stdout.splitlines()]
    assert any("\ufffd" in json.dumps(e, ensure_ascii=False) for e in entries)
    out = tmp_path / "out"
    lb.run("restore", "latest", "--target", out)
    restored = bytes(out) + base + b"/sub\x80/n\xe9e"
    with open(restored, "rb") as f:
        assert f.read() == b"x" * 100, "the bytes of names are kept; only JSON output replaces them"


def test_restore_never_follows_a_symlink_it_did_not_create(lb, tmp_path):
    """The target holds links planted where the snapshot's directories go: `T/tmp -> elsewhere` at the
    top and one level deeper. Nothing outside the target may be written or changed, and the error
    names the path in the way."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f").write_text("data")
    (src / "top").write_text("top")
    os.chmod(src, 0o1777)
    lb.run("backup", src)
    rel = Path(str(src).lstrip("/"))
    first = rel.parts[0]  # "tmp"
    for depth, planted in (("top", Path(first)), ("deeper", rel / "sub")):
        target = tmp_path / f"T-{depth}"
        elsewhere = tmp_path / f"elsewhere-{depth}"
        elsewhere.mkdir()
        os.chmod(elsewhere, 0o755)
        (target / planted).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(elsewhere, target / planted)
        p = lb.run("restore", "latest", "--target", target, check=False)
        assert p.returncode != 0 and "is not empty" in p.stderr, p.stderr  # refused without --overwrite
        p = lb.run("restore", "latest", "--target", target, "--overwrite", "always", check=False)
        assert p.returncode != 0, p.stdout
        assert "is in the way" in p.stderr and "never" in p.stderr and "nothing was written" in p.stderr, p.stderr
        assert list(elsewhere.iterdir()) == [], f"restore wrote outside its target: {list(elsewhere.rglob('*'))}"
        assert (elsewhere.stat().st_mode & 0o7777) == 0o755, "restore changed a directory outside its target"
        assert (target / planted).is_symlink()


def test_restore_into_a_non_empty_target_overwrite_modes_delete_and_dry_run(lb, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    for name in ("a", "b", "sub/c"):
        (src / name).write_text(f"backed-up {name}")
    lb.run("backup", src)
    target = tmp_path / "T"
    lb.run("restore", "latest", "--target", target)
    r = target / str(src).lstrip("/")
    (r / "a").write_text("edited after the backup, and newer")
    (r / "b").write_text("edited but older than the backup")
    os.utime(r / "b", (946684800, 946684800))  # 2000-01-01
    (r / "extra").write_text("not in the snapshot")
    (r / "sub" / "extra2").write_text("not in the snapshot either")
    state = lambda: {p.relative_to(r).as_posix(): p.read_text() for p in r.rglob("*") if p.is_file()}
    edited = state()

    p = lb.run("restore", "latest", "--target", target, check=False)
    assert p.returncode == 1 and "is not empty" in p.stderr and "--overwrite" in p.stderr, p.stderr
    assert state() == edited

    dry = lb.json("restore", "latest", "--target", target, "--overwrite", "if-changed", "--delete", "--dry-run")
    changes = {(c["change"], Path(c["path"]).relative_to(r).as_posix()) for c in dry["changes"]}
    assert {("M", "a"), ("M", "b"), ("=", "sub/c"), ("-", "extra"), ("-", "sub/extra2")} <= changes, changes
    assert state() == edited, "a dry run writes nothing"

    lb.run("restore", "latest", "--target", target, "--overwrite", "never")
    assert state() == edited
    lb.run("restore", "latest", "--target", target, "--overwrite", "if-newer")
    assert state() == {**edited, "b": "backed-up b"}, "only the file older than the backup is replaced"
    out = lb.json("restore", "latest", "--target", target, "--overwrite", "if-changed", "--delete")
    assert out["deleted"] == 2 and out["skipped"] >= 2, out
    assert state() == {"a": "backed-up a", "b": "backed-up b", "sub/c": "backed-up sub/c"}
    assert tree_digest(r) == tree_digest(src)

    # A conflict is found before anything is written.
    (r / "a").write_text("edited again")
    (r / "sub" / "c").unlink()
    (r / "sub").rmdir()
    (r / "sub").write_text("a file where the snapshot has a directory")
    p = lb.run("restore", "latest", "--target", target, "--overwrite", "always", check=False)
    assert p.returncode == 1 and "conflict" in p.stderr and "nothing was written" in p.stderr, p.stderr
    assert (r / "a").read_text() == "edited again"


FILES_TAMPER = r'''
import os, sys
root, how = sys.argv[1], sys.argv[2]
for d, dirs, files in os.walk(root):
    for f in files + dirs:
        p = os.path.join(d, f)
        if f == "a.txt" and how == "mode":
            os.chmod(p, 0o600)
        if f == "a.txt" and how == "mtime":
            st = os.stat(p)
            os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
        if f == "a.txt" and how == "xattr":
            os.setxattr(p, "user.added", b"1")
        if f == "a.txt" and how == "owner":
            os.chown(p, 4321, 4321)
        if f == "pipe" and how == "type":
            os.remove(p)
            open(p, "w").close()
        if f == "link" and how == "link":
            os.remove(p)
            os.symlink("elsewhere", p)
        if f == "sub" and how == "extra":  # the directory's time put back: only the extra file differs
            st = os.stat(p)
            open(os.path.join(p, "stray.txt"), "w").write("not in the backup")
            os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
'''


def test_files_checks_see_metadata_types_links_and_extras(lb, tmp_path):
    """After a clean drill, each tamper of the restored target fails the check that covers it — mode,
    modification time, an xattr, the owner (as root), a FIFO turned into a file, a link's target —
    and an extra file is named (a files restore removes nothing, so it is reported, not failed)."""
    import sys
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha")
    os.chmod(src / "a.txt", 0o640)
    os.setxattr(src / "a.txt", "user.kept", b"yes")
    (src / "sub" / "b.txt").write_text("beta")
    os.mkfifo(src / "pipe")
    os.symlink("a.txt", src / "link")
    hook = tmp_path / "tamper.py"
    hook.write_text(FILES_TAMPER)
    target = tmp_path / "drill"
    plan = tmp_path / "lifeboat.yaml"

    def drill(how):
        if target.exists():
            shutil.rmtree(target)
        plan.write_text(f"""
repositories:
  main: {{url: "{lb.repo}"}}
sources:
  assets:
    kind: files
    paths: ["{src}"]
    validation: [hashes, counts]
    environments:
      test: {{target: "{target}"}}
drills: {{after_restore: "{sys.executable} {hook} {target} {how}"}}
""")
        p = lb.run("--json", "drill", env={"LIFEBOAT_PLAN": str(plan)}, check=False)
        d = json.JSONDecoder().raw_decode(p.stdout)[0]
        return p.returncode, {c["check"]: c for s in d["sources"] for c in s["result"]["checks"]}

    drill("none")
    lb.run("backup", env={"LIFEBOAT_PLAN": str(plan)})
    rc, checks = drill("none")
    assert rc == 0 and checks["hashes"]["ok"] and checks["counts"]["ok"], checks
    cases = {"mode": ("hashes", "mode 0600, the backup has 0640"), "mtime": ("hashes", "modification time"),
             "xattr": ("hashes", "extended attributes"), "type": ("counts", "another type of file"),
             "link": ("counts", "symlink missing or changed")}
    if os.geteuid() == 0:
        cases["owner"] = ("hashes", "owner 4321:4321")
    for how, (check, words) in cases.items():
        rc, checks = drill(how)
        assert rc == 1 and not checks[check]["ok"] and words in checks[check]["detail"], (how, checks)
    rc, checks = drill("extra")
    assert rc == 0 and checks["counts"]["ok"] and "stray.txt" in checks["counts"]["detail"], checks
