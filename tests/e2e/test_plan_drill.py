"""The plan drives Lifeboat: plan check, backups of every source (with retention and verification),
a drill that restores everything into the test environment and measures RTO and RPO, status, and a
restore of all sources as of one instant. Against FerretDB (with oplog) and a files source."""
import json
import os
import signal
import time

import peers
from conftest import LIFEBOAT
from test_mongodb import Follower, raw_docs, settle_to_next_second, utc, wait_slices

PLAN = """
version: 1
objectives: {rpo: 1h, rto: 4h}
repositories:
  main:
    url: ${REPO}
    password_env: LIFEBOAT_PASSWORD
  region2:
    url: ${REPO2}
    copy_of: main
sources:
  eyewear-mongo:
    kind: mongodb
    uri: ${MONGO_URI}
    databases: [eyewear_ml]
    schedule: {full: "0 2 * * *", continuous: true, interval: 1s}
    retention: {last: 2}
    validation: [counts, hashes]
    environments:
      test: {rename: {eyewear_ml: eyewear_ml_test}}
  assets:
    kind: files
    paths: ["${ASSETS}"]
    schedule: {full: "30 2 * * *"}
    retention: {within: 90d}
    validation: [hashes, counts]
    environments:
      test: {target: "${DRILL_DIR}"}
"""


