"""Fixtures for driving the lifeboat binary end to end against a local repository."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIFEBOAT = Path(os.environ.get("LIFEBOAT_BIN", ROOT / "build" / "lifeboat"))
sys.path.insert(0, str(ROOT / "tests" / "peers"))


class Lifeboat:
    def __init__(self, repo: Path, password: str = "correct horse"):
        self.repo = repo
        self.env = dict(os.environ, LIFEBOAT_REPOSITORY=str(repo), LIFEBOAT_PASSWORD=password, TZ="UTC")
        self.env.pop("LIFEBOAT_PASSWORD_FILE", None)

    def run(self, *args, check=True, env=None, **kw):
        e = dict(self.env, **(env or {}))
        p = subprocess.run([str(LIFEBOAT), *map(str, args)], env=e, capture_output=True, text=True, errors="replace", **kw)
        if check and p.returncode != 0:
            raise AssertionError(f"lifeboat {' '.join(map(str, args))} exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def json(self, *args, **kw):
        p = self.run("--json", *args, **kw)
        return json.loads(p.stdout)

    def popen(self, *args, **kw):
        return subprocess.Popen([str(LIFEBOAT), *map(str, args)], env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, **kw)

    def run_measured(self, *args, env=None):
        """Runs lifeboat; returns (CompletedProcess, its peak resident memory in MiB) as the kernel
        accounted that one process. Through /usr/bin/time: a process forked straight from this (large)
        test worker would carry the worker's resident size in its high-water mark across exec."""
        import re
        e = dict(self.env, **(env or {}))
        p = subprocess.run(["/usr/bin/time", "-f", "LIFEBOAT_MAXRSS_KB=%M", str(LIFEBOAT), *map(str, args)], env=e,
                           capture_output=True, text=True, errors="replace")
        if p.returncode != 0:
            raise AssertionError(f"lifeboat {' '.join(map(str, args))} exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
        kb = int(re.findall(r"LIFEBOAT_MAXRSS_KB=(\d+)", p.stderr)[-1])
        return p, kb / 1024

    def init(self):
        return self.run("init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1")


@pytest.fixture
def lb(tmp_path):
    assert LIFEBOAT.exists(), f"build lifeboat first ({LIFEBOAT})"
    boat = Lifeboat(tmp_path / "repo")
    boat.init()
    return boat


def tree_digest(root: Path):
    """Maps each relative path to what a restore must reproduce: type, mode, size, content, link target,
    modification times (directories' too) and every extended attribute."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
                continue
            xattrs = {a: os.getxattr(p, a, follow_symlinks=False) for a in os.listxattr(p, follow_symlinks=False)}
            if p.is_dir():
                out[rel] = ("dir", st.st_mode & 0o7777, st.st_mtime_ns, xattrs)
            else:
                out[rel] = ("file", st.st_mode & 0o7777, st.st_size, p.read_bytes(), st.st_mtime_ns, xattrs)
    return out
