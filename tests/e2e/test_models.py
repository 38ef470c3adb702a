"""Models source against a real MLflow tracking server with its registry (PyPI mlflow 3.17.2): a
scikit-learn model trained here, three versions registered, one holding the production alias; backup
with a validation command that loads each version read back from the repository and predicts on its
stored input example; the registry deleted and restored; the restored production model predicting
the same outputs; a corrupted artifact failing validation; the plan's retention keeping the
production version forever; drills whose checks fail on a tampered target; bad input."""
import json
import os
import shutil
import subprocess
import time
import sys
import textwrap
import urllib.parse
from pathlib import Path

import pytest

import peers
from conftest import LIFEBOAT, Lifeboat

TRAIN = r'''
import json, sys, mlflow, numpy as np
from sklearn.linear_model import LogisticRegression
from mlflow import MlflowClient
out = {}
X = np.random.RandomState(0).rand(60, 3); y = (X[:, 0] + X[:, 1] > 1).astype(int)
for i in range(3):
    m = LogisticRegression(C=0.01 * 10 ** i).fit(X, y)
    with mlflow.start_run():
        mlflow.sklearn.log_model(m, name="model", registered_model_name="face-shape", input_example=X[:5],
                                 pip_requirements=["scikit-learn"])  # not inferred: that takes 5 s a model
    out[str(i + 1)] = m.predict_proba(X[:5]).tolist()
c = MlflowClient()
c.set_registered_model_alias("face-shape", "production", "2")
c.set_registered_model_tag("face-shape", "team", "ml")
c.set_model_version_tag("face-shape", "1", "stage", "retired")
json.dump(out, open(sys.argv[1], "w"))
'''

# The plan's validation: load the model from the directory and predict on its stored input example.
VALIDATE = r'''
import json, sys, mlflow, numpy as np
model_dir = sys.argv[1]
m = mlflow.sklearn.load_model(model_dir)
example = json.load(open(model_dir + "/input_example.json"))
X = np.array(example["data"] if isinstance(example, dict) else example)
print(json.dumps(m.predict_proba(X).tolist()))
'''

PREDICT = r'''
import json, sys, mlflow, numpy as np
m = mlflow.sklearn.load_model(sys.argv[1])
X = np.random.RandomState(0).rand(60, 3)[:5]
print(json.dumps(m.predict_proba(X).tolist()))
'''


# A version whose one artifact is larger than the memory a backup may use: random bytes (nothing to
# compress or deduplicate), logged to a run through the server's artifact proxy and registered.
BIG = r'''
import os, sys, mlflow
from mlflow import MlflowClient
path, mib = sys.argv[1], int(sys.argv[2])
with open(path, "wb") as f:
    for _ in range(mib // 16):
        f.write(os.urandom(16 << 20))
with mlflow.start_run() as run:
    mlflow.log_artifact(path, artifact_path="model")
c = MlflowClient()
c.create_registered_model("big-model")
c.create_model_version("big-model", source=run.info.artifact_uri + "/model", run_id=run.info.run_id)
'''


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    d = tmp_path_factory.mktemp("mlflow")
    with peers.MLflow(d / "server") as server:
        expected = d / "expected.json"
        server.python(TRAIN, expected)
        validate = d / "validate.py"
        validate.write_text(VALIDATE)
        server.expected = json.loads(expected.read_text())
        server.validate_cmd = f"{peers.MLflow.PYTHON} {validate} {{model_dir}}"
        yield server


def close(a, b):
    return all(abs(x - y) < 1e-9 for ra, rb in zip(a, b) for x, y in zip(ra, rb)) and len(a) == len(b)