def test_plan_backup_drill_status_and_restore_all(lb, tmp_path):
    with peers.FerretDB(tmp_path / "ferretdb") as mongo:
        assets = tmp_path / "assets"
        assets.mkdir()
        for i in range(20):
            (assets / f"model-{i}.bin").write_bytes(bytes([i]) * (1000 + i * 5000))
        plan = tmp_path / "lifeboat.yaml"
        plan.write_text(PLAN)
        lb.env.update(REPO=str(lb.repo), REPO2=str(tmp_path / "region2"), MONGO_URI=mongo.uri, ASSETS=str(assets), DRILL_DIR=str(tmp_path / "drill"),
                      LIFEBOAT_PLAN=str(plan))
        c = mongo.client()
        c.eyewear_ml.frames.insert_many([{"_id": i, "model": f"m{i}", "price": i * 10} for i in range(500)])

        checked = lb.json("plan", "check")
        assert {s["name"] for s in checked["sources"]} == {"eyewear-mongo", "assets"}

        for _ in range(3):
            out = lb.json("backup")
            assert out["failed"] == 0 and all(b["ok"] for b in out["backups"])
        mongo_runs = [b for b in out["backups"] if b["source"] == "eyewear-mongo"]
        copies = mongo_runs[0]["result"]["copies"]
        assert copies[0]["repository"] == "region2" and copies[0]["mode"] == "sealed" and copies[0]["snapshots_copied"] == 1
        assert mongo_runs[0]["result"]["retention"]["forgotten"] == 1  # keep last 2
        assert mongo_runs[0]["result"]["verified"]["blobs"] > 0
        assert len([s for s in lb.json("snapshots") if s["source"] == "mongodb"]) == 2

        f = Follower(lb, mongo.uri, interval="1s")
        f.proc.kill()  # the plan's follower is named after the source: restart it that way
        f.proc.wait()
        follower = lb.popen("--json", "mongodb", "follow", "--uri", mongo.uri, "--name", "eyewear-mongo",
                            "--interval", "1s")
        try:
            settle_to_next_second()
            c.eyewear_ml.frames.update_one({"_id": 1}, {"$set": {"price": 999}})
            settle_to_next_second()
            t = int(time.time()) - 1
            at_t = raw_docs(c, "eyewear_ml", "frames")
            settle_to_next_second()
            c.eyewear_ml.frames.delete_many({"_id": {"$lt": 100}})  # the disaster
            time.sleep(2.5)
        finally:
            follower.send_signal(signal.SIGTERM)
            follower.communicate(timeout=30)

        drill = lb.json("drill", "--record", tmp_path / "drill.md")
        assert drill["passed"] and drill["rpo_met"] and drill["rto_met"], drill
        by = {s["source"]: s for s in drill["sources"]}
        assert by["eyewear-mongo"]["rpo_ms"] < 10_000 and by["eyewear-mongo"]["rto_ms"] > 0
        assert all(ch["ok"] for s in drill["sources"] for ch in s["result"]["checks"])
        assert len(by["assets"]["result"]["checks"]) == 2
        assert c.eyewear_ml_test.frames.count_documents({}) == 400  # the newest state, into the test env
        assert (tmp_path / "drill" / str(assets).lstrip("/") / "model-3.bin").read_bytes() == bytes([3]) * 16000
        md = (tmp_path / "drill.md").read_text()
        assert "## Steps" in md and "eyewear-mongo" in md and "## Deviations" in md
        assert any(s["source"] == "drill" for s in lb.json("snapshots"))  # stored with the backups

        status = {s["source"]: s for s in lb.json("status")["sources"]}
        assert status["eyewear-mongo"]["rpo_met"] and "last_drill" in status["assets"]

        # The whole platform as of one instant: MongoDB replayed to T, files from their newest at or before T.
        r = lb.json("restore", "--all", "--at", utc(t), "--environment", "test")
        assert r["failed"] == 0
        got = {x["source"]: x for x in r["restores"]}
        assert got["eyewear-mongo"]["result"]["behind_ms"] == 0
        assert got["assets"]["result"]["behind_ms"] > 0  # its newest backup precedes T
        assert raw_docs(c, "eyewear_ml_test", "frames") == at_t

        # The second region holds everything too, slices included: a point-in-time restore works there.
        lb.run("backup", "eyewear-mongo")
        region2 = lb.json("-r", tmp_path / "region2", "restore", "mongodb", "--dry-run", "--at", utc(t))
        assert region2["plan"]["lag_ms"] == 0 and len(region2["plan"]["slices"]) >= 1

        # The daily report, as text, JSON and one self-contained HTML file; metrics for Prometheus.
        rep = lb.json("report", "--since", "1h")
        srcs = {x["source"]: x for x in rep["sources"]}
        assert srcs["eyewear-mongo"]["state"] == "ok" and srcs["eyewear-mongo"]["stored_bytes"] > 0
        assert srcs["assets"]["backups_in_window"] == 3 and rep["drills"][-1]["passed"]
        text = lb.run("report").stdout
        assert "eyewear-mongo" in text and "Drills (RTO / RPO trend)" in text and "hashes: ok" in text
        html = tmp_path / "report.html"
        lb.run("report", "--format", "html", "-o", html)
        page = html.read_text()
        assert page.startswith("<!doctype html>") and "<svg" in page and "Total RTO per drill" in page
        assert "http://" not in page and "https://" not in page and "<script" not in page  # self-contained
        dom = peers.chromium_screenshot(f"file://{html}", tmp_path / "report.png")
        assert "Total RTO per drill" in dom and "<svg" in dom
        assert (tmp_path / "report.png").stat().st_size > 20_000 and peers.png_colours(tmp_path / "report.png") > 5
        prom = tmp_path / "lifeboat.prom"
        lb.run("metrics", "--textfile", prom)
        metrics = prom.read_text()
        assert '# TYPE lifeboat_rpo_seconds gauge' in metrics
        assert 'lifeboat_source_ok{source="eyewear-mongo"} 1' in metrics
        assert "lifeboat_last_drill_passed 1" in metrics
        for line in metrics.splitlines():
            assert line.startswith("#") or len(line.rsplit(" ", 1)) == 2 and float(line.rsplit(" ", 1)[1]) >= 0

        # Bad input: unknown source, missing environment, production refused.
        p = lb.run("backup", "nope", check=False)
        assert p.returncode == 1 and "no source nope" in p.stderr
        p = lb.run("restore", "assets", "--environment", "staging", check=False)
        assert p.returncode == 1 and "no environment staging" in p.stderr
        p = lb.run("drill", "--environment", "production", check=False)
        assert p.returncode == 1 and "not into production" in p.stderr


