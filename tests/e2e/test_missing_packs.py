"""A backup never builds on data that is gone: with a pack deleted behind the index's back, the next
backup (with or without --force) stores the lost blobs again, warns that the repository is damaged and
names `check`, and the new snapshot restores completely (issue: "Backup never builds on data that is gone")."""
import os

from conftest import tree_digest


def test_backup_after_a_pack_is_lost_stores_the_data_again(lb, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(24):
        (src / f"f{i:02d}.bin").write_bytes(os.urandom(300_000))
    lb.run("backup", src)
    packs = sorted((p for p in (lb.repo / "data").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    assert packs
    packs[-1].unlink()  # the biggest: it holds file data
    for n, extra in enumerate(([], ["--force"])):
        r = lb.run("backup", src, *extra)
        assert "pack(s) the index names are missing from storage" in r.stderr and "lifeboat check" in r.stderr, r.stderr
        target = tmp_path / f"restore-{n}"
        lb.run("restore", "latest", "--target", target, "--verify")
        assert tree_digest(target / str(src).lstrip("/")) == tree_digest(src)
    # The first snapshot is still damaged, and check says so.
    assert lb.run("check", check=False).returncode != 0
