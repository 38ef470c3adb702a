#!/usr/bin/env python3
"""Lifeboat vs restic on the same ~1 GB tree, same machine, same run: wall time, repository size, peak RSS.

Phases: initial backup, no-change backup, backup after 1% of files changed, restore, check --read-data.
Prints Lifeboat/restic ratios and appends the figures to bench/RESULTS.md.

--tree DIR (BENCH_TREE=DIR make bench) runs on a real directory instead of the generated one: the 1%
change is skipped (the tree is only read). On either tree two floors are timed on the same tree in the
same rounds: `tar -x` of an uncompressed archive of it followed by `sync` (what a restore cannot beat),
and `tar -c | zstd -T0 -3` (what a compressing backup cannot beat), also followed by `sync` (what a
backup that is on disk when it reports, as both tools' are, cannot beat). Restores, checks and the
`tar -x` floor start with the page cache dropped when the bench runs as root (benchlib.drop_page_cache).
"""
import argparse
import datetime
import functools
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import benchlib

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / "work"
LIFEBOAT = ROOT / "build" / "lifeboat"
RESTIC = ROOT / ".peers" / "bin" / "restic"
GOALS = {"initial backup": 0.5, "no-change backup": 0.3, "backup after 1% changed": 0.5, "restore": 0.5}


def generate_tree(root: Path, total_bytes: int, files: int, seed: int = 42):
    """~50k files of mixed sizes: text (compressible) and binary, with some exact duplicates."""
    marker = root / ".complete"
    if marker.exists() and marker.read_text() == f"{total_bytes} {files} {seed}":
        return
    shutil.rmtree(root, ignore_errors=True)
    rnd = random.Random(seed)
    words = [bytes(rnd.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 10))) for _ in range(5000)]
    text = b" ".join(rnd.choice(words) for _ in range(2_000_000))  # ~12 MB of text to slice from
    # Sizes: mostly small, some medium, a few large; scaled to the total.
    sizes = []
    for _ in range(files):
        r = rnd.random()
        sizes.append(rnd.randint(200, 16_000) if r < 0.85 else rnd.randint(16_000, 400_000) if r < 0.99
                     else rnd.randint(2_000_000, 40_000_000))
    scale = total_bytes / sum(sizes)
    sizes = [max(1, int(s * scale)) for s in sizes]
    written = []
    for i, size in enumerate(sizes):
        d = root / f"d{i % 97:02}" / f"s{i % 13}"
        d.mkdir(parents=True, exist_ok=True)
        p = d / f"f{i:06}.{'txt' if i % 3 == 0 else 'bin'}"
        if written and rnd.random() < 0.05:
            shutil.copyfile(rnd.choice(written), p)  # duplicate content
            continue
        if i % 3 == 0:
            data = b""
            while len(data) < size:
                off = rnd.randrange(0, len(text) - 1)
                data += text[off:off + size - len(data)]
        else:
            data = rnd.randbytes(size)
        p.write_bytes(data)
        written.append(p)
    marker.write_text(f"{total_bytes} {files} {seed}")


