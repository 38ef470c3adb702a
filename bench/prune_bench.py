#!/usr/bin/env python3
"""Prune and check on a synthetic repository: 1 M blobs, 200 snapshots (time, peak RSS, index bytes/entry).

forget keeps the newest 100 snapshots and prunes: about half the packs become unused, the rest partly
used, so prune both deletes and repacks. Appends the figures to bench/RESULTS.md.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
from pathlib import Path

from benchlib import timed

ROOT = Path(__file__).resolve().parents[1]
LIFEBOAT = ROOT / "build" / "lifeboat"
SYNTH = ROOT / "build" / "synth_repo"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--blobs", type=int, default=1_000_000)
    ap.add_argument("--snapshots", type=int, default=200)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    work = ROOT / "bench" / "work" / "synthetic-repo"
    shutil.rmtree(work, ignore_errors=True)
    env = dict(os.environ, LIFEBOAT_REPOSITORY=str(work), LIFEBOAT_PASSWORD="bench")
    print(f"building a synthetic repository: {args.blobs} blobs, {args.snapshots} snapshots…", flush=True)
    t_build, _, _ = timed([SYNTH, work, args.blobs, args.snapshots], env)
    # In a fresh process that only opens the repository and loads its index.
    _, _, out = timed([SYNTH, "--measure-index", work], env)
    idx = json.loads(out.strip().splitlines()[-1])
    rows = []
    for name, cmd in [("check", [LIFEBOAT, "check", "-q"]),
                      ("forget --keep-last 100 --prune", [LIFEBOAT, "forget", "-q", "--keep-last", "100", "--prune"]),
                      ("check after prune", [LIFEBOAT, "check", "-q"])]:
        dt, rss, _ = timed(cmd, env)
        rows.append((name, dt, rss))
        print(f"  {name:<32} {dt:7.2f} s {rss / 2**20:8.1f} MiB", flush=True)
    shutil.rmtree(work, ignore_errors=True)
    lines = [f"### {datetime.date.today()} — prune and check, synthetic repository ({args.blobs} blobs, {args.snapshots} snapshots)",
             "",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; Lifeboat "
             f"{subprocess.run([LIFEBOAT, '--version'], capture_output=True, text=True).stdout.strip()}. "
             f"Repository built in {t_build:.1f} s (128-byte blobs, snapshots over sliding windows of a fifth of them).",
             "",
             "| operation | time s | peak RSS MiB |", "|---|---|---|"]
    lines += [f"| {n} | {t:.2f} | {r / 2**20:.0f} |" for n, t, r in rows]
    per = idx["bytes_per_entry"]
    lines += ["", f"In-memory index (measured in a fresh process that only opens the repository and loads the index): "
                  f"{idx['index_entries']} entries took {idx['index_rss_bytes'] / 2**20:.1f} MiB of RSS "
                  f"= {per:.1f} bytes per entry, so 10 M chunks need about {per * 10_000_000 / 2**20:.0f} MiB "
                  f"(goal ≤ 512 MB: {'met' if per * 10_000_000 <= 512e6 else 'not met'}).", ""]
    report = "\n".join(lines)
    print("\n" + report)
    if not args.no_record:
        with open(ROOT / "bench" / "RESULTS.md", "a") as f:
            f.write(report + "\n")


if __name__ == "__main__":
    main()