def test_backup_validate_delete_registry_restore_predicts_the_same(lb, registry, tmp_path):
    r = lb.json("backup", "models", "--mlflow", registry.url, "--model", "face-shape", "--validate", registry.validate_cmd,
                "--name", "models")
    versions = {v["version"]: v for v in r["versions"]}
    assert set(versions) >= {"1", "2", "3"}
    assert versions["2"]["aliases"] == ["production"] and versions["2"]["pinned"] is True
    assert not versions["1"]["pinned"]
    for v in ("1", "2", "3"):
        assert versions[v]["validation"]["ok"], versions[v]
        # The validation's output (its predictions, from the copy read back from the repository) is recorded.
        printed = json.loads(versions[v]["validation"]["detail"].split("output: ", 1)[1])
        assert close(printed, registry.expected[v])
    snaps = lb.json("snapshots")
    assert {tuple(sorted(t for t in s["tags"] if t.startswith(("model:", "version:", "alias:")))) for s in snaps} >= {
        ("model:face-shape", "version:1"), ("alias:production", "model:face-shape", "version:2"), ("model:face-shape", "version:3")}
    # Unchanged versions are not downloaded again.
    again = lb.json("backup", "models", "--mlflow", registry.url, "--model", "face-shape", "--name", "models")
    assert all(v["unchanged"] and v["downloaded_bytes"] == 0 for v in again["versions"])
    # Into a directory: each version loadable as logged.
    lb.run("restore", "models", "--to-dir", tmp_path / "out", "--name", "models")
    out = registry.python(PREDICT, tmp_path / "out" / "face-shape" / "2")
    assert close(json.loads(out), registry.expected["2"])
    # The registry is lost: the registered model deleted (versions, aliases, tags gone).
    assert registry.api("DELETE", "registered-models/delete", {"name": "face-shape"})[0] == 200
    assert registry.api("GET", "registered-models/get?name=face-shape")[0] == 404
    p = lb.run("restore", "models", "--mlflow", registry.url, "--name", "models")
    assert "face-shape v1 → " in p.stdout and "face-shape v3 → " in p.stdout
    st, rm = registry.api("GET", "registered-models/get?name=face-shape")
    assert st == 200
    rm = rm["registered_model"]
    assert {"key": "team", "value": "ml"} in rm["tags"]
    prod = [a for a in rm["aliases"] if a["alias"] == "production"]
    assert len(prod) == 1
    st, mv = registry.api("GET", "model-versions/get?name=face-shape&version=1")
    assert {"key": "stage", "value": "retired"} in mv["model_version"].get("tags", [])
    out = registry.python(PREDICT, "models:/face-shape@production")
    assert close(json.loads(out), registry.expected["2"])


def test_corrupted_artifact_fails_validation_and_exits_non_zero(lb, registry, tmp_path):
    # A new version whose stored weights are damaged on the server.
    registry.python(r'''
import mlflow, numpy as np
from sklearn.linear_model import LogisticRegression
X = np.random.RandomState(1).rand(40, 3); y = (X[:, 0] > .5).astype(int)
with mlflow.start_run():
    mlflow.sklearn.log_model(LogisticRegression().fit(X, y), name="model", registered_model_name="broken-model", input_example=X[:3],
                             pip_requirements=["scikit-learn"])
''')
    newest = max(registry.artifacts.rglob("model.skops"), key=lambda p: p.stat().st_mtime)
    newest.write_bytes(b"not a model" * 100)
    p = lb.run("--json", "backup", "models", "--mlflow", registry.url, "--model", "broken-model", "--validate",
               registry.validate_cmd, check=False)
    assert p.returncode == 1, p.stderr
    v = json.JSONDecoder().raw_decode(p.stdout)[0]["versions"][0]
    assert v["validation"]["ok"] is False and "exited" in v["validation"]["detail"]
    assert v["snapshot_id"]  # the data stays stored, marked not validated
    assert v["snapshot_id"] in {s["id"] for s in lb.json("snapshots")}
    assert "failed its validation" in p.stdout


