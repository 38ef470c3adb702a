"""Failover (plan §7.3) with two "regions" on loopback: production's peers and the DR environment's
(a second FerretDB, a second bucket, a second Firestore project, a second Secret Manager project, a
second MLflow registry, a second directory), the repository and its copy in different places. Production writes continuously
while the daemon keeps the DR environment current from the copy; then the primary repository is
deleted (the region is lost) and `failover` brings DR to the newest point the copy holds. What DR
must hold is read from the production peers themselves, never from Lifeboat."""
import base64
import json
import os
import signal
import statistics
import threading
import time
from pathlib import Path

import pytest

import peers

FOLLOW_S = 1.0   # the follower's slice interval
COPY_EVERY_S = 5.0  # copies also run after each committed slice; this bounds them when slices stop


def wait_for(cond, timeout=60, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    d = tmp_path_factory.mktemp("regions")
    (d / "firestore").mkdir()
    with peers.FerretDB(d / "mongo-prod") as prod_mongo, peers.FerretDB(d / "mongo-dr", oplog_bytes=0) as dr_mongo, \
            peers.FakeGCS() as gcs, peers.FirestoreEmulator(d / "firestore") as emu, peers.SecretManagerFake() as sm, \
            peers.MLflow(d / "mlflow-prod") as prod_mlflow, peers.MLflow(d / "mlflow-dr") as dr_mlflow:
        yield {"prod_mongo": prod_mongo, "dr_mongo": dr_mongo, "gcs": gcs, "emu": emu, "sm": sm,
               "prod_mlflow": prod_mlflow, "dr_mlflow": dr_mlflow}


def register_version(server, name, data: bytes, note):
    """A model version as MLflow's client logs one, through the REST API: a run, its artifact, the version."""
    import urllib.request
    if server.api("GET", f"registered-models/get?name={name}")[0] != 200:
        server.api("POST", "registered-models/create", {"name": name})
    run = server.api("POST", "runs/create", {"experiment_id": "0", "run_name": note})[1]["run"]["info"]
    root = run["artifact_uri"].split("mlflow-artifacts:/", 1)[1]
    urllib.request.urlopen(urllib.request.Request(f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{root}/model/model.bin",
                                                  data=data, method="PUT"), timeout=60).read()
    st, v = server.api("POST", "model-versions/create", {"name": name, "source": run["artifact_uri"] + "/model",
                                                          "run_id": run["run_id"], "description": note})
    assert st == 200, v


def models_of(server, name="ranker"):
    """Each version's description and artifact bytes, as the registry serves them."""
    import urllib.parse
    import urllib.request
    st, found = server.api("GET", "model-versions/search?filter=" + urllib.parse.quote(f"name='{name}'"))
    out = set()
    for v in (found or {}).get("model_versions", []):
        uri = server.api("GET", f"model-versions/get-download-uri?name={name}&version={v['version']}")[1]["artifact_uri"]
        root = uri.split("mlflow-artifacts:/", 1)[1]
        with urllib.request.urlopen(f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{root}/model.bin", timeout=60) as r:
            out.add((v.get("description", ""), r.read()))
    return out


def secret_values(sm, project):
    st, body = sm.call("GET", f"{project}/secrets?pageSize=100")
    out = {}
    page = body
    while True:
        for s in page.get("secrets", []):
            sid = s["name"].rsplit("/", 1)[1]
            st, v = sm.call("GET", f"{project}/secrets/{sid}/versions/latest:access")
            out[sid] = base64.b64decode(v["payload"]["data"]) if st == 200 else None
        if not page.get("nextPageToken"):
            return out
        st, page = sm.call("GET", f"{project}/secrets?pageSize=100&pageToken={page['nextPageToken']}")


def files_of(root: Path):
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def bucket_of(gcs, bucket):
    return {o["name"]: gcs.get(bucket, o["name"]) for o in gcs.list(bucket)}


def mongo_of(mongo, db="shop"):
    c = mongo.client()
    try:
        return {name: sorted(c[db][name].find(), key=lambda d: str(d["_id"])) for name in sorted(c[db].list_collection_names())}
    finally:
        c.close()


def firestore_of(emu, project):
    return emu.documents(project=project)


def dr_state(r, tmp):
    """Everything the DR side holds, read from its peers."""
    return {"mongo": mongo_of(r["dr_mongo"]), "gcs": bucket_of(r["gcs"], "dr-assets"),
            "firestore": firestore_of(r["emu"], "drp"), "secrets": secret_values(r["sm"], "projects/dr"),
            "files": files_of(under(tmp / "dr-site", tmp / "site")), "config": files_of(under(tmp / "dr-config", tmp / "config")),
            "models": models_of(r["dr_mlflow"])}


def under(target: Path, path: Path):
    """Where a restore into `target` puts `path` (by its absolute path)."""
    return target / str(path).lstrip("/")


def write_plan(tmp, r, steps):
    plan = tmp / "lifeboat.yaml"
    plan.write_text(f"""
objectives: {{rpo: 1h, rto: 4h}}
repositories:
  main: {{url: "{tmp / 'main'}"}}
  copy: {{url: "{tmp / 'copy'}", copy_of: main, copy_every: {int(COPY_EVERY_S)}s}}
sources:
  site:
    kind: files
    paths: ["{tmp / 'site'}"]
    validation: [hashes, counts]
    environments:
      dr: {{target: "{tmp / 'dr-site'}"}}
  shop:
    kind: mongodb
    uri: "{r['prod_mongo'].uri}"
    databases: [shop]
    schedule: {{full: "0 3 * * *", continuous: true, interval: {int(FOLLOW_S)}s}}
    validation: [counts, hashes]
    environments:
      dr: {{uri: "{r['dr_mongo'].uri}"}}
  assets:
    kind: gcs_bucket
    bucket: gs://prod-assets
    validation: [counts, hashes]
    environments:
      dr: {{to: gs://dr-assets}}
  users:
    kind: firestore
    project: prodp
    validation: [counts, hashes]
    after: [shop]
    environments:
      dr: {{to_project: drp}}
  ranker:
    kind: models
    mlflow: {r['prod_mlflow'].url}
    models: [ranker]
    validation: [manifest]
    environments:
      dr: {{mlflow: {r['dr_mlflow'].url}}}
  cfg:
    kind: config
    paths: ["{tmp / 'config'}"]
    secrets: projects/prod
    validation: [files, secrets]
    environments:
      dr: {{target: "{tmp / 'dr-config'}", secrets: projects/dr}}
environments:
  dr: {{standby: true, max_lag: 5m}}
failover:
  environment: dr
  steps:
{steps}
""")
    return plan


STEPS = """    - {name: dns, run: "echo dns $LIFEBOAT_ENVIRONMENT $LIFEBOAT_REHEARSAL >> STEPLOG"}
    - {name: apps, run: "echo apps >> STEPLOG", after: [dns], rehearse: true, timeout: 30s}"""


def test_region_lost_failover_brings_dr_to_the_copys_newest_point(lb, tmp_path, region):
    r = region
    tmp = tmp_path
    (tmp / "site" / "img").mkdir(parents=True)
    for i in range(5):
        (tmp / "site" / "img" / f"f{i}.bin").write_bytes(os.urandom(3000))
    (tmp / "config").mkdir()
    (tmp / "config" / "app.yaml").write_text("replicas: 3\n")
    c = r["prod_mongo"].client()
    c.shop.items.insert_many([{"_id": i, "price": i} for i in range(200)])
    c.shop.items.create_index("price")
    r["gcs"].create_bucket("prod-assets")
    r["gcs"].create_bucket("dr-assets")
    for i in range(5):
        r["gcs"].put("prod-assets", f"a/{i}.txt", f"asset {i}".encode())
    r["emu"].put({f"users/u{i}": {"n": {"integerValue": str(i)}} for i in range(10)}, project="prodp")
    register_version(r["prod_mlflow"], "ranker", os.urandom(4000), "v1")
    for i in range(3):
        r["sm"].create_secret("projects/prod", f"s{i}")
        r["sm"].add_version("projects/prod", f"s{i}", f"v1-{i}".encode())
    steplog = tmp / "steps.log"
    plan = write_plan(tmp, r, STEPS.replace("STEPLOG", str(steplog)))
    env = {**r["gcs"].env(), **r["emu"].env(), **r["sm"].env(), "LIFEBOAT_PLAN": str(plan)}
    plan_init(lb, env)
    out = lb.json("backup", env=env)
    assert out["failed"] == 0, out
    state = tmp / "state"
    before_any = dr_state(r, tmp)
    d = subprocess_daemon(lb, plan, state, env)
    stop = threading.Event()
    written = []

    def writer():
        i = 1000
        while not stop.is_set():
            c.shop.items.insert_one({"_id": i, "price": i, "at": time.time()})
            c.shop.items.update_one({"_id": i % 200}, {"$inc": {"price": 1}})
            written.append((i, time.time()))
            i += 1
            time.sleep(0.05)

    try:
        standby = state / "standby.json"
        wait_for(lambda: standby.exists() and len(json.loads(standby.read_text()).get("dr", {})) == 6
                 and all(v["point_ns"] for v in json.loads(standby.read_text())["dr"].values()), timeout=120,
                 what="the standby holding all six sources")
        t = threading.Thread(target=writer)
        t.start()
        # Standby lag under continuous writes: the newest document the DR server holds against now.
        lags = []
        dr = r["dr_mongo"].client()
        for _ in range(12):
            time.sleep(1)
            newest = dr.shop.items.find_one({"at": {"$exists": True}}, sort=[("at", -1)])
            if newest:
                lags.append(time.time() - newest["at"])
        stop.set()
        t.join()
        dr.close()
        print(f"MongoDB standby lag samples (s): {[round(x, 2) for x in lags]}")
        assert len(lags) >= 8, lags
        # The standby trails production by about one follow interval plus the copy delay.
        assert statistics.median(lags) <= 2 * FOLLOW_S + COPY_EVERY_S, lags
        # More production changes after the writes: files, objects, documents, secrets.
        (tmp / "site" / "img" / "f9.bin").write_bytes(b"late")
        (tmp / "site" / "img" / "f0.bin").unlink()
        r["gcs"].put("prod-assets", "a/late.txt", b"late")
        r["emu"].put({"users/u99": {"n": {"integerValue": "99"}}}, project="prodp")
        r["sm"].add_version("projects/prod", "s1", b"v2-1")
        register_version(r["prod_mlflow"], "ranker", os.urandom(5000), "v2")
        lb.run("backup", "site", "assets", "users", "cfg", "ranker", env=env)
        last_write = written[-1][1]
        # The copy holds the last write (the follower's slice, copied on commit).
        wait_for(lambda: all(s.get("points", {}).get("copy_ns", 0) / 1e9 >= last_write for s in status(lb, env, state)
                             if s["source"] == "shop"), timeout=30, what="the copy holding the last write")
    finally:
        d.send_signal(signal.SIGTERM)
        d.wait(timeout=60)
    log = d.stdout.read()
    assert "standby dr: keeping 6 source(s) current" in log, log
    # The follower may commit one more slice to main as the daemon stops, before copying it: copy it
    # now, so the copy holds what the rehearsal below brings the standby to (else the failover cannot
    # resume the standby and, rightly, restores it whole).
    lb.run("-r", str(tmp / "main"), "copy", "--to", str(tmp / "copy"), env={k: v for k, v in env.items() if k != "LIFEBOAT_PLAN"})
    # Production's state at that point, from its peers.
    expected = {"mongo": mongo_of(r["prod_mongo"]), "gcs": bucket_of(r["gcs"], "prod-assets"),
                "firestore": firestore_of(r["emu"], "prodp"), "secrets": secret_values(r["sm"], "projects/prod"),
                "files": files_of(tmp / "site"), "config": files_of(tmp / "config"), "models": models_of(r["prod_mlflow"])}
    assert expected["mongo"]["items"] and len(expected["mongo"]["items"]) > 200

    # A rehearsal first, the primary still there: the standby was kept from the copy, and the catch-up
    # from the primary resumes it (the same backup under another ID there); nothing is promoted.
    p = lb.run("--json", "drill", "--failover", "--state-dir", state, env=env, check=False)
    rehearsal = first_json(p.stdout)
    assert p.returncode == 0 and rehearsal["passed"], p.stdout + p.stderr
    shop = next(s for s in rehearsal["sources"] if s["source"] == "shop")["result"]["details"]
    assert "resumed_after" in shop and shop["repository"] == "main", shop
    assert steplog.read_text().splitlines() == ["apps"]  # only the step marked rehearse: true
    steplog.unlink()

    # The region is lost.
    import shutil
    shutil.rmtree(tmp / "main")
    s = lb.run("status", "--state-dir", state, env=env, check=False)
    assert s.returncode == 7 and "reading its copy copy" in s.stdout + s.stderr, s.stdout + s.stderr

    # A dry run says every action and changes nothing on any peer.
    before = dr_state(r, tmp)
    dry = lb.run("failover", "--dry-run", "--state-dir", state, env=env)
    for word in ("site", "shop", "assets", "users", "cfg", "ranker", "step dns", "step apps", "resume the standby"):
        assert word in dry.stdout, dry.stdout
    assert dr_state(r, tmp) == before
    assert not (state / "failover-dr.json").exists() and not steplog.exists()
    # Without --confirm and without a terminal: refused, nothing changed.
    p = lb.run("failover", "--state-dir", state, env=env, check=False)
    assert p.returncode != 0 and "--confirm" in p.stderr
    assert dr_state(r, tmp) == before

    p = lb.run("--json", "failover", "--confirm", "--state-dir", state, env=env, check=False)
    assert "repository main cannot be opened" in p.stderr and "reading its copy copy" in p.stderr, p.stderr
    rec = first_json(p.stdout)
    assert p.returncode == 0 and rec["passed"] and rec["kind"] == "failover", p.stdout + p.stderr
    got = dr_state(r, tmp)
    for system in expected:
        assert got[system] == expected[system], f"{system} in DR differs from production"
    assert before_any != got
    # Each source caught up from the copy; MongoDB resumed from what the standby held.
    by = {s["source"]: s for s in rec["sources"]}
    assert all(s["result"]["details"]["repository"] == "copy" for s in by.values()), by
    assert "resumed_after" in by["shop"]["result"]["details"], by["shop"]  # the MongoDB standby resumed: its documents stayed
    assert all(c["ok"] for s in by.values() for c in s["result"]["checks"]) and all(s["result"]["checks"] for s in by.values())
    # The steps ran in order with their timing; the record says what was promoted.
    assert steplog.read_text().splitlines() == ["dns dr 0", "apps"]
    assert [x["name"] for x in rec["steps"]] == ["dns", "apps"] and all(x["ok"] and x["duration_ms"] >= 0 for x in rec["steps"])
    assert rec["steps"][1]["started_ms"] >= rec["steps"][0]["started_ms"] + rec["steps"][0]["duration_ms"]
    assert rec["promoted"].startswith("Promoted"), rec["promoted"]
    assert rec["critical_path_ms"] <= rec["total_rto_ms"] + 5
    # Promoted: a second failover, a failover drill and the daemon all leave the environment alone.
    p = lb.run("failover", "--confirm", "--state-dir", state, env=env, check=False)
    assert p.returncode != 0 and "was promoted" in p.stderr
    p = lb.run("drill", "--failover", "--state-dir", state, env=env, check=False)
    assert p.returncode != 0 and "was promoted" in p.stderr


def first_json(text):
    return json.JSONDecoder().raw_decode(text)[0]


def plan_init(lb, env):
    """The plan names the repositories: the fixture's own is not used."""
    lb.env.pop("LIFEBOAT_REPOSITORY", None)
    lb.run("init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1", env=env)


def subprocess_daemon(lb, plan, state, env):
    import subprocess
    from conftest import LIFEBOAT
    e = dict(lb.env, **env)
    return subprocess.Popen([str(LIFEBOAT), "--plan", str(plan), "daemon", "--state-dir", str(state)], env=e,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def status(lb, env, state):
    p = lb.run("--json", "status", "--state-dir", state, env=env, check=False)
    return first_json(p.stdout)["sources"]


def site_plan(tmp_path, rest="", copy=True, source_extra="", environments='      dr: {{target: "{dr}"}}'):
    """A files source `site` (a.txt: "alpha") with settings for environment dr, in repository main (and
    its copy), and `rest` appended to the plan. Returns (the source directory, the plan, its env)."""
    src = tmp_path / "site"
    src.mkdir()
    (src / "a.txt").write_text("alpha")
    plan = tmp_path / "lifeboat.yaml"
    copy_line = f"  copy: {{url: \"{tmp_path / 'copy'}\", copy_of: main}}\n" if copy else ""
    plan.write_text(f"""
repositories:
  main: {{url: "{tmp_path / 'main'}"}}
{copy_line}sources:
  site:
    kind: files
    paths: ["{src}"]
{source_extra}    environments:
{environments.format(dr=tmp_path / 'dr', test=tmp_path / 'test')}
""" + rest)
    return src, plan, {"LIFEBOAT_PLAN": str(plan)}


def test_a_failing_step_stops_the_failover_and_resume_finishes_it(lb, tmp_path):
    steplog = tmp_path / "steps.log"
    gate = tmp_path / "gate"
    src, plan, env = site_plan(tmp_path, f"""environments:
  dr: {{standby: true}}
failover:
  environment: dr
  steps:
    - {{name: db, run: "echo db >> {steplog}"}}
    - {{name: dns, run: "test -f {gate} && echo dns >> {steplog}", after: [db]}}
    - {{name: apps, run: "echo apps >> {steplog}", after: [dns]}}
""", source_extra="    validation: [hashes, counts]\n")
    state = tmp_path / "state"
    plan_init(lb, env)
    lb.run("backup", env=env)
    p = lb.run("--json", "failover", "--confirm", "--state-dir", state, env=env, check=False)
    rec = first_json(p.stdout)
    assert p.returncode == 1 and not rec["passed"], p.stdout
    assert "NOT promoted" in rec["promoted"] and "Steps done: db" in rec["promoted"] and "Failed: dns" in rec["promoted"]
    assert "Not run: apps" in rec["promoted"] and "--resume" in rec["promoted"]
    assert steplog.read_text().splitlines() == ["db"]
    assert (tmp_path / "dr" / str(src).lstrip("/") / "a.txt").read_text() == "alpha"
    # Not resumed: a new failover is refused while this one is unfinished.
    p = lb.run("failover", "--confirm", "--state-dir", state, env=env, check=False)
    assert p.returncode != 0 and "--resume" in p.stderr
    gate.touch()
    p = lb.run("--json", "failover", "--resume", "--confirm", "--state-dir", state, env=env, check=False)
    rec = first_json(p.stdout)
    assert p.returncode == 0 and rec["passed"], p.stdout + p.stderr
    assert steplog.read_text().splitlines() == ["db", "dns", "apps"]  # db not run twice
    assert [x["name"] for x in rec["steps"]] == ["db", "dns", "apps"]
    # Done: the environment is promoted, and a dry run of another failover is refused like the real one.
    p = lb.run("failover", "--confirm", "--state-dir", state, env=env, check=False)
    assert p.returncode != 0 and "was promoted" in p.stderr
    # A progress file this version cannot read may record a promotion: everything refuses, naming it.
    (state / "failover-dr.json").write_text("{truncated")
    for args in (["failover", "--confirm"], ["failover", "--dry-run"], ["drill", "--failover"]):
        p = lb.run(*args, "--state-dir", state, env=env, check=False)
        assert p.returncode != 0 and "failover-dr.json is not a failover's progress" in p.stderr, (args, p.stderr)


def test_a_failover_drill_rehearses_and_measures_rto_without_promoting(lb, tmp_path):
    steplog = tmp_path / "steps.log"
    src, plan, env = site_plan(tmp_path, f"""objectives: {{rpo: 1h, rto: 4h}}
failover:
  environment: dr
  steps:
    - {{name: dns, run: "echo dns >> {steplog}"}}
    - {{name: smoke, run: "echo smoke $LIFEBOAT_REHEARSAL >> {steplog}", rehearse: true}}
""", copy=False, source_extra="    validation: [hashes, counts]\n")
    state = tmp_path / "state"
    plan_init(lb, env)
    lb.run("backup", env=env)
    p = lb.run("--json", "drill", "--failover", "--state-dir", state, env=env, check=False)
    rec = first_json(p.stdout)
    assert p.returncode == 0 and rec["passed"] and rec["rehearsal"], p.stdout + p.stderr
    assert steplog.read_text().splitlines() == ["smoke 1"]  # only rehearse: true steps
    assert rec["total_rto_ms"] > 0 and rec["rto_met"]
    assert rec["sources"][0]["result"]["checks"] and all(c["ok"] for c in rec["sources"][0]["result"]["checks"])
    # Not promoted: a real failover may follow.
    assert not (state / "failover-dr.json").exists()
    # A standby file changed in place (same size, same modification time) is not rewritten by the
    # catch-up, which writes only what differs in size or time; the rehearsal's check reads every byte
    # and fails, naming it.
    target_file = tmp_path / "dr" / str(src).lstrip("/") / "a.txt"
    st = target_file.stat()
    target_file.write_text("alphb")
    os.utime(target_file, ns=(st.st_atime_ns, st.st_mtime_ns))
    p = lb.run("--json", "drill", "--failover", "--state-dir", state, env=env, check=False)
    rec = first_json(p.stdout)
    assert p.returncode == 1 and not rec["passed"], p.stdout
    assert any("a.txt" in f for f in rec["failures"]), rec["failures"]
    assert steplog.read_text().splitlines() == ["smoke 1"]  # a failed check runs no step


def test_the_dr_regions_daemon_keeps_only_the_standby_and_is_emitted(lb, tmp_path):
    """`daemon --standby dr` (what `emit` runs in the DR region) keeps the standby current from the
    copy and runs nothing else; the emitted unit passes systemd's verification and the manifests the
    Kubernetes schema."""
    import subprocess
    import yaml
    import kubernetes_validate
    from conftest import LIFEBOAT
    src, plan, env = site_plan(tmp_path, "environments:\n  dr: {standby: true}\n", source_extra='    schedule: {full: "* * * * *"}\n',
                               environments='      dr: {{target: "{dr}"}}\n      test: {{target: "{test}"}}')
    plan_init(lb, env)
    lb.run("backup", env=env)
    p = lb.run("daemon", "--standby", "test", "--state-dir", tmp_path / "s0", env=env, check=False)
    assert p.returncode != 0 and "environment test is not a standby" in p.stderr
    state = tmp_path / "state"
    d = subprocess.Popen([str(LIFEBOAT), "daemon", "--standby", "dr", "--state-dir", str(state)], env=dict(lb.env, **env),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        restored = under(tmp_path / "dr", src) / "a.txt"
        wait_for(lambda: restored.exists() and restored.read_text() == "alpha", what="the standby filled")
        (src / "b.txt").write_text("beta")
        lb.run("backup", env=env)  # into main, copied to copy; the DR daemon reads the copy
        wait_for(lambda: (under(tmp_path / "dr", src) / "b.txt").exists(), what="the new backup in the standby")
        st = first_json(lb.run("--json", "status", "--state-dir", state, env=env, check=False).stdout)
        assert st["standby"][0]["source"] == "site" and st["standby"][0]["lag_ms"] >= 0, st["standby"]
        report = lb.run("report", "--state-dir", state, env=env).stdout
        assert "Standby:\n  dr site: at " in report and ", lag " in report, report
        html = lb.run("report", "--format", "html", "--state-dir", state, env=env).stdout
        assert "<h2>Standby</h2>" in html
    finally:
        d.send_signal(signal.SIGTERM)
        out = d.communicate(timeout=60)[0]
    assert "daemon started (standby only): dr" in out and "backup" not in out.replace("standby", ""), out
    # Only the DR side's daemon took the standby: no scheduled backup ran (one snapshot per backup above).
    assert len([s for s in lb.json("-r", "main", "snapshots", env=env) if s.get("source") == "files"]) == 2

    units = tmp_path / "units"
    lb.run("emit", "systemd", "--dir", units, "--exe", LIFEBOAT, env=env)
    unit = (units / "lifeboat-standby-dr.service").read_text()
    assert f"--plan {plan} daemon --standby dr" in unit, unit
    v = subprocess.run(["systemd-analyze", "verify", str(units / "lifeboat-standby-dr.service")], capture_output=True, text=True,
                       env=dict(os.environ, SYSTEMD_LOG_LEVEL="notice"))
    assert v.returncode == 0 and "Unknown" not in v.stderr, v.stderr
    k8s = lb.run("emit", "k8s", "--image", "registry.local/lifeboat:1", env=env).stdout
    docs = [yaml.safe_load(x) for x in k8s.split("---\n") if x.strip() and yaml.safe_load(x)]
    for doc in docs:
        kubernetes_validate.validate(doc, "1.31", strict=True)
    standby = next(x for x in docs if x["kind"] == "Deployment" and x["metadata"]["name"] == "lifeboat-standby-dr")
    pod = standby["spec"]["template"]["spec"]
    assert pod["containers"][0]["args"][2:5] == ["daemon", "--standby", "dr"]
    claims = {v["name"]: v for v in pod["volumes"]}
    assert claims["state"]["persistentVolumeClaim"]["claimName"] == "lifeboat-standby-dr-state"
    assert claims["repo-copy"]["persistentVolumeClaim"]["claimName"] == "lifeboat-repo-copy"


def test_failover_at_one_instant_reports_each_sources_skew(lb, tmp_path):
    src, plan, env = site_plan(tmp_path, copy=False, source_extra="    validation: [hashes, counts]\n")
    (src / "a.txt").write_text("first")
    plan_init(lb, env)
    lb.run("backup", env=env)
    time.sleep(1.1)
    at = time.time()
    time.sleep(1.1)
    (src / "a.txt").write_text("second")
    lb.run("backup", env=env)
    instant = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
    p = lb.run("--json", "failover", "--environment", "dr", "--at", instant, "--confirm", "--state-dir", tmp_path / "state",
               env=env, check=False)
    rec = first_json(p.stdout)
    assert p.returncode == 0 and rec["passed"], p.stdout + p.stderr
    assert (under(tmp_path / "dr", src) / "a.txt").read_text() == "first"
    details = rec["sources"][0]["result"]["details"]
    assert 0 < details["skew_ms"] < 3000, details  # how far the restored point lies before the instant