def test_plan_check_reports_every_problem_with_line_and_key(lb, tmp_path):
    plan = tmp_path / "bad.yaml"
    plan.write_text("repositories:\n  main: {url: /tmp/x}\nsources:\n  fs:\n    kind: firestorm\n"
                    "  db:\n    kind: mongodb\n    uri: ${UNSET_FOR_TEST}\n    schedule: {full: 'every day'}\n")
    p = lb.run("plan", "check", "--plan", plan, check=False)
    assert p.returncode == 1
    assert f"{plan}:5: sources.fs.kind: unknown source kind firestorm (known: files, mongodb" in p.stderr
    assert f"{plan}:8: sources.db.uri: environment variable UNSET_FOR_TEST is not set" in p.stderr
    assert f"{plan}:9: sources.db.schedule.full" in p.stderr
    ok = lb.run("plan", "check", "--plan", peers.ROOT / "examples" / "lifeboat.yaml")
    assert "eyewear-mongo (mongodb)" in ok.stdout


def test_emit_systemd_and_kubernetes(lb, tmp_path):
    plan = peers.ROOT / "examples" / "lifeboat.yaml"
    units = lb.run("--plan", plan, "emit", "systemd").stdout
    assert "### lifeboat-eyewear-mongo.timer" in units and "OnCalendar=*-*-* 2:0:00 UTC" in units
    assert "### lifeboat-eyewear-mongo-follow.service" in units and "mongodb follow" in units
    assert f"--plan {plan} backup assets" in units
    import subprocess
    import yaml  # scripts/setup installs both: a missing tool fails the test rather than skipping a check
    for cal in ("*-*-* 2:0:00 UTC", "*-*-* 2:30:00 UTC"):
        assert subprocess.run(["systemd-analyze", "calendar", cal], capture_output=True).returncode == 0
    # One file per unit, each passing systemd's own verification (the ExecStart binary must exist).
    out = tmp_path / "units"
    lb.run("--plan", plan, "emit", "systemd", "--dir", out, "--exe", LIFEBOAT)
    files = sorted(out.iterdir())
    assert {f.name for f in files} >= {"lifeboat-eyewear-mongo.timer", "lifeboat-eyewear-mongo.service",
                                       "lifeboat-eyewear-mongo-follow.service"}, files
    assert all(not f.read_text().startswith("###") for f in files)
    v = subprocess.run(["systemd-analyze", "verify", *map(str, files)], capture_output=True, text=True,
                       env=dict(os.environ, SYSTEMD_LOG_LEVEL="notice"))
    assert v.returncode == 0 and "Unknown" not in v.stderr, v.stderr
    follow = (out / "lifeboat-eyewear-mongo-follow.service").read_text()
    assert f"--plan {plan} -r local mongodb follow" in follow, follow
    # Kubernetes manifests that run as emitted: each checked against the Kubernetes schema (strict),
    # the plan and the local repository mounted, the follower reading the plan, placeholders marked.
    import kubernetes_validate
    k8s = lb.run("--plan", plan, "emit", "k8s", "--image", "registry.local/lifeboat:1").stdout
    docs = [yaml.safe_load(d) for d in k8s.split("---\n") if d.strip() and yaml.safe_load(d)]
    kinds = [d["kind"] for d in docs]
    assert "PersistentVolumeClaim" in kinds and "CronJob" in kinds and "Deployment" in kinds, kinds
    for d in docs:
        kubernetes_validate.validate(d, "1.31", strict=True)
    assert 'schedule: "0 2 * * *"' in k8s and "registry.local/lifeboat:1" in k8s and "PLACEHOLDER" in k8s
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["containers"][0]["args"][:4] == ["--plan", "/etc/lifeboat/lifeboat.yaml", "-r", "local"]
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    claims = {v["name"]: v for v in pod["volumes"]}
    assert mounts["plan"] == "/etc/lifeboat" and claims["repo-local"]["persistentVolumeClaim"]["claimName"] == "lifeboat-repo-local"
    for job in (d for d in docs if d["kind"] == "CronJob"):
        spec = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        names = {v["name"] for v in spec["volumes"]}
        assert {m["name"] for m in spec["containers"][0]["volumeMounts"]} <= names and "plan" in names, job
        assert spec["containers"][0]["envFrom"] == [{"secretRef": {"name": "lifeboat-env"}}]