def test_validation_that_hangs_is_killed_at_its_limit(lb, registry):
    start = time.time()
    p = lb.run("--json", "backup", "models", "--mlflow", registry.url, "--model", "face-shape", "--version", "3",
               "--validate", "sleep 60", "--validate-timeout", "2", "--tag", "hang", check=False)
    assert time.time() - start < 30
    v = json.JSONDecoder().raw_decode(p.stdout)[0]["versions"][0]
    assert p.returncode == 1 and v["validation"]["ok"] is False and "limit" in v["validation"]["detail"], p.stdout


def test_unreachable_server_and_missing_model(lb, registry):
    p = lb.run("backup", "models", "--mlflow", "http://127.0.0.1:9", check=False)
    assert p.returncode == 1 and "127.0.0.1:9" in p.stderr
    p = lb.run("backup", "models", "--mlflow", registry.url, "--model", "no-such-model", check=False)
    assert p.returncode == 1 and "no-such-model" in p.stderr
    assert lb.json("snapshots") == []


def test_plan_retention_keeps_production_forever_and_drill_checks_fail_when_tampered(lb, registry, tmp_path):
    plan = tmp_path / "lifeboat.yaml"
    target = tmp_path / "drill"
    plan.write_text(f"""
repositories:
  main: {{url: {lb.repo}}}
sources:
  models:
    kind: models
    repository: main
    mlflow: {registry.url}
    models: [face-shape]
    validate: {{run: "python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1] + \\"/model.skops\\").testzip()' {{model_dir}}", timeout: 120}}
    retention: {{last: 1}}
    validation: [manifest, validate]
    environments:
      test: {{to_dir: {target}}}
drills:
  after_restore: "true"
""")
    env = {"LIFEBOAT_PLAN": str(plan)}
    lb.run("backup", env=env)
    first = {s["id"]: s for s in lb.json("snapshots")}
    prod = [i for i, s in first.items() if "alias:production" in s["tags"]]
    assert len(prod) == 1 and first[prod[0]]["pinned"]
    # The alias moves to another version: both versions get new snapshots; `last: 1` per version would
    # forget the old one, but the old production snapshot keeps its pin.
    st, rm = registry.api("GET", "registered-models/get?name=face-shape")
    versions = sorted(int(v["version"]) for v in [*rm["registered_model"].get("latest_versions", [])])
    other = str(max(versions))
    registry.api("POST", "registered-models/alias", {"name": "face-shape", "alias": "production", "version": other})
    r = lb.run("--json", "backup", env=env)
    explain = json.dumps(json.JSONDecoder().raw_decode(r.stdout)[0])
    now = {s["id"]: s for s in lb.json("snapshots")}
    assert prod[0] in now and now[prod[0]]["pinned"], "the old production version was forgotten"
    moved = json.JSONDecoder().raw_decode(r.stdout)[0]["backups"][0]["result"]
    assert moved["summary"]["pinned"] >= 1, moved  # the version now holding production: pinned in this run
    # Drill into a directory: checks read the restored versions; a tampered artifact fails both.
    d = lb.run("--json", "drill", env=env)
    res = json.JSONDecoder().raw_decode(d.stdout)[0]
    checks = {c["check"]: c for s in res["sources"] for c in s["result"]["checks"]}
    assert checks["manifest"]["ok"] and checks["validate"]["ok"], checks
    shutil.rmtree(target)
    plan.write_text(plan.read_text().replace('after_restore: "true"',
                                             f'after_restore: "find {target} -name model.skops | head -1 | xargs truncate -s 10"'))
    d = lb.run("--json", "drill", env=env, check=False)
    res = json.JSONDecoder().raw_decode(d.stdout)[0]
    checks = {c["check"]: c for s in res["sources"] for c in s["result"]["checks"]}
    assert d.returncode != 0 and res["passed"] is False
    assert checks["manifest"]["ok"] is False and "model.skops" in checks["manifest"]["detail"], checks
    assert checks["validate"]["ok"] is False, checks
    # The runbook's `restore_models.py --date D --environment ENV`.
    shutil.rmtree(target)
    day = time.strftime("%Y-%m-%d", time.gmtime())
    r = lb.run("restore", "models", "--date", day, "--environment", "test", env=env)
    assert "manifest ok" in r.stdout and "validate ok" in r.stdout, r.stdout
    assert (target / "face-shape" / "2" / "MLmodel").exists()


