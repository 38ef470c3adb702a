#!/usr/bin/env python3
"""What key roles cost (issue 36; goal: at most 5% slower): backups and restores of one generated
tree by three writers, each into its own fresh repository, in the same rounds:

- "before roles": lifeboat built from the commit before key roles (--before BINARY), admin key;
- "admin": today's lifeboat, admin key (AEAD-sealed, index files with ID lists, signed snapshots);
- "append": today's lifeboat, append key (every pack, index file and snapshot sealed to the
  repository's public key, the writer's cache written as it goes).

Each repository is then restored by an admin key of the binary that wrote it. Median of the rounds
(alternating order), wall time and peak RSS; appended to bench/RESULTS.md.
"""
import argparse
import datetime
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import benchlib
from files_bench import generate_tree

ROOT = Path(__file__).resolve().parents[1]
LIFEBOAT = ROOT / "build" / "lifeboat"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True, help="lifeboat built from the commit before key roles")
    ap.add_argument("--size-mb", type=int, default=500)
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--work", default=str(ROOT / "bench" / "work"))
    ap.add_argument("--scratch", default="/dev/shm",
                    help="repositories, caches and restore targets go here (tmpfs by default: deleting on this VM's "
                         "ext4 with online discard bills whichever process runs next, see RESULTS.md)")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    work = Path(args.work)
    tree = work / f"roles-tree-{args.size_mb}"
    generate_tree(tree, args.size_mb << 20, args.files)
    tmp = Path(tempfile.mkdtemp(prefix="roles-bench-", dir=args.scratch))
    base = dict(os.environ, LIFEBOAT_PASSWORD="admin pw", TZ="UTC", LIFEBOAT_CACHE_DIR=str(tmp / "cache"))
    writers = {"before roles": Path(args.before), "admin": LIFEBOAT, "append": LIFEBOAT}
    times = {w: {"backup": [], "restore": []} for w in writers}
    rss = {w: {"backup": [], "restore": []} for w in writers}
    for rnd in range(args.rounds):
        order = list(writers) if rnd % 2 == 0 else list(reversed(writers))
        for w in order:
            binary = writers[w]
            repo = tmp / f"repo-{rnd}-{w.replace(' ', '-')}"
            env = dict(base, LIFEBOAT_REPOSITORY=str(repo))
            subprocess.run([binary, "init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1"], env=env, check=True,
                           capture_output=True)
            backup_env = env
            if w == "append":
                subprocess.run([binary, "key", "add", "--role", "append", "--kdf-memory-kib", "1024", "--kdf-iterations", "1"],
                               env=dict(env, LIFEBOAT_NEW_PASSWORD="append pw"), check=True, capture_output=True)
                backup_env = dict(env, LIFEBOAT_PASSWORD="append pw")
            dt, peak, _ = benchlib.timed([binary, "--quiet", "backup", tree], backup_env)
            times[w]["backup"].append(dt)
            rss[w]["backup"].append(peak)
            target = tmp / f"restore-{w.replace(' ', '-')}"
            dt, peak, _ = benchlib.timed([binary, "--quiet", "restore", "latest", "--target", target], env)
            times[w]["restore"].append(dt)
            rss[w]["restore"].append(peak)
            shutil.rmtree(target)
            shutil.rmtree(repo)
            shutil.rmtree(tmp / "cache", ignore_errors=True)
    shutil.rmtree(tmp)
    med = {w: {p: benchlib.median(v) for p, v in ph.items()} for w, ph in times.items()}
    mrss = {w: {p: max(v) / 2**20 for p, v in ph.items()} for w, ph in rss.items()}
    rows = []
    for phase in ("backup", "restore"):
        b = med["before roles"][phase]
        for w in writers:
            rows.append(f"| {phase} | {w} | {med[w][phase]:.2f} s | {med[w][phase] / b:.3f}x | {mrss[w][phase]:.0f} MiB |")
    version = subprocess.run([LIFEBOAT, "--version"], capture_output=True, text=True).stdout.strip()
    report = "\n".join([
        f"\n## Key roles: what sealing to the public key costs ({datetime.date.today()})\n",
        benchlib.machine_line(f"lifeboat {version} (today) and the build before key roles ({args.before})",
                              f"{args.size_mb} MB in {args.files} generated files (bench/files_bench.py's tree), "
                              f"median of {args.rounds} rounds in alternating order, each writer into a fresh "
                              f"repository in {args.scratch} (the tree read from disk); restores by an admin key of "
                              "the same binary, into the same place."),
        "",
        "| phase | writer | time | against before roles | peak RSS |",
        "|---|---|---|---|---|",
        *rows,
    ])
    benchlib.publish(report, ROOT / "bench" / "RESULTS.md", record=not args.no_record)


if __name__ == "__main__":
    main()