def change_one_percent(root: Path, seed: int):
    rnd = random.Random(seed)
    files = sorted(p for p in root.rglob("f*") if p.is_file())
    for p in rnd.sample(files, max(1, len(files) // 100)):
        data = bytearray(p.read_bytes())
        if data:
            for _ in range(4):
                data[rnd.randrange(len(data))] ^= 0xFF
        p.write_bytes(bytes(data) + b"changed")


def timed(cmd, env):
    seconds, rss, _ = benchlib.timed(cmd, env)
    return seconds, rss


@functools.lru_cache(maxsize=None)
def fstype(path: Path) -> str:
    return subprocess.run(["df", "--output=fstype", str(path)], capture_output=True, text=True).stdout.split()[-1]


def forget_restore(target: Path, junk: list):
    """What becomes of a restore once timed. On tmpfs it is deleted at once (and the machine given a moment),
    so every restore, either tool's or tar's, starts from the same state: kept until the phase ended, each
    restore wrote into a tmpfs fuller than the last and this VM slowed with it (the same `tar -x` took
    1.05 s, then 5.96 s), so the round order, not the tools, set the medians. On a disk it is kept until
    the phase ends: ext4 (online discard, and an inode allocator that scans recently deleted inodes) makes
    whatever runs after a deletion pay for it (the same `tar -x` + sync: 7.8 s kept, 18.3 s deleted)."""
    if fstype(target.parent) == "tmpfs":
        shutil.rmtree(target, ignore_errors=True)
        os.sync()
        time.sleep(3)
    else:
        junk.append(target)


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


COLD_READS = ("; page cache dropped before every restore, check and `tar -x` (the repository and the archive "
              "are read from the disk)")


class Tool:
    def __init__(self, name, scratch: Path, tree: Path):
        self.name, self.tree, self.scratch = name, tree, scratch
        self.repo = scratch / f"repo-{name}"
        self.junk = []  # repositories and restore targets to delete between phases, never inside a timed one
        if name == "lifeboat":
            self.bin, self.repo_var, self.password_var = LIFEBOAT, "LIFEBOAT_REPOSITORY", "LIFEBOAT_PASSWORD"
        else:
            self.bin, self.repo_var, self.password_var = RESTIC, "RESTIC_REPOSITORY", "RESTIC_PASSWORD"
        self.set_repo(self.repo)

    def set_repo(self, repo: Path):
        self.repo = repo
        self.env = dict(os.environ, **{self.repo_var: str(repo), self.password_var: "bench"},
                        RESTIC_CACHE_DIR=str(repo) + "-cache", **benchlib.RESTIC_SETTINGS)

    def init(self, round_no):
        if self.repo.exists():
            self.junk += [self.repo, Path(str(self.repo) + "-cache")]
        self.set_repo(self.scratch / f"repo-{self.name}-{round_no}")
        settings = benchlib.LIFEBOAT_INIT_SETTINGS if self.name == "lifeboat" else []
        subprocess.run([self.bin, "init", "-q", *settings], env=self.env, check=True, capture_output=True)

    def backup(self):
        return timed([self.bin, "backup", "-q", self.tree], self.env)

    def restore(self, round_no):
        target = self.scratch / f"restore-{self.name}-{round_no}"
        benchlib.cold_cache(self.env["RESTIC_CACHE_DIR"])
        benchlib.drop_page_cache()
        seconds, rss = timed([self.bin, "restore", "-q", "latest", "--target", target], self.env)
        # Until written back, a restore is not on the disk: the floor (tar -x) is timed with its sync,
        # so this is too (neither tool syncs by itself).
        start = time.monotonic()
        os.sync()
        self.synced = (seconds + time.monotonic() - start, rss)
        forget_restore(target, self.junk)
        return seconds, rss

    def check(self):
        benchlib.drop_page_cache()
        return timed([self.bin, "check", "-q", "--read-data"], self.env)

    def clean(self, everything=False):
        for p in self.junk + ([self.repo, Path(str(self.repo) + "-cache")] if everything else []):
            shutil.rmtree(p, ignore_errors=True)
        self.junk = []
        os.sync()


class Floors:
    """What the disk and the CPU allow on the same tree: `tar -x` of an uncompressed archive (made once,
    untimed) and then `sync`, and `tar -c | zstd -T0 -3` of the tree."""

    name = "floor"

    def __init__(self, scratch: Path, tree: Path):
        self.scratch, self.tree = scratch, tree
        self.archive = scratch / "floor-tree.tar"
        subprocess.run(["tar", "-cf", self.archive, "-C", tree.parent, tree.name], check=True)
        self.junk = []

    def untar(self, round_no):
        target = self.scratch / f"restore-floor-{round_no}"
        target.mkdir()
        benchlib.drop_page_cache()
        result = timed(["sh", "-c", f"tar -xf '{self.archive}' -C '{target}' && sync"], dict(os.environ))
        forget_restore(target, self.junk)
        return result

    def compress(self, round_no, durable=False):
        """`tar -c | zstd -T0 -3` into a file; durable: and `sync` (both backup tools fsync every pack
        before they report a backup, so this is the floor for what they promise)."""
        out = self.scratch / f"floor-{round_no}{'-synced' if durable else ''}.tar.zst"
        self.junk.append(out)
        return timed(["sh", "-c", f"tar -cf - -C '{self.tree.parent}' '{self.tree.name}' | zstd -T0 -3 -q -c > '{out}'"
                                  + (" && sync" if durable else "")], dict(os.environ))

    def clean(self):
        for p in self.junk + [self.archive]:
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        self.junk = []


median = benchlib.median  # other benches import it from here


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--files", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs per phase and tool (median reported)")
    ap.add_argument("--scratch", default=str(WORK), help="where repositories and restore targets live")
    ap.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    ap.add_argument("--tree", help="a real directory to back up instead of the generated tree (only read)")
    args = ap.parse_args()
    if args.repeat != benchlib.odd(args.repeat):
        print(f"--repeat {args.repeat} → {benchlib.odd(args.repeat)}: an odd count, so the median is a real run")
        args.repeat = benchlib.odd(args.repeat)
    WORK.mkdir(parents=True, exist_ok=True)
    scratch = Path(args.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    # What an interrupted run left behind (its repositories would make `init` fail, its trees take room).
    for left in [*scratch.glob("repo-lifeboat*"), *scratch.glob("repo-restic*"), *scratch.glob("restore-*"),
                 *scratch.glob("floor-*")]:
        shutil.rmtree(left, ignore_errors=True) if left.is_dir() else left.unlink(missing_ok=True)
    if args.tree:
        tree = Path(args.tree).resolve()
        if not tree.is_dir():
            sys.exit(f"BENCH_TREE={args.tree}: not a directory")
        nfiles = sum(len(f) for _, _, f in os.walk(tree))
        print(f"real tree {tree}: {nfiles} files, {du(tree) / 2**20:.0f} MB (only read)", flush=True)
    else:
        tree = WORK / f"tree-{args.size_mb}mb-{args.files}"
        print(f"generating {args.size_mb} MB in {args.files} files under {tree} (cached between runs)…", flush=True)
        generate_tree(tree, args.size_mb << 20, args.files)
    tools = [Tool("lifeboat", scratch, tree), Tool("restic", scratch, tree)]
    runs = {}

    def record(phase, tool, result):
        runs.setdefault((phase, tool.name), []).append(result)
        print(f"  {phase:<26} {tool.name:<9} {result[0]:7.2f} s  {result[1] / 2**20:7.1f} MiB RSS", flush=True)

    # Runs alternate between the tools, and which goes first alternates by round, so both see the same
    # machine state; medians absorb this VM's disk noise. Deleting gigabytes (with online discard)
    # slows whatever runs next, so deletions happen between phases, never between timed runs.
    def rounds():
        for r in range(args.repeat):
            yield r, (tools if r % 2 == 0 else tools[::-1])

    def settle():
        for t in tools:
            t.clean()
        time.sleep(2)

    for r, order in rounds():
        for t in order:
            t.init(r)
            record("initial backup", t, t.backup())
    sizes = {t.name: du(t.repo) for t in tools}
    settle()
    for r, order in rounds():
        for t in order:
            record("no-change backup", t, t.backup())
    # Each round changes another 1% (relative to both tools' latest backups, which saw the same tree),
    # and the tools alternate which goes first, as in every other phase. A real tree is never changed.
    if not args.tree:
        (tree / ".complete").unlink(missing_ok=True)  # the changed tree must not pass for the pristine one
        for r, order in rounds():
            change_one_percent(tree, seed=1 + r)
            for t in order:
                record("backup after 1% changed", t, t.backup())
    # What writing this tree costs on this machine, in the same rounds: on this VM it moves with the
    # guest's memory state (the same `tar -x` of the generated tree into tmpfs took 1.05 s and 5.96 s
    # within minutes), and both tools pay it, so the floor tells a slow machine from a slow tool.
    floors = Floors(scratch, tree)
    for r, order in rounds():
        for t in order:
            record("restore", t, t.restore(r))
            record("restore + sync", t, t.synced)
        record("restore", floors, floors.untar(r))
    settle()
    for r, _ in rounds():
        record("initial backup", floors, floors.compress(r))
        record("initial backup, synced", floors, floors.compress(r, durable=True))
    floors.clean()
    for r, order in rounds():
        for t in order:
            record("check --read-data", t, t.check())
    phases = ["initial backup", "no-change backup", "backup after 1% changed", "restore", "restore + sync", "check --read-data"]
    if args.tree:
        phases.remove("backup after 1% changed")
    results = {k: (median([r[0] for r in v]), max(r[1] for r in v)) for k, v in runs.items()}

    restic_version = subprocess.run([RESTIC, "version"], capture_output=True, text=True).stdout.strip()
    lifeboat_version = subprocess.run([LIFEBOAT, "--version"], capture_output=True, text=True).stdout.strip()
    fs = fstype(scratch)
    what = (f"real tree {tree} ({nfiles} files, {du(tree) / 2**20:.0f} MB)" if args.tree
            else f"{args.size_mb} MB in {args.files} files")
    lines = [f"### {datetime.date.today()} — {what}, repositories on {fs} ({scratch})",
             "",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores, "
             f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, {platform.platform()}. "
             f"Lifeboat {lifeboat_version}; {restic_version}. Median of {args.repeat} runs, tools alternating "
             f"and swapping order each round ({'the tree only read, no 1% change' if args.tree else 'the 1% change: a new 1% each round'}); sync before each; warm page cache "
             f"for the source tree{COLD_READS if benchlib.can_drop_page_cache() else ''}. {benchlib.SETTINGS}",
             "",
             "| phase | lifeboat s | restic s | time ratio | goal | lifeboat peak RSS MiB | restic peak RSS MiB | RSS ratio |",
             "|---|---|---|---|---|---|---|---|"]
    for phase in phases:
        (lt, lr), (rt, rr) = results[(phase, "lifeboat")], results[(phase, "restic")]
        goal = GOALS.get(phase)
        mark = "" if goal is None else (f"≤ {goal}x ✅" if lt / rt <= goal else f"≤ {goal}x ❌")
        lines.append(f"| {phase} | {lt:.2f} | {rt:.2f} | {lt / rt:.2f}x | {mark} | {lr / 2**20:.0f} | {rr / 2**20:.0f} | {lr / rr:.2f}x |")
    restore_floor, backup_floor = results[("restore", "floor")][0], results[("initial backup", "floor")][0]
    synced_floor = results[("initial backup, synced", "floor")][0]
    lb_restore, rs_restore = results[("restore + sync", "lifeboat")][0], results[("restore + sync", "restic")][0]
    lb_backup, rs_backup = results[("initial backup", "lifeboat")][0], results[("initial backup", "restic")][0]
    lines += ["", "Floors on the same tree, same rounds: "
                  f"restore + `sync` vs `tar -x` + `sync` of an uncompressed archive: {lb_restore:.2f} s vs "
                  f"{restore_floor:.2f} s (**{lb_restore / restore_floor:.2f}x**, goal on disk ≤ 1.5x; restic {rs_restore / restore_floor:.2f}x); "
                  f"initial backup vs `tar -c | zstd -T0 -3`: {lb_backup:.2f} s vs "
                  f"{backup_floor:.2f} s (**{lb_backup / backup_floor:.2f}x**, goal ≤ 1.5x; restic {rs_backup / backup_floor:.2f}x); "
                  f"the same followed by `sync` (both tools fsync their packs): {synced_floor:.2f} s "
                  f"({lb_backup / synced_floor:.2f}x; restic {rs_backup / synced_floor:.2f}x)."]
    lines += ["", f"Repository after the initial backup: lifeboat {sizes['lifeboat'] / 2**20:.1f} MiB, "
                  f"restic {sizes['restic'] / 2**20:.1f} MiB ({sizes['lifeboat'] / sizes['restic']:.3f}x).", ""]
    report = "\n".join(lines)
    print("\n" + report)
    for t in tools:
        t.clean(everything=True)
    if not args.no_record:
        results_md = ROOT / "bench" / "RESULTS.md"
        if not results_md.exists():
            results_md.write_text("# Benchmark results\n\nEach run of `make bench` appends a section.\n\n")
        with open(results_md, "a") as f:
            f.write(report + "\n")


if __name__ == "__main__":
    main()