def test_models_kept_outside_a_registry(lb, tmp_path):
    """--path: a directory, and a GCS prefix (fake-gcs-server), each one version; no MLflow involved."""
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "weights.bin").write_bytes(os.urandom(300_000))
    (model / "sub" / "config.json").write_text('{"layers": 4}')
    r = lb.json("backup", "models", "--path", model, "--model", "ranker", "--version", "7",
                "--validate", "test -s {model_dir}/weights.bin && test {version} = 7")
    v = r["versions"][0]
    assert v["validation"]["ok"] and v["files"] == 2, v
    with peers.FakeGCS() as gcs:
        gcs.create_bucket("models")
        gcs.put("models", "ranker/v8/weights.bin", (model / "weights.bin").read_bytes())
        gcs.put("models", "ranker/v8/sub/config.json", b'{"layers": 5}')
        r = lb.json("backup", "models", "--path", "gs://models/ranker/v8", "--model", "ranker", "--version", "8", env=gcs.env())
        assert r["versions"][0]["files"] == 2
        assert r["versions"][0]["bytes"] == 300_000 + len(b'{"layers": 5}')
    lb.run("restore", "models", "--to-dir", tmp_path / "out")
    assert (tmp_path / "out" / "ranker" / "7" / "weights.bin").read_bytes() == (model / "weights.bin").read_bytes()
    assert (tmp_path / "out" / "ranker" / "8" / "sub" / "config.json").read_text() == '{"layers": 5}'
    assert json.loads((tmp_path / "out" / "ranker" / "7.mlflow.json").read_text())["model_version"]["version"] == "7"
    p = lb.run("restore", "models", "--to-dir", tmp_path / "out", check=False)
    assert p.returncode == 1 and "not empty" in p.stderr


def test_a_killed_restore_into_a_registry_completes_on_the_next_run_without_duplicates(lb, registry, tmp_path):
    """kill -9 while the third version is being created in the target registry (the proxy holds that
    call): the re-run reuses the two versions already made and the unfinished run, creates the rest,
    and the target ends with each version once, every run used, production on the right version; a
    plain re-run after that changes nothing."""
    import threading
    lb.run("backup", "models", "--mlflow", registry.url, "--model", "face-shape", "--name", "models")
    backed_up = sorted(int(s["metadata"]["version"]) for s in lb.json("snapshots") if s["source"] == "models")
    assert len(backed_up) >= 3
    with peers.MLflow(tmp_path / "target") as target:
        creating = threading.Event()

        def hold():
            creating.set()
            time.sleep(30)

        proxy = peers.FaultyHttpProxy(target.port, rules=[("POST", "model-versions/create", None, 2),
                                                          ("POST", "model-versions/create", hold, 1)])
        try:
            p = lb.popen("restore", "models", "--mlflow", proxy.endpoint, "--name", "models")
            assert creating.wait(300), "the restore never reached the third version"
            p.kill()
            p.wait()
        finally:
            proxy.close()

        def target_versions():
            st, body = target.api("GET", "model-versions/search?filter=name%3D%27face-shape%27&max_results=100")
            assert st == 200, body
            return body.get("model_versions", [])

        assert len(target_versions()) == 2, "the kill came at the wrong moment"
        r = lb.run("--json", "restore", "models", "--mlflow", target.url, "--name", "models")
        done = json.JSONDecoder().raw_decode(r.stdout)[0]["versions"]
        assert [v["reused"] for v in done] == [True, True] + [False] * (len(backed_up) - 2), done
        versions = target_versions()
        assert sorted(int(v["version"]) for v in versions) == list(range(1, len(backed_up) + 1)), versions
        tags = [t["value"] for v in versions for t in v.get("tags", []) if t["key"] == "lifeboat.snapshot"]
        assert len(tags) == len(set(tags)) == len(backed_up)
        st, exp = target.api("GET", "experiments/get-by-name?experiment_name=lifeboat-restore")
        st, runs = target.api("POST", "runs/search", {"experiment_ids": [exp["experiment"]["experiment_id"]], "max_results": 100})
        assert len(runs["runs"]) == len(backed_up), "an interrupted restore's run was left behind"
        st, rm = target.api("GET", "registered-models/get?name=face-shape")
        src_prod = [a["version"] for a in registry.api("GET", "registered-models/get?name=face-shape")[1]["registered_model"]["aliases"]
                    if a["alias"] == "production"]
        assert [a["version"] for a in rm["registered_model"]["aliases"] if a["alias"] == "production"] == src_prod
        again = lb.run("restore", "models", "--mlflow", target.url, "--name", "models")
        assert again.stdout.count("restored from this snapshot before") == len(backed_up), again.stdout
        assert len(target_versions()) == len(backed_up)


