"""Models benchmark: an MLflow registry (mlflow 3.17.2, SQLite, artifact proxy on loopback) holding 20
versions of a 50 MB model whose versions share 40 MB of weights (a fine-tuned head changes the rest),
registered as MLflow logs them (a run, its artifacts, the version). In the same run, alternating with
the order swapped each round: Lifeboat (`backup models` into a new repository, `restore models
--to-dir`) against restic on the server's artifact folder (what a user would back up otherwise; it
misses the registry itself); then, into a second MLflow server with the model deleted before each
round, Lifeboat's `restore models --mlflow` against one process of MLflow's client copying every
version from the first registry (what a user scripts without a backup tool). Nothing in the rounds
writes to the first server's artifact folder (checked). Prints times, peak RSS, bytes stored and
ratios, and appends them to bench/RESULTS.md."""
import argparse
import datetime
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "peers"))
sys.path.insert(0, str(ROOT / "bench"))
import peers  # noqa: E402
from benchlib import LIFEBOAT_INIT_SETTINGS, RESTIC_SETTINGS, SETTINGS, cold_cache, machine_line, publish, timed  # noqa: E402
from files_bench import LIFEBOAT, RESTIC, WORK, median  # noqa: E402


def register(server, name, files):
    run = server.api("POST", "runs/create", {"experiment_id": "0", "run_name": "train"})[1]["run"]["info"]
    root = run["artifact_uri"].split("mlflow-artifacts:/", 1)[1]
    for path, data in files.items():
        urllib.request.urlopen(urllib.request.Request(f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{root}/model/{path}",
                                                      data=data, method="PUT"), timeout=600).read()
    st, body = server.api("POST", "model-versions/create", {"name": name, "source": run["artifact_uri"] + "/model",
                                                             "run_id": run["run_id"]})
    assert st == 200, body


# The copy a user scripts between registries without a backup tool, in one process: argv = source URL,
# target URL, scratch directory.
COPY_SCRIPT = """
import os, shutil, sys
import mlflow
from mlflow import MlflowClient
src, dst, tmp = MlflowClient(sys.argv[1]), MlflowClient(sys.argv[2]), sys.argv[3]
shutil.rmtree(tmp, ignore_errors=True)
dst.create_registered_model("face-shape")
versions = sorted(src.search_model_versions("name='face-shape'"), key=lambda v: int(v.version))
for v in versions:
    mlflow.set_tracking_uri(sys.argv[1])
    mlflow.set_registry_uri(sys.argv[1])
    local = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/face-shape/{v.version}", dst_path=os.path.join(tmp, v.version))
    mlflow.set_tracking_uri(sys.argv[2])
    mlflow.set_registry_uri(sys.argv[2])
    with mlflow.start_run() as run:
        mlflow.log_artifacts(local, "model")
    dst.create_model_version("face-shape", f"runs:/{run.info.run_id}/model", run.info.run_id, description=v.description)
    shutil.rmtree(local)
"""


