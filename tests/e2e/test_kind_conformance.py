"""The contract every source kind keeps, run over the registry with each kind's real peer: a plan
backup, then a drill whose every declared check reads the restored target and passes; the same drill
with the target tampered with after the restore, and every declared check fails; an unknown setting
refused at its file:line. A kind the registry lists but this table does not is a failure: a new kind
inherits these tests by adding one row."""
import json
import re
import shutil
import sys
import textwrap
from dataclasses import dataclass
from typing import Callable

import pytest

import peers


@dataclass
class Case:
    kind: str
    checks: list
    peer: str  # a fixture name, or ""
    # (tmp_path, peer) -> (settings, environment override, extra env vars, tamper script)
    setup: Callable


def files_case(tmp, _):
    src = tmp / "src"
    (src / "deep").mkdir(parents=True)
    (src / "a.txt").write_text("alpha\n" * 100)
    (src / "deep" / "b.bin").write_bytes(bytes(range(256)) * 40)
    target = tmp / "restored"
    tamper = f"""
        import pathlib
        root = pathlib.Path({str(target)!r}) / {str(src).lstrip('/')!r}
        (root / "a.txt").write_text("changed")   # a byte changed
        (root / "deep" / "b.bin").unlink()        # an item removed
    """
    return {"paths": [str(src)]}, {"target": str(target)}, {}, tamper


def config_case(tmp, _):
    cfg = tmp / "cfg"
    cfg.mkdir()
    (cfg / "app.json").write_text('{"replicas": 3, "image": "app:1.2"}\n')
    (cfg / "deploy.yaml").write_text("service:\n  port: 8080\n")
    target = tmp / "restored"
    tamper = f"""
        import pathlib
        p = pathlib.Path({str(target)!r}) / {str(cfg).lstrip('/')!r} / "app.json"
        p.write_text('{{"replicas": ')            # bytes changed, and no longer JSON
    """
    return {"paths": [str(cfg)]}, {"target": str(target)}, {}, tamper


def models_case(tmp, _):
    model = tmp / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(bytes(range(200)) * 500)
    (model / "MLmodel").write_text("flavors: {}\n")
    out = tmp / "models-out"
    settings = {"path": str(model), "models": ["ranker"], "version": "7", "validate": "test -f {model_dir}/weights.bin"}
    tamper = f"""
        import pathlib
        (pathlib.Path({str(out)!r}) / "ranker" / "7" / "weights.bin").unlink()
    """
    return settings, {"to_dir": str(out)}, {}, tamper


def gcs_case(tmp, gcs):
    gcs.create_bucket("conform")
    gcs.put("conform", "a.txt", b"alpha" * 300)
    gcs.put("conform", "models/m.bin", bytes(range(256)) * 64)
    target = tmp / "restored"
    tamper = f"""
        import os
        for d, _, files in os.walk({str(target)!r}):
            for f in files:
                p = os.path.join(d, f)
                if f == "a.txt":
                    os.remove(p)                   # an object gone
                if f == "m.bin":
                    open(p, "r+b").write(b"X")     # a byte changed
    """
    return {"bucket": "gs://conform", "critical": ["*.bin"]}, {"target": str(target)}, gcs.env(), tamper


def firestore_case(tmp, emu):
    emu.put({f"users/u{i}": {"n": {"integerValue": str(i)}} for i in range(6)}, project="kc")
    tamper = f"""
        import json, urllib.request
        root = "projects/kc-drill/databases/(default)/documents"
        writes = [{{"delete": root + "/users/u1"}},
                  {{"update": {{"name": root + "/users/u2", "fields": {{"n": {{"integerValue": "-1"}}}}}}}}]
        req = urllib.request.Request("http://{emu.host}/v1/projects/kc-drill/databases/(default)/documents:commit",
                                     data=json.dumps({{"writes": writes}}).encode(),
                                     headers={{"Content-Type": "application/json", "Authorization": "Bearer owner"}})
        urllib.request.urlopen(req).read()
    """
    return {"project": "kc"}, {"to_project": "kc-drill", "replace": True}, emu.env(), tamper


def mongodb_case(tmp, mongo):
    c = mongo.client()
    c.kc.items.insert_many([{"_id": i, "name": f"item{i}", "price": i * 3} for i in range(50)])
    tamper = f"""
        import pymongo
        c = pymongo.MongoClient({mongo.uri!r}, directConnection=True)
        c.kc_drill.items.delete_one({{"_id": 3}})
        c.kc_drill.items.update_one({{"_id": 4}}, {{"$set": {{"price": -1}}}})
    """
    return {"uri": mongo.uri, "databases": ["kc"]}, {"rename": {"kc": "kc_drill"}}, {}, tamper