def test_a_drill_into_a_registry_fails_when_the_restored_metadata_is_changed(lb, registry, tmp_path):
    """A drill restores into a second registry; the manifest check reads each restored version's
    description, tags and the model's aliases back from it. Changed after the restore, each one fails
    the check, named; left alone, the check passes."""
    with peers.MLflow(tmp_path / "drill-registry") as target:
        plan = tmp_path / "lifeboat.yaml"
        env = {"LIFEBOAT_PLAN": str(plan)}

        def write_plan(hook="true"):
            plan.write_text(f"""
repositories:
  main: {{url: {lb.repo}}}
sources:
  models:
    kind: models
    mlflow: {registry.url}
    models: [face-shape]
    validation: [manifest]
    environments:
      test: {{mlflow: {target.url}}}
drills:
  after_restore: {json.dumps(hook)}
""")

        def drill():
            p = lb.run("--json", "drill", env=env, check=False)
            res = json.JSONDecoder().raw_decode(p.stdout)[0]
            checks = {c["check"]: c for s in res["sources"] for c in s["result"].get("checks", [])}
            assert "manifest" in checks, p.stdout + p.stderr
            return p.returncode, checks["manifest"]

        write_plan()
        lb.run("backup", env=env)
        rc, manifest = drill()
        assert rc == 0 and manifest["ok"], manifest
        # The versions as the drill registered them in the target (numbered by it).
        st, found = target.api("GET", "model-versions/search?filter=" + urllib.parse.quote("name='face-shape'"))
        restored = sorted(int(v["version"]) for v in found["model_versions"])
        assert st == 200 and restored, found
        st, rm = target.api("GET", "registered-models/get?name=face-shape")
        prod = [a["version"] for a in rm["registered_model"].get("aliases", []) if a["alias"] == "production"]
        elsewhere = [v for v in restored if [str(v)] != prod][0]  # the alias moved to a version that lacks it
        api = f"{target.url}/api/2.0/mlflow"
        tampers = {
            "description": ("model-versions/update", {"name": "face-shape", "version": str(restored[0]),
                                                      "description": "changed after the restore"}),
            "tag": ("model-versions/set-tag", {"name": "face-shape", "version": str(restored[0]), "key": "stage",
                                               "value": "tampered"}),
            "alias": ("registered-models/alias", {"name": "face-shape", "alias": "production", "version": str(elsewhere)}),
        }
        for what, (path, body) in tampers.items():
            method = "PATCH" if path.endswith("update") else "POST"
            hook = tmp_path / f"tamper-{what}.py"
            hook.write_text(textwrap.dedent(f"""
                import json, urllib.request
                req = urllib.request.Request({api + "/" + path!r}, method={method!r}, data={json.dumps(body)!r}.encode(),
                                             headers={{"Content-Type": "application/json"}})
                urllib.request.urlopen(req).read()
            """))
            write_plan(f"{sys.executable} {hook}")
            rc, manifest = drill()
            assert rc != 0 and not manifest["ok"], (what, manifest)
            assert what in manifest["detail"] or "production" in manifest["detail"], (what, manifest)
            # The next drill's restore brings the registry back to the backup's metadata.
            write_plan()
            rc, manifest = drill()
            assert rc == 0 and manifest["ok"], (what, "not repaired by the next restore", manifest)


