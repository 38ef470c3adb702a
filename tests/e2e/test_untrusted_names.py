"""Names and URLs from outside (issue 32): a registry that names a model "../../x" or a version
"1/../../../x" never makes a restore write outside --to-dir, and a version that is not a decimal number
is refused at backup with the reason; a password in the MLflow URL never appears in any output — text,
--json, snapshots, the drill record, the report, notifications, status, the daemon's log and state.
The registry here is tests/peers' HostileMlflow, a fake that answers with whatever names it is given."""
import json
import os
import signal
import time
from pathlib import Path

import peers

PASSWORD = "hunter2-secret"


def files_under(root: Path, skip=()):
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if Path(dirpath, d) not in skip]
        for n in filenames + dirnames:
            out.add(Path(dirpath, n))
    return out


def test_a_model_named_to_climb_out_is_restored_inside_to_dir(lb, tmp_path):
    with peers.HostileMlflow(model="../../escaped", version="1") as reg:
        r = lb.json("backup", "models", "--mlflow", reg.url)
        assert [v["model"] for v in r["versions"]] == ["../../escaped"]
    to = tmp_path / "a" / "b" / "to"
    to.mkdir(parents=True)
    before = files_under(tmp_path, skip={lb.repo})
    lb.run("restore", "models", "--to-dir", to)
    created = files_under(tmp_path, skip={lb.repo}) - before
    assert created, "nothing was restored"
    outside = [p for p in created if to not in p.parents]
    assert not outside, f"written outside --to-dir: {outside}"
    assert (to / "..%2F..%2Fescaped" / "1" / "model.bin").read_bytes() == b"weights"
    assert not (tmp_path / "a" / "escaped").exists()


def test_a_version_that_is_not_a_decimal_number_is_refused_at_backup(lb):
    for version in ("1/../../../X", "1abc", "v2"):
        with peers.HostileMlflow(model="m", version=version) as reg:
            p = lb.run("backup", "models", "--mlflow", reg.url, check=False)
        assert p.returncode != 0, p.stdout
        assert "internal error" not in p.stderr, p.stderr
        assert json.dumps(version) in p.stderr and "not a decimal number" in p.stderr, p.stderr
    assert lb.json("snapshots") == [], "a refused version left a snapshot"
    # Through --path too: the version is the directory's name at restore.
    p = lb.run("backup", "models", "--path", "/", "--model", "m", "--version", "../x", check=False)
    assert p.returncode != 0 and "not a decimal number" in p.stderr, p.stderr


def test_an_mlflow_password_never_appears_in_any_output(lb, tmp_path):
    events = tmp_path / "events.jsonl"
    record = tmp_path / "record.md"
    report = tmp_path / "report.html"
    with peers.HostileMlflow(model="face", version="3") as reg:
        url = reg.url.replace("http://", f"http://alice:{PASSWORD}@")
        dead = f"http://alice:{PASSWORD}@127.0.0.1:{peers.free_port()}"
        plan = tmp_path / "lifeboat.yaml"
        plan.write_text(f"""
repositories:
  main: {{url: "{lb.repo}"}}
sources:
  ml:
    kind: models
    mlflow: "{url}"
    validation: [manifest]
    schedule: {{full: "0 * * * *"}}
    environments:
      test: {{to_dir: "{tmp_path / 'drill'}"}}
  registry-down:
    kind: models
    mlflow: "{dead}"
    schedule: {{full: "0 * * * *"}}
notifications:
  - {{type: command, command: "cat >> {events}", on: [success, failure, report]}}
""")
        env = {"LIFEBOAT_PLAN": str(plan)}
        outputs = []

        def run(*args):
            p = lb.run(*args, env=env, check=False)
            outputs.append((args, p.stdout + p.stderr))
            return p

        assert run("backup", "ml").returncode == 0
        assert run("--json", "backup", "ml").returncode == 0
        assert run("backup", "registry-down").returncode != 0
        assert run("--json", "backup", "registry-down").returncode != 0
        run("backup", "models", "--mlflow", url)  # the generated command, not the plan
        run("--json", "restore", "models", "--mlflow", dead, "--to-dir", tmp_path / "x")
        run("--json", "restore", "models", "--environment", "test", "--to-dir", tmp_path / "restored")
        assert run("drill", "ml", "--record", record).returncode == 0
        run("--json", "drill", "ml")
        run("--json", "snapshots")
        run("--json", "status")
        run("status")
        run("report", "--format", "html", "--output", report)
        run("--json", "report")

        # The daemon: a registry that is down fails in its log, notifications and state.
        state = tmp_path / "state"
        state.mkdir()
        two_hours_ago = int((time.time() - 7200) * 1e9)
        (state / "state.json").write_text(json.dumps({"sources": {"registry-down": {"last_run_ns": two_hours_ago}}}))
        d = lb.popen("--plan", plan, "daemon", "--state-dir", state, "--retries", "0")
        deadline = time.time() + 60

        def failed_once():
            st = json.loads((state / "state.json").read_text()).get("sources", {}).get("registry-down", {})
            return st.get("last_error") and st.get("last_run_ns", 0) > two_hours_ago

        while time.time() < deadline and not failed_once():
            time.sleep(0.3)
        assert failed_once(), "the daemon did not run the missed backup"
        d.send_signal(signal.SIGTERM)
        out, err = d.communicate(timeout=60)
        outputs.append((("daemon",), out + err))
    assert any("127.0.0.1" in text for _, text in outputs)
    for args, text in outputs:
        assert PASSWORD not in text, f"lifeboat {' '.join(map(str, args))} printed the password:\n{text}"
    assert "…@127.0.0.1" in "".join(text for _, text in outputs), "the URLs should still be shown, without their credentials"
    for f in (events, record, report, state / "state.json"):
        assert f.exists(), f
        assert PASSWORD not in f.read_text(), f"{f.name} holds the password"


