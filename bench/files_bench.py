#!/usr/bin/env python3
"""Lifeboat vs restic on the same ~1 GB tree, same machine, same run: wall time, repository size, peak RSS.

Phases: initial backup, no-change backup, backup after 1% of files changed, restore, check --read-data.
Prints Lifeboat/restic ratios and appends the figures to bench/RESULTS.md.
"""
import argparse
import datetime
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

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
    """Runs cmd under /usr/bin/time; returns (seconds, peak RSS bytes)."""
    t0 = time.monotonic()
    p = subprocess.run(["/usr/bin/time", "-f", "MAXRSS_KB=%M", *map(str, cmd)], env=env, capture_output=True, text=True)
    dt = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    rss = int(re.findall(r"MAXRSS_KB=(\d+)", p.stderr)[-1]) * 1024
    return dt, rss


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def run_tool(name, tree, work, env):
    repo = work / f"repo-{name}"
    target = work / f"restore-{name}"
    shutil.rmtree(repo, ignore_errors=True)
    shutil.rmtree(target, ignore_errors=True)
    if name == "lifeboat":
        env = dict(env, LIFEBOAT_REPOSITORY=str(repo), LIFEBOAT_PASSWORD="bench")
        base = [LIFEBOAT]
        subprocess.run([*base, "init", "-q"], env=env, check=True)
        backup = [*base, "backup", "-q", tree]
        restore = [*base, "restore", "-q", "latest", "--target", target]
        check = [*base, "check", "-q", "--read-data"]
    else:
        env = dict(env, RESTIC_REPOSITORY=str(repo), RESTIC_PASSWORD="bench", RESTIC_CACHE_DIR=str(work / "restic-cache"))
        base = [RESTIC]
        subprocess.run([*base, "init", "-q"], env=env, check=True, capture_output=True)
        backup = [*base, "backup", "-q", tree]
        restore = [*base, "restore", "-q", "latest", "--target", target]
        check = [*base, "check", "-q", "--read-data"]
    return repo, target, env, backup, restore, check


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--files", type=int, default=50_000)
    ap.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    args = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    tree = WORK / f"tree-{args.size_mb}mb-{args.files}"
    print(f"generating {args.size_mb} MB in {args.files} files under {tree} (cached between runs)…", flush=True)
    generate_tree(tree, args.size_mb << 20, args.files)
    env = dict(os.environ)
    results = {}
    sizes = {}
    tools = ["lifeboat", "restic"]
    setups = {t: run_tool(t, tree, WORK, env) for t in tools}
    # Each phase runs for both tools back to back, so both see the same cache state and machine load.
    phases = [("initial backup", 3), ("no-change backup", 3), ("backup after 1% changed", 3), ("restore", 4),
              ("check --read-data", 5)]
    for phase, idx in phases:
        if phase == "backup after 1% changed":
            change_one_percent(tree, seed=len(list(WORK.glob("changed-*"))) + 1)
        for t in tools:
            repo, target, tenv, backup, restore, check = setups[t]
            cmd = {3: backup, 4: restore, 5: check}[idx]
            if phase == "restore":
                shutil.rmtree(target, ignore_errors=True)
            results[(phase, t)] = timed(cmd, tenv)
            print(f"  {phase:<26} {t:<9} {results[(phase, t)][0]:7.2f} s  {results[(phase, t)][1] / 2**20:7.1f} MiB RSS", flush=True)
        if phase == "initial backup":
            for t in tools:
                sizes[t] = du(setups[t][0])
    for t in tools:
        shutil.rmtree(setups[t][1], ignore_errors=True)
    # The changed tree must not be reused as the pristine one next time.
    (tree / ".complete").unlink(missing_ok=True)

    restic_version = subprocess.run([RESTIC, "version"], capture_output=True, text=True).stdout.strip()
    lifeboat_version = subprocess.run([LIFEBOAT, "--version"], capture_output=True, text=True).stdout.strip()
    lines = [f"### {datetime.date.today()} — {args.size_mb} MB, {args.files} files",
             "",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
             f"{platform.platform()}. Lifeboat {lifeboat_version}; {restic_version}. Warm page cache, local disk.",
             "",
             "| phase | lifeboat s | restic s | time ratio | goal | lifeboat RSS MiB | restic RSS MiB | RSS ratio |",
             "|---|---|---|---|---|---|---|---|"]
    for phase, _ in phases:
        (lt, lr), (rt, rr) = results[(phase, "lifeboat")], results[(phase, "restic")]
        goal = GOALS.get(phase)
        mark = "" if goal is None else (f"≤ {goal}x ✅" if lt / rt <= goal else f"≤ {goal}x ❌")
        lines.append(f"| {phase} | {lt:.2f} | {rt:.2f} | {lt / rt:.2f}x | {mark} | {lr / 2**20:.0f} | {rr / 2**20:.0f} | {lr / rr:.2f}x |")
    lines += ["", f"Repository after the initial backup: lifeboat {sizes['lifeboat'] / 2**20:.1f} MiB, "
                  f"restic {sizes['restic'] / 2**20:.1f} MiB ({sizes['lifeboat'] / sizes['restic']:.3f}x).", ""]
    report = "\n".join(lines)
    print("\n" + report)
    if not args.no_record:
        results_md = ROOT / "bench" / "RESULTS.md"
        if not results_md.exists():
            results_md.write_text("# Benchmark results\n\nEach run of `make bench` appends a section.\n\n")
        with open(results_md, "a") as f:
            f.write(report + "\n")


if __name__ == "__main__":
    main()