def test_an_artifact_larger_than_the_memory_bound_streams_through_backup_and_restore(lb, registry, tmp_path):
    """A 320 MiB artifact backs up (downloaded from the artifact proxy into the chunker piece by
    piece), restores to a directory and restores into the registry (uploaded piece by piece), each
    command's peak resident memory under 200 MiB as the kernel counts it: less than the artifact, so a
    path that held it whole would fail. The bytes come back equal (SHA-256 computed here)."""
    import hashlib
    mib = 320
    registry.python(BIG, tmp_path / "weights.bin", mib)
    _, rss = lb.run_measured("backup", "models", "--mlflow", registry.url, "--model", "big-model", "--name", "big")
    assert rss < 200, f"backup of a {mib} MiB artifact peaked at {rss:.0f} MiB"
    src = hashlib.sha256()
    with open(tmp_path / "weights.bin", "rb") as f:
        while chunk := f.read(1 << 20):
            src.update(chunk)
    (tmp_path / "weights.bin").unlink()
    _, rss = lb.run_measured("restore", "models", "--name", "big", "--model", "big-model", "--to-dir", tmp_path / "restored")
    assert rss < 200, f"restore of a {mib} MiB artifact to a directory peaked at {rss:.0f} MiB"
    restored = next((tmp_path / "restored").rglob("weights.bin"))
    got = hashlib.sha256()
    with open(restored, "rb") as f:
        while chunk := f.read(1 << 20):
            got.update(chunk)
    assert got.hexdigest() == src.hexdigest()
    assert restored.stat().st_size == mib << 20
    restored.unlink()
    _, rss = lb.run_measured("restore", "models", "--name", "big", "--model", "big-model", "--mlflow", registry.url)
    assert rss < 200, f"restore of a {mib} MiB artifact into a registry peaked at {rss:.0f} MiB"


def test_an_append_key_backs_up_a_model_and_cannot_validate_it(lb, tmp_path):
    """An append key backs a model up (the second time: unchanged, from its cache) and an admin
    restores it exactly. Validation runs on the copy read back from the repository, which an append
    key cannot read: asked for, it fails and says why (the admin side validates)."""
    from conftest import Lifeboat
    lb.run("key", "add", "--role", "append", "--kdf-memory-kib", "1024", "--kdf-iterations", "1",
           env={"LIFEBOAT_NEW_PASSWORD": "append pw"})
    app = Lifeboat(lb.repo, "append pw")
    app.env["LIFEBOAT_CACHE_DIR"] = str(tmp_path / "cache")
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(os.urandom(300_000))
    app.run("backup", "models", "--path", model, "--model", "ranker", "--version", "7")
    again = app.json("backup", "models", "--path", model, "--model", "ranker", "--version", "7")
    assert again["versions"][0]["unchanged"], again
    lb.run("restore", "models", "--to-dir", tmp_path / "out")
    assert (tmp_path / "out" / "ranker" / "7" / "weights.bin").read_bytes() == (model / "weights.bin").read_bytes()
    p = app.run("backup", "models", "--path", model, "--model", "ranker", "--version", "8",
                "--validate", "test -s {model_dir}/weights.bin", check=False)
    assert p.returncode == 1 and "validation FAILED" in p.stdout and "append key" in p.stdout, p.stdout + p.stderr
