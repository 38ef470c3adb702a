"""Object storage benchmark: backup and restore of a generated tree to versitygw (S3) and to
fake-gcs-server (GCS JSON API) on loopback, Lifeboat against restic on the same server in the same
run. Prints time ratios (goal: Lifeboat at most 0.5x restic) and appends them to bench/RESULTS.md."""
import argparse
import datetime
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "peers"))
sys.path.insert(0, str(ROOT / "bench"))
import peers  # noqa: E402
from benchlib import LIFEBOAT_INIT_SETTINGS, RESTIC_SETTINGS, SETTINGS, cold_cache, machine_line, odd, publish, timed  # noqa: E402
from files_bench import LIFEBOAT, RESTIC, WORK, generate_tree, median  # noqa: E402


def lifeboat_version():
    return subprocess.run([LIFEBOAT, "--version"], capture_output=True, text=True).stdout.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=300)
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    args.repeat = odd(args.repeat)
    WORK.mkdir(parents=True, exist_ok=True)
    tree = WORK / f"objtree-{args.size_mb}mb"
    generate_tree(tree, args.size_mb << 20, args.files)
    scratch = WORK / "object-bench"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    rows = []
    for kind in ("s3", "gcs"):
        server = (peers.VersityGW(scratch / "versitygw") if kind == "s3" else peers.FakeGCS()).start()
        try:
            base = dict(os.environ, **server.env(), **RESTIC_SETTINGS, LIFEBOAT_PASSWORD="bench", RESTIC_PASSWORD="bench",
                        GOOGLE_ACCESS_TOKEN="unused", GOOGLE_PROJECT_ID="bench",
                        STORAGE_EMULATOR_HOST=f"127.0.0.1:{server.port}")
            runs = {}
            for r in range(args.repeat):
                for tool in (["lifeboat", "restic"] if r % 2 == 0 else ["restic", "lifeboat"]):
                    bucket = f"bench-{tool}-{r}"
                    if tool == "lifeboat":
                        url = f"s3:{server.endpoint}/{bucket}/repo" if kind == "s3" else f"gs:{bucket}/repo"
                        env = dict(base, LIFEBOAT_REPOSITORY=url)
                        subprocess.run([LIFEBOAT, "init", "-q", *LIFEBOAT_INIT_SETTINGS], env=env, check=True, capture_output=True)
                        exe = LIFEBOAT
                    else:
                        if kind == "gcs":
                            subprocess.run(["curl", "-s", "-X", "POST", "-H", "Content-Type: application/json", "-d",
                                            f'{{"name":"{bucket}"}}', f"{server.endpoint}/storage/v1/b?project=bench"],
                                           check=True, capture_output=True)
                        url = f"s3:{server.endpoint}/{bucket}/repo" if kind == "s3" else f"gs:{bucket}:/repo"
                        env = dict(base, RESTIC_REPOSITORY=url, RESTIC_CACHE_DIR=str(scratch / f"cache-{bucket}"))
                        subprocess.run([RESTIC, "init", "-q"], env=env, check=True, capture_output=True)
                        exe = RESTIC
                    dt, rss, _ = timed([exe, "backup", "-q", tree], env)
                    runs.setdefault(("backup", tool), []).append(dt)
                    target = scratch / f"restore-{kind}-{tool}-{r}"
                    if tool == "restic":
                        cold_cache(env["RESTIC_CACHE_DIR"])
                    dt2, _, _ = timed([exe, "restore", "-q", "latest", "--target", target], env)
                    runs.setdefault(("restore", tool), []).append(dt2)
                    print(f"  {kind} {tool:<9} backup {dt:6.2f} s  restore {dt2:6.2f} s", flush=True)
                    # Restored trees are deleted only at the end: on this VM's ext4 (online discard)
                    # a large deletion slows whatever process runs next.
            for phase in ("backup", "restore"):
                lt, rt = median(runs[(phase, "lifeboat")]), median(runs[(phase, "restic")])
                rows.append((kind, phase, lt, rt))
        finally:
            server.stop()
    restic_version = subprocess.run([RESTIC, "version"], capture_output=True, text=True).stdout.strip()
    lines = [f"### {datetime.date.today()} — object storage: {args.size_mb} MB in {args.files} files, "
             f"versitygw v1.7.0 (S3) and fake-gcs-server v1.55.1 (GCS, memory backend) on loopback",
             "",
             machine_line(f"Lifeboat {lifeboat_version()}; {restic_version}", f"Median of {args.repeat} runs, order swapped each round; the server shares the 2 cores. {SETTINGS}"),
             "",
             "| server | phase | lifeboat s | restic s | time ratio | goal |",
             "|---|---|---|---|---|---|"]
    for kind, phase, lt, rt in rows:
        lines.append(f"| {kind} | {phase} | {lt:.2f} | {rt:.2f} | {lt / rt:.2f}x | ≤ 0.5x {'✅' if lt / rt <= 0.5 else '❌'} |")
    report = "\n".join(lines) + "\n"
    shutil.rmtree(scratch, ignore_errors=True)
    publish(report, ROOT / "bench" / "RESULTS.md", not args.no_record)


if __name__ == "__main__":
    main()
