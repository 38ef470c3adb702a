#!/usr/bin/env python3
"""A year of continuous MongoDB capture (synthetic, bench/synth_slices.cpp): what `snapshots`,
`status` and a restore `--at` cost before and after `mongodb tidy` with the plan's window.

The synthetic year holds a full backup a day, one-minute slices for the newest two days and hourly
slices before them (what the follower would leave after compaction at best: without it a year is
525,600 slice files, 45x as many, and every listing costs in proportion). Tidy then applies the
plan's point-in-time window (30 days, as `retention: {daily: 30}` implies) and compacts the older
minute day. Appends the figures to bench/RESULTS.md.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
from pathlib import Path

from benchlib import publish, timed

ROOT = Path(__file__).resolve().parents[1]
LIFEBOAT = ROOT / "build" / "lifeboat"
SYNTH = ROOT / "build" / "synth_slices"


def utc(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    work = ROOT / "bench" / "work" / "slices"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    repo = work / "repo"
    plan = work / "lifeboat.yaml"
    plan.write_text(f"""version: 1
objectives: {{rpo: 1h, rto: 4h}}
repositories:
  local: {{url: {repo}, password_env: LIFEBOAT_PASSWORD}}
sources:
  eyewear-mongo:
    kind: mongodb
    repository: local
    uri: mongodb://127.0.0.1:1
    schedule: {{full: "0 2 * * *", continuous: true, interval: 60s}}
    retention: {{daily: 30}}
    validation: [counts]
""")
    env = dict(os.environ, LIFEBOAT_REPOSITORY=str(repo), LIFEBOAT_PASSWORD="bench", LIFEBOAT_PLAN=str(plan), TZ="UTC")
    print(f"building a synthetic year: {args.days} days…", flush=True)
    t_build, _, out = timed([SYNTH, repo, args.days, 2], env)
    info = json.loads(out.strip().splitlines()[-1])
    at = info["last_s"] - 3 * 86400 - 1234  # inside the window, in the hourly part
    rows = []

    def measure(phase):
        n = len(json.loads(subprocess.run([LIFEBOAT, "--json", "snapshots"], env=env, capture_output=True,
                                          text=True, check=True).stdout))
        for name, cmd in [("snapshots", [LIFEBOAT, "--json", "snapshots"]),
                          ("status", [LIFEBOAT, "--json", "status"]),
                          (f"restore mongodb --at (plan only)", [LIFEBOAT, "--json", "restore", "mongodb", "--dry-run",
                                                                 "--at", utc(at)]),
                          (f"restore mongodb --at --to-dir", [LIFEBOAT, "--json", "restore", "mongodb", "--at", utc(at),
                                                              "--to-dir", work / f"out-{phase}"])]:
            dt, rss, o = timed(cmd, env)
            rows.append((phase, n, name, dt, rss))
            print(f"  {phase:<7} {n:6} snapshots  {name:<34} {dt:7.2f} s {rss / 2**20:7.1f} MiB", flush=True)
            if "restore" in name:
                p = json.loads(o)["plan"]
                assert p["proved"], p
        return n

    before = measure("before")
    dt, rss, o = timed([LIFEBOAT, "--json", "mongodb", "tidy", "--pitr-window", "30d"], env)
    tidy = json.loads(o)
    print(f"  tidy: {dt:.2f} s, {tidy}", flush=True)
    after = measure("after")
    shutil.rmtree(work, ignore_errors=True)
    version = subprocess.run([LIFEBOAT, "--version"], capture_output=True, text=True).stdout.strip()
    lines = [f"### {datetime.date.today()} — a year of MongoDB oplog slices: listing, status and restore --at, "
             "before and after `mongodb tidy`", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; Lifeboat {version}. "
             f"Synthetic repository (bench/synth_slices.cpp, built in {t_build:.0f} s): {info['fulls']} daily full "
             f"backups, {info['slices']} slices (one a minute for the newest 2 days, one an hour before: already "
             f"45x fewer than a year of minute slices). Restores to an instant 3 days back, inside an hour-long "
             "slice; each restore must report `proved`.", "",
             f"`mongodb tidy --pitr-window 30d`: {dt:.2f} s, peak RSS {rss / 2**20:.0f} MiB; "
             f"{tidy['slices_forgotten']} slices before the window forgotten, {tidy['slices_compacted']} minute "
             f"slices compacted into {tidy['hourly_slices_written']} hourly ones. Snapshots: {before} -> {after}.",
             "", "| repository | snapshots | operation | time s | peak RSS MiB |", "|---|---|---|---|---|"]
    lines += [f"| {ph} | {n} | {name} | {t:.2f} | {r / 2**20:.0f} |" for ph, n, name, t, r in rows]
    lines += ["", "With the window the repository holds a bounded number of slice files (about 29 x 24 hourly + "
              "1,440 minute ones + one day's compaction in flight), however long the follower runs; full backups "
              "are forgotten by the plan's retention as before.", ""]
    publish("\n".join(lines), ROOT / "bench" / "RESULTS.md", not args.no_record)


if __name__ == "__main__":
    main()
