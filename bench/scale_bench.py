"""Scale benchmark (issue 39), the parts built so far (--parts, default all):
- artifact, lfs: one model artifact and one Git LFS object of several GiB each (--gib, default 5),
  backed up and restored by Lifeboat with its peak resident memory (/usr/bin/time's maximum RSS)
  against the 300 MiB goal, and restic backing up and restoring the same bytes from a file as the
  reference a user would otherwise run. Random bytes: nothing compresses or deduplicates. Disk: about
  seven copies of the object; the work directory is removed at the end.
- tree: a synthetic tree of --files small files (distinct 20-200 byte contents) in directories of
  100, three levels deep, on tmpfs; Lifeboat and restic back it up and restore it, peak RSS and time
  of each. The issue's goal is 10 million files in <= 1 GiB; on this machine a tmpfs file costs a
  4 KiB page, so the default here is 1 million. --image-gib N puts the tree on a sparse ext4 image
  instead (mounted on --tree-dir; needs root): 512-byte inodes with inline data hold each small file
  in its inode, so 10 million files take about 6 GB of disk (--files 10000000 --image-gib 60).
- index: the in-memory index at --index-blobs (default 50 million) blobs: `synth_repo --index-only`
  writes index files alone, `synth_repo --measure-index` loads them in a fresh process and reports
  the bytes each entry keeps and the peak while loading.

- firestore: Google's emulator holding --firestore-docs user profiles (~1 KB, bench/firestore_bench.py's)
  at two sizes, a third and the whole (both beyond what one page of 20,000 holds); Lifeboat backs
  each up and restores it into another project, peak RSS of each: what grows per document is the
  difference over the difference in documents.

- bucket: a GCS bucket of --bucket-objects (default 10 million) objects in folders of 1,000, served
  by a synthetic GCS JSON API (tests/peers/synthetic_gcs.py, a fake: fake-gcs-server keeps every
  object in memory and cannot hold that many). Zero-byte objects, so the run is the listing path
  alone (listing, parent lookups, trees; no downloads), then --bucket-data-objects (default 1
  million) objects of ~25 bytes each, downloaded and stored. Peak RSS against the 1.5 GiB goal.

LIFEBOAT_BIN runs another build of lifeboat (a copy, so a rebuild cannot change the binary mid-run).
"""
import argparse
import json
import random
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
from benchlib import LIFEBOAT_INIT_SETTINGS, RESTIC_SETTINGS, machine_line, publish, timed  # noqa: E402
from files_bench import LIFEBOAT, RESTIC  # noqa: E402

LIFEBOAT = Path(os.environ.get("LIFEBOAT_BIN", LIFEBOAT))
SYNTH = ROOT / "build" / "synth_repo"

REGISTER = r'''
import sys, mlflow
from mlflow import MlflowClient
with mlflow.start_run() as run:
    mlflow.log_artifact(sys.argv[1], artifact_path="model")
c = MlflowClient()
c.create_registered_model("big-model")
c.create_model_version("big-model", source=run.info.artifact_uri + "/model", run_id=run.info.run_id)
'''


def git(cwd, *args, env=None):
    e = dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@example.com", GIT_COMMITTER_NAME="b",
             GIT_COMMITTER_EMAIL="b@example.com", GIT_CONFIG_NOSYSTEM="1", HOME=str(cwd), **(env or {}))
    return subprocess.run(["git", *args], cwd=cwd, env=e, check=True, capture_output=True, text=True).stdout


