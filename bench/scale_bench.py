"""Scale benchmark (issue 39), the parts built so far: one model artifact and one Git LFS object of
several GiB each (default 5), backed up and restored by Lifeboat with its peak resident memory
(/usr/bin/time's maximum RSS) against the 300 MiB goal, and restic backing up and restoring the same
bytes from a file as the reference a user would otherwise run. Random bytes: nothing compresses or
deduplicates. Disk: about seven copies of the object; the work directory is removed at the end.

Not here yet (issue 39 says so): the 10-million-file tree, the 10-million-object bucket listing and
the index at 50 million blobs.
"""
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
from benchlib import LIFEBOAT_INIT_SETTINGS, RESTIC_SETTINGS, machine_line, publish, timed  # noqa: E402
from files_bench import LIFEBOAT, RESTIC  # noqa: E402

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
    try:
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
        rrepo = work / "repo-restic"
        subprocess.run([RESTIC, "init", "-r", rrepo], env=env, check=True, capture_output=True)
        secs, rss, _ = timed([RESTIC, "-r", rrepo, "backup", "--no-cache", blob], env)
        row(f"the same {size} file: restic backup", secs, rss)
        secs, rss, _ = timed([RESTIC, "-r", rrepo, "restore", "--no-cache", "latest", "--target", work / "restic-out"], env)
        row(f"the same {size} file: restic restore", secs, rss)
        shutil.rmtree(rrepo)
        shutil.rmtree(work / "restic-out")

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
    finally:
        shutil.rmtree(work, ignore_errors=True)

    version = subprocess.run([LIFEBOAT, "--version"], capture_output=True, text=True).stdout.strip()
    restic_version = subprocess.run([RESTIC, "version"], capture_output=True, text=True).stdout.strip()
    lines = [f"## Scale: a {size} model artifact and a {size} LFS object in bounded memory ({datetime.date.today()})", "",
             machine_line(f"{version}; {restic_version}; MLflow 3.17.2; giftless",
                          "One run each (minutes per run at this size); peak RSS is /usr/bin/time's maximum resident size."),
             "", "| operation | time s | peak RSS MiB | goal |", "|---|---|---|---|"]
    for what, secs, rss in rows:
        goal = "" if "restic" in what else ("≤ 300 MiB ✅" if rss <= 300 * 2**20 else "≤ 300 MiB ❌")
        lines.append(f"| {what} | {secs:.1f} | {rss / 2**20:.0f} | {goal} |")
    lines += ["", "Random bytes, so nothing compresses or deduplicates. Before this build an artifact or an LFS object was "
              "downloaded whole into memory (a 5 GiB one needed 5 GiB of RAM): it is now streamed into the chunker through "
              "a bounded pipe (8 MiB) or into the mirror, hashed as it arrives.", ""]
    publish("\n".join(lines), ROOT / "bench" / "RESULTS.md", record=not a.no_record)


if __name__ == "__main__":
    main()
