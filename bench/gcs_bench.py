"""GCS bucket benchmark: a bucket of 5,000 objects / 1 GB on fake-gcs-server (https, memory backend,
loopback), Lifeboat against gsutil on the same server in the same run: backup (`backup gcs` into a new
repository vs `gsutil -m rsync -r` into a new directory), unchanged re-backup (both again), restore
(`restore gcs --to` a new bucket vs `gsutil -m cp -r` from the downloaded directory). Medians of
alternating rounds; a fresh server per round (preloaded, then warmed by an untimed read of every
object, so neither tool pays the server's first-access cost). Prints ratios and appends them to
bench/RESULTS.md. --tree DIR uses a real directory's files as the bucket's objects."""
import argparse
import datetime
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "peers"))
sys.path.insert(0, str(ROOT / "bench"))
import peers  # noqa: E402
from benchlib import machine_line, publish, timed  # noqa: E402
from files_bench import LIFEBOAT, WORK, generate_tree, median  # noqa: E402

GOALS = {"backup": 0.5, "unchanged re-backup": 0.05, "restore": 0.5}


def tree_stats(root):
    n = size = 0
    for d, _, files in os.walk(root):
        for f in files:
            p = Path(d) / f
            if p.is_file() and not p.is_symlink():
                n += 1
                size += p.stat().st_size
    return n, size


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--objects", type=int, default=5000)
    ap.add_argument("--tree", help="use this directory's files as the bucket (a real tree) instead of a generated one")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    scratch = WORK / "gcs-bench"
    shutil.rmtree(scratch, ignore_errors=True)
    (scratch / "preload").mkdir(parents=True)
    if args.tree:
        src = Path(args.tree).resolve()
        shutil.copytree(src, scratch / "preload" / "assets", symlinks=False, ignore_dangling_symlinks=True,
                        copy_function=shutil.copy2)
    else:
        tree = WORK / f"gcstree-{args.size_mb}mb-{args.objects}"
        generate_tree(tree, args.size_mb << 20, args.objects)
        subprocess.run(["cp", "-al", str(tree), str(scratch / "preload" / "assets")], check=True)
    n_objects, n_bytes = tree_stats(scratch / "preload" / "assets")
    print(f"bucket: {n_objects} objects, {n_bytes / 2**20:.0f} MiB", flush=True)

    times = {p: {"lifeboat": [], "gsutil": []} for p in GOALS}
    rss = {"lifeboat": 0, "gsutil": 0}
    stored = 0
    for rnd in range(args.repeat):
        with peers.FakeGCS(scratch / f"server-{rnd}", https=True, preload=scratch / "preload") as gcs:
            env = dict(os.environ, LIFEBOAT_PASSWORD="bench", **gcs.env(), **gcs.boto_config(scratch / f"boto-{rnd}.cfg"))
            warm = scratch / f"warm-{rnd}"
            subprocess.run([LIFEBOAT, "-r", warm, "init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1"], env=env,
                           check=True, capture_output=True)
            subprocess.run([LIFEBOAT, "-r", warm, "-q", "backup", "gcs", "gs://assets"], env=env, check=True)
            shutil.rmtree(warm)
            gcs.create_bucket(f"rl-{rnd}")
            gcs.create_bucket(f"rg-{rnd}")
            repo, local = scratch / f"repo-{rnd}", scratch / f"gsutil-{rnd}"
            local.mkdir()
            subprocess.run([LIFEBOAT, "-r", repo, "init"], env=env, check=True, capture_output=True)
            cmds = {
                "backup": {"lifeboat": [LIFEBOAT, "-r", repo, "-q", "backup", "gcs", "gs://assets"],
                           "gsutil": ["gsutil", "-m", "-q", "rsync", "-r", "gs://assets", local]},
                "restore": {"lifeboat": [LIFEBOAT, "-r", repo, "-q", "restore", "gcs", "--to", f"gs://rl-{rnd}"],
                            "gsutil": ["sh", "-c", f"gsutil -m -q cp -r {local}/* gs://rg-{rnd}/"]},
            }
            cmds["unchanged re-backup"] = cmds["backup"]
            order = ["lifeboat", "gsutil"] if rnd % 2 == 0 else ["gsutil", "lifeboat"]
            for phase in ("backup", "unchanged re-backup", "restore"):
                for tool in order:
                    dt, peak, _ = timed(cmds[phase][tool], env)
                    times[phase][tool].append(dt)
                    rss[tool] = max(rss[tool], peak)
                    print(f"round {rnd + 1} {phase:<20} {tool:<8} {dt:7.2f} s", flush=True)
            restored = {o["name"]: o.get("crc32c") for o in gcs.list(f"rl-{rnd}")}
            source = {o["name"]: o.get("crc32c") for o in gcs.list("assets")}
            if restored != source:
                sys.exit("gcs bench: Lifeboat's restored bucket differs from the source")
            stored = sum(f.stat().st_size for f in repo.rglob("*") if f.is_file())
            shutil.rmtree(repo)
            shutil.rmtree(local)

    gsutil_v = subprocess.run(["gsutil", "version"], capture_output=True, text=True).stdout.strip().splitlines()[0]
    lb_v = "Lifeboat " + subprocess.run([LIFEBOAT, "--version"], capture_output=True, text=True).stdout.strip().split()[-1]
    what = f"a real tree ({args.tree})" if args.tree else "a generated tree"
    lines = [f"### {datetime.date.today()} — GCS bucket: {n_objects} objects / {n_bytes / 2**20:.0f} MiB ({what}), "
             "fake-gcs-server v1.55.1 (https, memory backend) on loopback",
             "",
             machine_line(f"{lb_v} (8 downloads/uploads at once, zstd level 3, 16 MiB packs); {gsutil_v} (-m, its default "
                          "processes and threads)",
                          f"Median of {args.repeat} rounds, order swapped each round, a fresh preloaded server per round warmed "
                          "by one untimed read of every object; the server shares the 2 cores. gsutil backs up with `rsync -r` "
                          "into a directory and restores with `cp -r` from it; Lifeboat into an encrypted repository and back."),
             "",
             "| phase | lifeboat s | gsutil s | time ratio | goal |",
             "|---|---|---|---|---|"]
    for phase, goal in GOALS.items():
        a, b = median(times[phase]["lifeboat"]), median(times[phase]["gsutil"])
        ratio = a / b if b else float("inf")
        lines.append(f"| {phase} | {a:.2f} | {b:.2f} | {ratio:.2f}x | ≤ {goal}x {'✅' if ratio <= goal else '❌'} |")
    lines += ["", f"Peak RSS: Lifeboat {rss['lifeboat'] / 2**20:.0f} MiB, gsutil {rss['gsutil'] / 2**20:.0f} MiB (largest process). "
              f"Repository after two backups: {stored / 2**20:.0f} MiB.", ""]
    publish("\n".join(lines), ROOT / "bench" / "RESULTS.md", record=not args.no_record)


if __name__ == "__main__":
    main()