def random_file(path: Path, gib: float):
    with open(path, "wb") as f:
        for _ in range(int(gib * 64)):
            f.write(os.urandom(16 << 20))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gib", type=float, default=5.0, help="size of the artifact and of the LFS object")
    ap.add_argument("--work", default=str(ROOT / "bench" / "work" / "scale"))
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--parts", default="artifact,lfs,tree")
    ap.add_argument("--files", type=int, default=1000000, help="files in the synthetic tree")
    ap.add_argument("--tree-dir", default="/dev/shm/lifeboat-scale", help="where the tree, repositories and restores go")
    ap.add_argument("--image-gib", type=float, default=0, help="put the tree on a sparse ext4 image of this size")
    ap.add_argument("--index-blobs", type=int, default=50_000_000)
    ap.add_argument("--firestore-docs", type=int, default=300_000)
    ap.add_argument("--bucket-objects", type=int, default=10_000_000)
    ap.add_argument("--bucket-data-objects", type=int, default=1_000_000)
    a = ap.parse_args()
    work = Path(a.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = dict(os.environ, LIFEBOAT_PASSWORD="bench", TZ="UTC", XDG_CACHE_HOME=str(work / "cache"), **RESTIC_SETTINGS,
               RESTIC_PASSWORD="bench", RESTIC_CACHE_DIR=str(work / "restic-cache"))
    env.pop("LIFEBOAT_PLAN", None)
    rows = []

    def lb(*args):
        return timed([LIFEBOAT, *args], env)

    def row(what, secs, rss):
        rows.append((what, secs, rss))
        print(f"{what}: {secs:.1f} s, peak RSS {rss / 2**20:.0f} MiB", flush=True)

    size = f"{a.gib:g} GiB"
    parts = set(a.parts.split(","))
    try:
        if parts & {"artifact", "lfs"}:
            artifact_and_lfs(a, work, env, lb, row, size, parts)
        if "tree" in parts:
            many_files(a, env, lb, row)
        if "index" in parts:
            index_memory(a, work, env, row)
        if "firestore" in parts:
            firestore_memory(a, work, env, row)
        if "bucket" in parts:
            bucket_memory(a, work, env, row)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(a.tree_dir, ignore_errors=True)

    version = subprocess.run([LIFEBOAT, "--version"], capture_output=True, text=True).stdout.strip()
    restic_version = subprocess.run([RESTIC, "version"], capture_output=True, text=True).stdout.strip()
    title = " and ".join(x for x in [f"a {size} model artifact and a {size} LFS object" if parts & {"artifact", "lfs"} else "",
                                     f"a tree of {a.files:,} small files" if "tree" in parts else "",
                                     f"an index of {a.index_blobs:,} blobs" if "index" in parts else "",
                                     f"Firestore databases of {a.firestore_docs // 3:,} and {a.firestore_docs:,} documents"
                                     if "firestore" in parts else "",
                                     f"a bucket of {a.bucket_objects:,} objects" if "bucket" in parts else ""] if x)
    lines = [f"## Scale: {title} in bounded memory ({datetime.date.today()})", "",
             machine_line("; ".join([f"Lifeboat {version}"] + ([restic_version] if parts & {"artifact", "lfs", "tree"} else []) +
                                    (["MLflow 3.17.2", "giftless"] if parts & {"artifact", "lfs"} else []) +
                                    (["Cloud Firestore emulator (google-cloud-cli-firestore-emulator 528.0.0)"] if "firestore" in parts else [])),
                          "One run each (minutes per run at this size); peak RSS is /usr/bin/time's maximum resident size."),
             "", "| operation | time s | peak RSS MiB | goal |", "|---|---|---|---|"]
    for what, secs, rss in rows:
        if "restic" in what:
            goal = ""
        elif "index" in what:
            goal = "≤ 40 bytes per blob at 50 M blobs"
        elif "Firestore" in what:
            goal = "streams: bounded whatever the documents"
        elif "bucket" in what:
            goal = ("≤ 1.5 GiB ✅" if rss <= 1.5 * 2**30 else "≤ 1.5 GiB ❌") if "10,000,000" in what else "≤ 1.5 GiB at 10 M objects"
        elif "files" in what:
            goal = ("≤ 1 GiB ✅" if rss <= 2**30 else "≤ 1 GiB ❌") if a.files >= 10_000_000 else "≤ 1 GiB at 10 M files"
        else:
            goal = "≤ 300 MiB ✅" if rss <= 300 * 2**20 else "≤ 300 MiB ❌"
        lines.append(f"| {what} | {secs:.1f} | {rss / 2**20:.0f} | {goal} |")
    if parts & {"artifact", "lfs"}:
        lines += ["", "Random bytes, so nothing compresses or deduplicates. Before this build an artifact or an LFS object was "
                  "downloaded whole into memory (a 5 GiB one needed 5 GiB of RAM): it is now streamed into the chunker through "
                  "a bounded pipe (8 MiB) or into the mirror, hashed as it arrives."]
    if "tree" in parts:
        where = (f"on a sparse {a.image_gib:g} GiB ext4 image (512-byte inodes, inline data: each file in its inode)"
                 if a.image_gib else "on tmpfs (a 4 KiB page per file: 10 M files would need ~40 GiB of RAM here)")
        lines += ["", f"The tree: {a.files:,} files of 20-200 distinct bytes, 100 per directory, three levels, {where}. "
                  "Restores go into an empty directory, removed after each."]
    if "firestore" in parts:
        sl = a.firestore_slopes
        lines += ["", f"Firestore: the emulator holding user profiles of ~1 KB (bench/firestore_bench.py's); backup with 4 readers, "
                  f"restore into another project with 4 writers and `--check none`. Per document beyond the smaller run: backup "
                  f"{sl['backup']:.0f} bytes, restore {sl['restore']:.0f} bytes (the rest is the pages and batches in flight, "
                  "bounded whatever the size of the database)."]
    if "bucket" in parts:
        lines += ["", "The bucket: a synthetic GCS JSON API (tests/peers/synthetic_gcs.py, a fake that makes objects up as they are "
                  "listed or read; fake-gcs-server keeps every object in memory and cannot hold ten million). Folders of 1,000 "
                  "objects, each with the resource fields a real listing gives. The zero-byte run is the listing path alone "
                  "(nothing to download); the other downloads and stores every object. The second backup of each finds every "
                  "object unchanged in its parent snapshot."]
    if "index" in parts:
        lines += ["", "The index: `synth_repo --index-only` writes index files alone (200,000 entries each, 4,000 per pack); "
                  "`synth_repo --measure-index` opens the repository in a fresh process and loads them. 'kept' is the resident "
                  "size after loading minus before, 'peak' the high-water mark while loading minus the size before; the goal "
                  "is ≤ 40 bytes per blob at 50 M blobs."]
    lines.append("")
    publish("\n".join(lines), ROOT / "bench" / "RESULTS.md", record=not a.no_record)


def restic_round(env, what, source, scratch: Path, row):
    """restic backs `source` up into a new repository under `scratch` and restores it: the reference row pair."""
    rrepo = scratch / "restic-repo"
    subprocess.run([RESTIC, "init", "-r", rrepo], env=env, check=True, capture_output=True)
    secs, rss, _ = timed([RESTIC, "-r", rrepo, "backup", "--no-cache", source], env)
    row(f"{what}: restic backup", secs, rss)
    secs, rss, _ = timed([RESTIC, "-r", rrepo, "restore", "--no-cache", "latest", "--target", scratch / "restic-out"], env)
    row(f"{what}: restic restore", secs, rss)
    shutil.rmtree(rrepo)
    shutil.rmtree(scratch / "restic-out")


def firestore_memory(a, work, env, row):
    """Backup and restore of two Firestore databases, a third and the whole of --firestore-docs."""
    from firestore_bench import profile
    sizes = [a.firestore_docs // 3, a.firestore_docs]
    rnd = random.Random(39)
    peaks = {}
    (work / "firestore").mkdir(parents=True, exist_ok=True)
    with peers.FirestoreEmulator(work / "firestore", heap="6g") as emu:
        fenv = dict(env, **emu.env())
        fenv.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
        for n in sizes:
            project = f"scale{n}"
            emu.put({f"users/u{i:08}": profile(rnd, i) for i in range(n)}, project=project)
            repo = work / f"firestore-repo-{n}"
            timed([LIFEBOAT, "-r", repo, "init", *LIFEBOAT_INIT_SETTINGS], fenv)
            secs, rss, _ = timed([LIFEBOAT, "-r", repo, "--no-progress", "backup", "firestore", "--project", project], fenv)
            row(f"Firestore {n:,} documents: Lifeboat backup", secs, rss)
            peaks[("backup", n)] = rss
            secs, rss, _ = timed([LIFEBOAT, "-r", repo, "--no-progress", "restore", "firestore", "--project", project,
                                  "--to-project", f"{project}-restored", "--check", "none"], fenv)
            row(f"Firestore {n:,} documents: Lifeboat restore", secs, rss)
            peaks[("restore", n)] = rss
            emu.clear(project)
            emu.clear(f"{project}-restored")
            shutil.rmtree(repo)
    small, big = sizes
    a.firestore_slopes = {op: (peaks[(op, big)] - peaks[(op, small)]) / (big - small) for op in ("backup", "restore")}
    for op, slope in a.firestore_slopes.items():
        print(f"Firestore {op}: {slope:.0f} bytes per document beyond the smaller run", flush=True)


def bucket_memory(a, work, env, row):
    """A bucket backup against the synthetic GCS API: the listing path at --bucket-objects, then real downloads."""
    for n, empty in ((a.bucket_objects, True), (a.bucket_data_objects, False)):
        with peers.SyntheticGcs(n, per_folder=1000, empty=empty) as gcs:
            genv = dict(env, **gcs.env())
            repo = work / f"bucket-repo-{n}"
            timed([LIFEBOAT, "-r", repo, "init", *LIFEBOAT_INIT_SETTINGS], genv)
            secs, rss, _ = timed([LIFEBOAT, "-r", repo, "--no-progress", "backup", "gcs", "gs://synthetic"], genv)
            what = "zero-byte objects: the listing path" if empty else "~25-byte objects, downloaded"
            row(f"bucket of {n:,} {what}: Lifeboat backup", secs, rss)
            secs, rss, _ = timed([LIFEBOAT, "-r", repo, "--no-progress", "backup", "gcs", "gs://synthetic"], genv)
            row(f"bucket of {n:,} {what}: Lifeboat backup again (nothing changed)", secs, rss)
            shutil.rmtree(repo)


def index_memory(a, work, env, row):
    """The in-memory index at --index-blobs blobs, in a process that only loads it."""
    repo = work / "index-repo"
    subprocess.run([SYNTH, "--index-only", repo, str(a.index_blobs)], env=env, check=True, capture_output=True)
    secs, rss, out = timed([SYNTH, "--measure-index", repo], env)
    m = json.loads(out)
    ok = "✅" if max(m["bytes_per_entry"], m["load_peak_bytes_per_entry"]) <= 40 else "❌"
    row(f"index of {m['index_entries']:,} blobs loaded: {m['bytes_per_entry']:.1f} bytes per blob kept, "
        f"{m['load_peak_bytes_per_entry']:.1f} at the peak ({ok})", secs, rss)
    shutil.rmtree(repo)


def mount_image(a, base: Path):
    """A sparse ext4 image mounted on base: inline data and 512-byte inodes keep each small file in its inode."""
    image = Path(a.work).parent / "scale-tree.img"
    image.unlink(missing_ok=True)
    with open(image, "wb") as f:
        f.truncate(int(a.image_gib * 2**30))
    inodes = 2 * a.files + a.files // 50 + 100000  # the tree and its restore, directories
    subprocess.run(["mkfs.ext4", "-q", "-F", "-O", "inline_data", "-I", "512", "-N", str(inodes), image], check=True)
    base.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(["mount", "-o", "loop,noatime", image, base], capture_output=True, text=True)
    if p.returncode != 0:
        image.unlink()
        sys.exit(f"--image-gib needs to mount a loop device (root): {p.stderr.strip()}")
    return image


def many_files(a, env, lb, row):
    base = Path(a.tree_dir)
    if base.is_mount():
        subprocess.run(["umount", base], check=True)
    shutil.rmtree(base, ignore_errors=True)
    image = mount_image(a, base) if a.image_gib else None
    try:
        many_files_on(a, env, lb, row, base)
    finally:
        if image:
            subprocess.run(["umount", base], check=False)
            image.unlink(missing_ok=True)


def many_files_on(a, env, lb, row, base: Path):
    src = base / "src"
    n = 0
    rnd = random.Random(39)
    t0 = time.monotonic()
    while n < a.files:
        d = src / f"a{n // 1000000:03}" / f"b{n // 10000 % 100:02}" / f"c{n // 100 % 100:02}"
        d.mkdir(parents=True, exist_ok=True)
        dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        for _ in range(min(100, a.files - n)):
            fd = os.open(f"f{n % 100:02}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644, dir_fd=dfd)
            os.write(fd, f"{n}:".encode() + rnd.randbytes(rnd.randint(16, 190)))
            os.close(fd)
            n += 1
        os.close(dfd)
        if n % 1000000 == 0:
            print(f"tree: {n:,} files in {time.monotonic() - t0:.0f} s", flush=True)
    label = f"tree of {a.files:,} files"
    repo = base / "repo"
    lb("init", "-r", repo, *LIFEBOAT_INIT_SETTINGS)
    secs, rss, _ = lb("backup", "-r", repo, src)
    row(f"{label}: Lifeboat backup", secs, rss)
    secs, rss, _ = lb("restore", "-r", repo, "latest", "--target", base / "out")
    row(f"{label}: Lifeboat restore", secs, rss)
    shutil.rmtree(base / "out")
    shutil.rmtree(repo)
    restic_round(env, label, src, base, row)
    if not base.is_mount():
        shutil.rmtree(base, ignore_errors=True)


def artifact_and_lfs(a, work, env, lb, row, size, parts):
    if "artifact" in parts or "lfs" in parts:  # both: the LFS part reuses the artifact's file
        # The model artifact, through a real MLflow server's artifact proxy.
        blob = work / "weights.bin"
        random_file(blob, a.gib)
        with peers.MLflow(work / "mlflow") as server:
            server.python(REGISTER, blob, timeout=3600)
            repo = work / "repo-models"
            lb("init", "-r", repo, *LIFEBOAT_INIT_SETTINGS)
            secs, rss, _ = lb("backup", "-r", repo, "models", "--mlflow", server.url, "--model", "big-model", "--name", "big")
            row(f"model artifact {size}: Lifeboat backup from MLflow", secs, rss)
            secs, rss, _ = lb("restore", "-r", repo, "models", "--name", "big", "--to-dir", work / "restored")
            row(f"model artifact {size}: Lifeboat restore to a directory", secs, rss)
            shutil.rmtree(work / "restored")
            secs, rss, _ = lb("restore", "-r", repo, "models", "--name", "big", "--mlflow", server.url)
            row(f"model artifact {size}: Lifeboat restore into the registry", secs, rss)
            shutil.rmtree(repo)
        shutil.rmtree(work / "mlflow")
        # The reference: restic on the same bytes as a file.
        restic_round(env, f"the same {size} file", blob, work, row)

        # The LFS object, from a Git LFS server (giftless) through a git daemon.
        src = work / "srv" / "src"
        src.mkdir(parents=True)
        git(src, "init", "-q", "-b", "main")
        git(src, "lfs", "install", "--local")
        git(src, "lfs", "track", "*.bin")
        blob.rename(src / "weights.bin")
        with peers.Giftless(work / "lfs") as lfs:
            git(src, "config", "-f", ".lfsconfig", "lfs.url", lfs.lfs_url("bench", "big"))
            git(src, "add", ".")
            git(src, "commit", "-q", "-m", "weights")
            (src / "weights.bin").unlink()  # the copy in .git/lfs stays; the server gets it by push
            git(src, "remote", "add", "origin", "git://127.0.0.1:1/src")
            git(src, "lfs", "push", "--all", "origin")
            shutil.rmtree(src / ".git" / "lfs" / "objects")
            port = peers.free_port()
            daemon = subprocess.Popen(["git", "daemon", "--listen=127.0.0.1", f"--port={port}", "--export-all", "--reuseaddr",
                                       f"--base-path={work / 'srv'}", str(work / "srv")],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                peers.wait_for_port(port, daemon, what="git daemon")
                repo = work / "repo-config"
                lb("init", "-r", repo, *LIFEBOAT_INIT_SETTINGS)
                secs, rss, _ = lb("backup", "-r", repo, "config", "--git", f"app=git://127.0.0.1:{port}/src", "--name", "big")
                row(f"LFS object {size}: Lifeboat backup from its LFS server", secs, rss)
            finally:
                daemon.terminate()
                daemon.wait()
        shutil.rmtree(work / "lfs")
        shutil.rmtree(work / "cache")
        secs, rss, _ = lb("restore", "-r", repo, "config", "--name", "big", "--target", work / "out", "--check", "git")
        row(f"LFS object {size}: Lifeboat restore of the mirror, git check", secs, rss)


if __name__ == "__main__":
    main()