CASES = {
    "files": Case("files", ["hashes", "counts"], "", files_case),
    "config": Case("config", ["files", "syntax"], "", config_case),
    "models": Case("models", ["manifest", "validate"], "", models_case),
    "gcs_bucket": Case("gcs_bucket", ["counts", "hashes", "critical"], "gcs", gcs_case),
    "firestore": Case("firestore", ["counts", "hashes"], "emu", firestore_case),
    "mongodb": Case("mongodb", ["counts", "hashes"], "mongo", mongodb_case),
}


@pytest.fixture(scope="module")
def gcs():
    with peers.FakeGCS() as g:
        yield g


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    with peers.FirestoreEmulator(tmp_path_factory.mktemp("firestore")) as e:
        yield e


@pytest.fixture(scope="module")
def mongo(tmp_path_factory):
    with peers.FerretDB(tmp_path_factory.mktemp("ferretdb")) as m:
        yield m


def plan_yaml(repo, kind, settings, env_override, checks, hook=None, extra_setting=None):
    source = {"kind": kind, **settings, "validation": checks, "environments": {"test": env_override}}
    if extra_setting:
        source[extra_setting] = 1
    lines = ["repositories:", f"  main: {{url: {json.dumps(str(repo))}}}", "sources:", "  subject:"]
    lines += [f"    {k}: {json.dumps(v)}" for k, v in source.items()]
    if hook:
        lines.append(f"drills: {{after_restore: {json.dumps(hook)}}}")
    return "\n".join(lines) + "\n"


def drill_checks(p):
    d = json.loads(p.stdout.splitlines()[0])
    return d, {ch["check"]: ch for s in d["sources"] for ch in s["result"]["checks"]}


def test_every_registered_kind_is_in_the_suite(lb, tmp_path):
    plan = tmp_path / "p.yaml"
    plan.write_text(plan_yaml(lb.repo, "no-such-kind", {}, {}, []))
    p = lb.run("plan", "check", "--plan", plan, check=False)
    known = re.search(r"known: ([^)]*)\)", p.stderr + p.stdout)
    assert known, p.stderr
    assert set(known.group(1).split(", ")) == set(CASES), "a registered kind has no row in CASES"


@pytest.mark.parametrize("kind", sorted(CASES))
def test_kind_keeps_the_contract(kind, lb, tmp_path, request):
    case = CASES[kind]
    peer = request.getfixturevalue(case.peer) if case.peer else None
    settings, env_override, env, tamper = case.setup(tmp_path, peer)
    plan = tmp_path / "lifeboat.yaml"
    env = dict(env, LIFEBOAT_PLAN=str(plan))

    # An unknown setting is refused at its line, naming it.
    plan.write_text(plan_yaml(lb.repo, kind, settings, env_override, case.checks, extra_setting="no_such_setting"))
    line = plan.read_text().splitlines().index("    no_such_setting: 1") + 1
    p = lb.run("plan", "check", env=env, check=False)
    assert p.returncode != 0 and f"{plan.name}:{line}: sources.subject.no_such_setting: unknown setting" in p.stderr, p.stderr

    # Backup, then a drill whose every declared check reads the target and passes.
    plan.write_text(plan_yaml(lb.repo, kind, settings, env_override, case.checks))
    lb.run("plan", "check", env=env)
    out = json.loads(lb.run("--json", "backup", env=env).stdout)
    assert out["failed"] == 0, out
    p = lb.run("--json", "drill", "--environment", "test", env=env, check=False)
    d, checks = drill_checks(p)
    assert p.returncode == 0 and d["passed"], p.stdout + p.stderr
    assert set(checks) == set(case.checks) and all(c["ok"] for c in checks.values()), checks

    # The target tampered with after the restore: every declared check must see it and fail. (A
    # directory target is emptied first: some kinds restore only into an empty one.)
    for v in env_override.values():
        if isinstance(v, str) and v.startswith(str(tmp_path)):
            shutil.rmtree(v, ignore_errors=True)
    hook = tmp_path / "tamper.py"
    hook.write_text(textwrap.dedent(tamper))
    plan.write_text(plan_yaml(lb.repo, kind, settings, env_override, case.checks, hook=f"{sys.executable} {hook}"))
    p = lb.run("--json", "drill", "--environment", "test", env=env, check=False)
    d, checks = drill_checks(p)
    assert p.returncode != 0 and not d["passed"], p.stdout + p.stderr
    assert set(checks) == set(case.checks), checks
    assert not any(c["ok"] for c in checks.values()), f"a check did not see the tampering: {checks}"
