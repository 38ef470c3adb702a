"""Object storage benchmark: backup and restore of a generated tree to versitygw (S3) and to
fake-gcs-server (GCS JSON API) on loopback, Lifeboat against restic on the same server in the same
run. Each restore is timed onto the disk and again into tmpfs, which leaves out this VM's ext4 writes.
Prints time ratios (goal: Lifeboat at most 0.5x restic) and appends them to bench/RESULTS.md."""
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


# Restores are also timed into tmpfs when it has room for two trees.
RAM_SCRATCH = (Path("/dev/shm/lifeboat-object-bench")
               if Path("/dev/shm").is_dir() and shutil.disk_usage("/dev/shm").free > 2 << 30 else None)


def measure(server, kind, tool, r, tree, scratch):
    """One tool's backup and restores against a fresh server: seconds of the backup, of the restore onto
    the disk, and of the restore into tmpfs (None when tmpfs has no room)."""
    base = dict(os.environ, **server.env(), **RESTIC_SETTINGS, LIFEBOAT_PASSWORD="bench", RESTIC_PASSWORD="bench",
                GOOGLE_ACCESS_TOKEN="unused", GOOGLE_PROJECT_ID="bench",
                STORAGE_EMULATOR_HOST=f"127.0.0.1:{server.port}")
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
    dt, _, _ = timed([exe, "backup", "-q", tree], env)

    def restore(into: Path) -> float:
        if tool == "restic":
            cold_cache(env["RESTIC_CACHE_DIR"])
        return timed([exe, "restore", "-q", "latest", "--target", into / f"restore-{kind}-{tool}-{r}"], env)[0]

    dt2 = restore(scratch)
    dt3 = None
    if RAM_SCRATCH:
        # The same restore into tmpfs: what the object store path costs without this VM's ext4 writes
        # (the files benchmark measures those), deleted at once (a fuller tmpfs slows this VM).
        dt3 = restore(RAM_SCRATCH)
        shutil.rmtree(RAM_SCRATCH / f"restore-{kind}-{tool}-{r}", ignore_errors=True)
    return dt, dt2, dt3


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
    if RAM_SCRATCH:
        RAM_SCRATCH.mkdir(parents=True, exist_ok=True)
    rows = []
    for kind in ("s3", "gcs"):
        runs = {}
        for r in range(args.repeat):
            for tool in (["lifeboat", "restic"] if r % 2 == 0 else ["restic", "lifeboat"]):
                # A fresh server for every measurement: a server that still holds the earlier rounds'
                # repositories answers more slowly with each round (fake-gcs-server's memory backend keeps
                # every object on its Go heap: the same restore took 0.83 s in the first round and 1.89 s in
                # the third), and the alternating order would then turn that drift into a bias.
                server = (peers.VersityGW(scratch / f"versitygw-{tool}-{r}") if kind == "s3" else peers.FakeGCS()).start()
                try:
                    dt, dt2, dt3 = measure(server, kind, tool, r, tree, scratch)
                finally:
                    server.stop()
                runs.setdefault(("backup", tool), []).append(dt)
                runs.setdefault(("restore", tool), []).append(dt2)
                if dt3 is not None:
                    runs.setdefault(("restore into tmpfs", tool), []).append(dt3)
                print(f"  {kind} {tool:<9} backup {dt:6.2f} s  restore {dt2:6.2f} s" +
                      (f"  into tmpfs {dt3:6.2f} s" if dt3 is not None else ""), flush=True)
                # Restored trees are deleted only at the end: on this VM's ext4 (online discard)
                # a large deletion slows whatever process runs next.
        for phase in ("backup", "restore", "restore into tmpfs"):
            if (phase, "lifeboat") not in runs:
                continue
            lt, rt = median(runs[(phase, "lifeboat")]), median(runs[(phase, "restic")])
            rows.append((kind, phase, lt, rt))
    restic_version = subprocess.run([RESTIC, "version"], capture_output=True, text=True).stdout.strip()
    lines = [f"### {datetime.date.today()} — object storage: {args.size_mb} MB in {args.files} files, "
             f"versitygw v1.7.0 (S3) and fake-gcs-server v1.55.1 (GCS, memory backend) on loopback",
             "",
             machine_line(f"Lifeboat {lifeboat_version()}; {restic_version}", f"Median of {args.repeat} runs, order swapped each round, a fresh server for each tool in each round; the server shares the 2 cores. {SETTINGS}"),
             "",
             "| server | phase | lifeboat s | restic s | time ratio | goal |",
             "|---|---|---|---|---|---|"]
    for kind, phase, lt, rt in rows:
        lines.append(f"| {kind} | {phase} | {lt:.2f} | {rt:.2f} | {lt / rt:.2f}x | ≤ 0.5x {'✅' if lt / rt <= 0.5 else '❌'} |")
    report = "\n".join(lines) + "\n"
    shutil.rmtree(scratch, ignore_errors=True)
    if RAM_SCRATCH:
        shutil.rmtree(RAM_SCRATCH, ignore_errors=True)
    publish(report, ROOT / "bench" / "RESULTS.md", not args.no_record)


if __name__ == "__main__":
    main()