def du(path):
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--versions", type=int, default=20)
    ap.add_argument("--size-mb", type=int, default=50)
    ap.add_argument("--shared-mb", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    scratch = WORK / "models-bench"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    rnd = random.Random(11)
    shared = rnd.randbytes(args.shared_mb << 20)
    with peers.MLflow(scratch / "server") as server:
        t0 = time.monotonic()
        server.api("POST", "registered-models/create", {"name": "face-shape"})
        for v in range(args.versions):
            weights = shared + rnd.randbytes((args.size_mb - args.shared_mb) << 20)
            register(server, "face-shape", {"model.onnx": weights, "MLmodel": b"flavors: {onnx: {}}\n",
                                            "input_example.json": json.dumps({"data": [[v, 0.5]]}).encode()})
        server.api("POST", "registered-models/alias", {"name": "face-shape", "alias": "production", "version": "7"})
        setup_s = time.monotonic() - t0
        total = args.versions * (args.size_mb << 20)
        # The server's own speed: every version's weights fetched through its artifact proxy with curl, 4 at a time.
        urls = []
        for v in range(1, args.versions + 1):
            uri = server.api("GET", f"model-versions/get-download-uri?name=face-shape&version={v}")[1]["artifact_uri"]
            urls.append(f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{uri.split('mlflow-artifacts:/', 1)[1]}/model.onnx")
        t0 = time.monotonic()
        subprocess.run(["xargs", "-P", "4", "-n", "1", "curl", "-sf", "-o", "/dev/null"], input="\n".join(urls), text=True, check=True)
        curl_s = time.monotonic() - t0
        env = dict(os.environ, LIFEBOAT_PASSWORD="bench", RESTIC_PASSWORD="bench", MLFLOW_TRACKING_URI=server.url,
                   RESTIC_CACHE_DIR=str(scratch / "restic-cache"), **RESTIC_SETTINGS, **peers.MLflow.ENV)
        rows = {k: [] for k in ("lb_backup", "lb_rebackup", "lb_restore_dir", "lb_restore_registry", "restic_backup", "restic_restore",
                                "script_copy")}
        sizes, peak = {}, {}
        # The artifact folder restic backs up stays as registered: nothing in the rounds writes to this server.
        artifacts_before = du(server.artifacts)
        for r in range(args.repeat):
            for tool in (("lifeboat", "restic") if r % 2 == 0 else ("restic", "lifeboat")):
                repo = scratch / f"{tool}-repo-{r}"
                out = scratch / f"{tool}-out-{r}"
                if tool == "lifeboat":
                    subprocess.run([LIFEBOAT, "-r", repo, "init", "--kdf-memory-kib", "65536", *LIFEBOAT_INIT_SETTINGS], env=env,
                                   check=True, capture_output=True)
                    dt, rss, _ = timed([LIFEBOAT, "-r", repo, "--no-progress", "backup", "models", "--mlflow", server.url], env)
                    rows["lb_backup"].append(dt)
                    peak["lifeboat backup"] = max(peak.get("lifeboat backup", 0), rss)
                    sizes["lifeboat"] = du(repo)
                    dt, _, _ = timed([LIFEBOAT, "-r", repo, "--no-progress", "backup", "models", "--mlflow", server.url], env)
                    rows["lb_rebackup"].append(dt)
                    dt, rss, _ = timed([LIFEBOAT, "-r", repo, "--no-progress", "restore", "models", "--to-dir", out], env)
                    rows["lb_restore_dir"].append(dt)
                    peak["lifeboat restore"] = max(peak.get("lifeboat restore", 0), rss)
                else:
                    subprocess.run([RESTIC, "-r", repo, "init"], env=env, check=True, capture_output=True)
                    dt, rss, _ = timed([RESTIC, "-r", repo, "backup", "-q", server.artifacts], env)
                    rows["restic_backup"].append(dt)
                    peak["restic backup"] = max(peak.get("restic backup", 0), rss)
                    sizes["restic"] = du(repo)
                    cold_cache(env["RESTIC_CACHE_DIR"])
                    dt, rss, _ = timed([RESTIC, "-r", repo, "restore", "latest", "--target", out], env)
                    rows["restic_restore"].append(dt)
                    peak["restic restore"] = max(peak.get("restic restore", 0), rss)
                shutil.rmtree(out, ignore_errors=True)
                shutil.rmtree(repo, ignore_errors=True)
        assert du(server.artifacts) == artifacts_before, "the rounds changed the artifact folder restic backs up"
        # Into a registry: a second MLflow server, the model deleted there before each round. Lifeboat
        # restores every version from a repository; the other side is what a user scripts without a
        # backup tool: one Python process with MLflow's client copying every version from the source
        # registry (download_artifacts, then log_artifacts into a run of the target and create_model_version).
        repo = scratch / "registry-repo"
        subprocess.run([LIFEBOAT, "-r", repo, "init", "--kdf-memory-kib", "65536", *LIFEBOAT_INIT_SETTINGS], env=env, check=True,
                       capture_output=True)
        subprocess.run([LIFEBOAT, "-r", repo, "--no-progress", "backup", "models", "--mlflow", server.url], env=env, check=True,
                       capture_output=True)
        copy = scratch / "registry_copy.py"  # not copy.py: that would shadow the standard library's copy
        copy.write_text(COPY_SCRIPT)
        with peers.MLflow(scratch / "target") as target:
            for r in range(args.repeat):
                for tool in (("lifeboat", "script") if r % 2 == 0 else ("script", "lifeboat")):
                    target.api("DELETE", "registered-models/delete", {"name": "face-shape"})
                    if tool == "lifeboat":
                        dt, rss, _ = timed([LIFEBOAT, "-r", repo, "--no-progress", "restore", "models", "--mlflow", target.url], env)
                        rows["lb_restore_registry"].append(dt)
                        peak["lifeboat into registry"] = max(peak.get("lifeboat into registry", 0), rss)
                    else:
                        dt, rss, _ = timed([peers.MLflow.PYTHON, copy, server.url, target.url, scratch / "copy-tmp"], env)
                        rows["script_copy"].append(dt)
                        peak["script copy"] = max(peak.get("script copy", 0), rss)
                    st, found = target.api("GET", "model-versions/search?filter=name%3D%27face-shape%27&max_results=1000")
                    assert st == 200 and len(found.get("model_versions", [])) == args.versions, (tool, found)
    versions = subprocess.run([RESTIC, "version"], capture_output=True, text=True).stdout.strip()
    m = {k: median(v) for k, v in rows.items() if v}
    mib = total / 2**20

    def rate(s):
        return f"{mib / s:.0f}"

    lines = [
        f"### {datetime.date.today()} — ML models: MLflow registry, {args.versions} versions of a {args.size_mb} MB model "
        f"({args.shared_mb} MB of weights shared between versions)",
        "",
        machine_line(f"Lifeboat 0.1.0; {versions}; {SETTINGS} "
                     "mlflow 3.17.2 (SQLite backend, artifact proxy)",
                     f"Median of {args.repeat} rounds, tools alternating, order swapped each round; fresh repository each round; "
                     f"all on loopback. "
                     f"Registering the versions took {setup_s:.0f} s."),
        "",
        "| phase | lifeboat s | other s | lifeboat MiB/s | other MiB/s | speed ratio |",
        "|---|---|---|---|---|---|",
        f"| backup (registry → new repository; restic: the artifact folder) | {m['lb_backup']:.2f} | {m['restic_backup']:.2f} | "
        f"{rate(m['lb_backup'])} | {rate(m['restic_backup'])} | {m['restic_backup'] / m['lb_backup']:.2f}x |",
        f"| unchanged re-backup (listing only) | {m['lb_rebackup']:.2f} | — | — | — | — |",
        f"| (the proxy's own speed: every weights file with curl, 4 at a time) | — | {curl_s:.2f} | — | {rate(curl_s)} | — |",
        f"| restore to a directory (restic: the artifact folder) | {m['lb_restore_dir']:.2f} | {m['restic_restore']:.2f} | "
        f"{rate(m['lb_restore_dir'])} | {rate(m['restic_restore'])} | {m['restic_restore'] / m['lb_restore_dir']:.2f}x |",
        f"| into a second registry (other: MLflow's client copying each version, one process) | {m['lb_restore_registry']:.2f} | "
        f"{m['script_copy']:.2f} | {rate(m['lb_restore_registry'])} | {rate(m['script_copy'])} | "
        f"{m['script_copy'] / m['lb_restore_registry']:.2f}x |",
        "",
        "Peak RSS (largest of the rounds): " + ", ".join(f"{k} {v / 2**20:.0f} MiB" for k, v in sorted(peak.items())) + ".",
        "",
        f"Stored: Lifeboat {sizes['lifeboat'] / 2**20:.0f} MiB, restic {sizes['restic'] / 2**20:.0f} MiB for {mib:.0f} MiB of "
        f"artifacts ({args.versions} x {args.size_mb} MB; the shared {args.shared_mb} MB deduplicate: "
        f"{sizes['lifeboat'] / total:.2f} of the data). restic's copy has the artifacts only: no registered model, versions, "
        f"aliases or tags (mlflow#24652), and it needs the server's disk. Lifeboat reads through the server's artifact proxy, "
        f"whose Python workers share the 2 cores with it (the proxy alone delivers the bytes in the curl row's time); "
        f"restic reads the folder on the server's disk. The copy script does not carry aliases or tags; Lifeboat's "
        f"restore does. Every round reads the same artifact folder (checked: the registry rounds write to "
        f"a second server, not the one restic backs up).",
        "",
    ]
    publish("\n".join(lines), ROOT / "bench" / "RESULTS.md", record=not args.no_record)


if __name__ == "__main__":
    main()