MODELS_TAMPER = r'''
import json, os, sys
root, how = sys.argv[1], sys.argv[2]
version = os.path.join(root, "m", "1")
if how == "extra":
    open(os.path.join(version, "stray.bin"), "wb").write(b"not in the backup")
if how == "tags":
    meta = json.load(open(version + ".mlflow.json"))
    meta["model_version"]["tags"] = [{"key": "stage", "value": "tampered"}]
    json.dump(meta, open(version + ".mlflow.json", "w"))
if how == "aliases":
    meta = json.load(open(version + ".mlflow.json"))
    meta["registered_model"]["aliases"] = []
    json.dump(meta, open(version + ".mlflow.json", "w"))
'''


def test_the_models_manifest_check_sees_extra_artifacts_and_changed_registry_metadata(lb, tmp_path):
    """A drill into a directory: an artifact the backup lacks, a version's tags or the aliases changed in
    the written metadata each fail `manifest`; the untouched restore passes. The expected state is
    what the (fake) registry served."""
    import sys
    hook = tmp_path / "tamper.py"
    hook.write_text(MODELS_TAMPER)
    target = tmp_path / "drill"
    with peers.HostileMlflow(model="m", version="1") as reg:
        reg.aliases = [{"alias": "production", "version": "1"}]
        plan = tmp_path / "lifeboat.yaml"

        def drill(how):
            import shutil
            shutil.rmtree(target, ignore_errors=True)
            plan.write_text(f"""
repositories:
  main: {{url: "{lb.repo}"}}
sources:
  ml:
    kind: models
    mlflow: "{reg.url}"
    validation: [manifest]
    environments:
      test: {{to_dir: "{target}"}}
drills: {{after_restore: "{sys.executable} {hook} {target} {how}"}}
""")
            p = lb.run("--json", "drill", env={"LIFEBOAT_PLAN": str(plan)}, check=False)
            d = json.JSONDecoder().raw_decode(p.stdout)[0]
            checks = [c for s in d["sources"] for c in s["result"]["checks"]]
            return p.returncode, checks[0] if checks else None

        drill("none")  # writes the plan (no backup yet: nothing restored)
        lb.run("backup", env={"LIFEBOAT_PLAN": str(plan)})
        rc, check = drill("none")
        assert rc == 0 and check["ok"], check
        for how, words in (("extra", "stray.bin is not in the backup"), ("tags", "the version's tags"),
                           ("aliases", "aliases [], the backup has [production]")):
            rc, check = drill(how)
            assert rc == 1 and not check["ok"] and words in check["detail"], (how, check)
