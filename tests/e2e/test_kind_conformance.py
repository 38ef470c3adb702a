"""The contract every source kind keeps, run over the registry with each kind's real peer: a plan
backup, then a drill whose every declared check reads the restored target and passes; the same drill
with the target tampered with after the restore in each way (an item removed, a byte changed, a
metadata field changed, an item added), and exactly the checks that must see it fail; an unknown
setting refused at its file:line. A kind the registry lists but this table does not is a failure: a new kind
inherits these tests by adding one row."""
import json
import re
import shutil
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

import peers


PEERS_DIR = str(Path(peers.__file__).parent)


@dataclass
class Tamper:
    script: str               # Python, run by the drill after the restore and before the checks
    fails: set                # the declared checks that must fail; every other one must pass
    named: str = ""           # text a check's detail must hold (what it saw and reported)


@dataclass
class Case:
    kind: str
    checks: list
    peer: str  # a fixture name, or ""
    # (tmp_path, peer) -> (settings, environment override, extra env vars, tampers). The tampers are
    # {"remove", "change", "metadata", "add"}: an item removed, a byte or field changed, a metadata
    # field changed, an item added; a value that is a string says why that way does not apply.
    setup: Callable


def script(body, *preamble):
    return textwrap.dedent("\n".join([*preamble, textwrap.dedent(body)]))


def files_case(tmp, _):
    src = tmp / "src"
    (src / "deep").mkdir(parents=True)
    (src / "a.txt").write_text("alpha\n" * 100)
    (src / "deep" / "b.bin").write_bytes(bytes(range(256)) * 40)
    target = tmp / "restored"
    pre = f"import os, pathlib\nroot = pathlib.Path({str(target)!r}) / {str(src).lstrip('/')!r}"
    # A byte changed keeps the size and the modification time: only the content differs.
    change = """
        p = root / "a.txt"
        st = p.stat()
        data = bytearray(p.read_bytes()); data[7] ^= 1
        p.write_bytes(bytes(data))
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    """
    # The directory keeps its modification time: only the extra file differs.
    add = """
        st = (root / "deep").stat()
        (root / "deep" / "stale.tmp").write_text("x")
        os.utime(root / "deep", ns=(st.st_atime_ns, st.st_mtime_ns))
    """
    tampers = {
        "remove": Tamper(script('(root / "deep" / "b.bin").unlink()', pre), {"hashes", "counts"}),
        "change": Tamper(script(change, pre), {"hashes"}),
        "metadata": Tamper(script('os.chmod(root / "a.txt", 0o600)', pre), {"hashes"}),
        # The restore deletes extras (delete_extra): one found after it fails `counts`.
        "add": Tamper(script(add, pre), {"counts"}, "stale.tmp"),
    }
    return {"paths": [str(src)]}, {"target": str(target), "delete_extra": True}, {}, tampers


def config_case(tmp, _):
    cfg = tmp / "cfg"
    cfg.mkdir()
    (cfg / "app.json").write_text('{"replicas": 3, "image": "app:1.2"}\n')
    (cfg / "deploy.yaml").write_text("service:\n  port: 8080\n")
    target = tmp / "restored"
    pre = f"import os, pathlib\nroot = pathlib.Path({str(target)!r}) / {str(cfg).lstrip('/')!r}"
    change = """
        p = root / "app.json"
        st = p.stat()
        p.write_text(p.read_text().replace("3", "x"))   # same size, and no longer JSON
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    """
    # The directory keeps its modification time: only the extra file differs.
    add = """
        st = root.stat()
        (root / "left-over.yaml").write_text("a: 1\\n")
        os.utime(root, ns=(st.st_atime_ns, st.st_mtime_ns))
    """
    tampers = {
        "remove": Tamper(script('(root / "app.json").unlink()', pre), {"files", "syntax"}),
        "change": Tamper(script(change, pre), {"files", "syntax"}),
        "metadata": Tamper(script('os.chmod(root / "deploy.yaml", 0o600)', pre), {"files"}),
        # A config restore overwrites and removes nothing: an extra file is named, not failed.
        "add": Tamper(script(add, pre), set(), "left-over.yaml"),
    }
    return {"paths": [str(cfg)]}, {"target": str(target)}, {}, tampers


def models_case(tmp, _):
    model = tmp / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(bytes(range(200)) * 500)
    (model / "MLmodel").write_text("flavors: {}\n")
    out = tmp / "models-out"
    settings = {"path": str(model), "models": ["ranker"], "version": "7", "validate": "test -f {model_dir}/weights.bin"}
    pre = f"import json, pathlib\nroot = pathlib.Path({str(out)!r}) / 'ranker'"
    change = """
        p = root / "7" / "weights.bin"
        data = bytearray(p.read_bytes()); data[100] ^= 1
        p.write_bytes(bytes(data))
    """
    metadata = """
        p = root / "7.mlflow.json"
        j = json.loads(p.read_text())
        j["model_version"]["description"] = "changed after the restore"
        p.write_text(json.dumps(j))
    """
    tampers = {
        "remove": Tamper(script('(root / "7" / "weights.bin").unlink()', pre), {"manifest", "validate"}),
        "change": Tamper(script(change, pre), {"manifest"}),
        "metadata": Tamper(script(metadata, pre), {"manifest"}),
        # A models restore writes a new directory and promises exactly the backup's artifacts.
        "add": Tamper(script('(root / "7" / "notes.txt").write_text("x")', pre), {"manifest"}, "notes.txt"),
    }
    return settings, {"to_dir": str(out)}, {}, tampers


def gcs_case(tmp, gcs):
    gcs.create_bucket("conform")
    gcs.create_bucket("conform-drill")
    gcs.put("conform", "a.txt", b"alpha" * 300, contentType="text/plain", metadata={"team": "web"})
    gcs.put("conform", "models/m.bin", bytes(range(256)) * 64)
    pre = (f"import sys\nsys.path.insert(0, {PEERS_DIR!r})\nimport peers\n"
           f"g = peers.FakeGCS()\ng.port, g.endpoint = {gcs.port}, {gcs.endpoint!r}")
    tampers = {
        "remove": Tamper(script('g.delete("conform-drill", "a.txt")', pre), {"counts", "hashes"}),
        # Another byte of the same size in a critical object: only a download and compare sees it.
        "change": Tamper(script('g.put("conform-drill", "models/m.bin", bytes([1]) + bytes(range(1, 256)) + bytes(range(256)) * 63)',
                                pre), {"hashes", "critical"}),
        "metadata": Tamper(script('g.put("conform-drill", "a.txt", b"alpha" * 300, contentType="text/html", metadata={"team": "web"})',
                                  pre), {"hashes"}),
        # The restore deletes extras (delete_extra): one found after it fails `counts`.
        "add": Tamper(script('g.put("conform-drill", "stale.txt", b"old")', pre), {"counts"}, "stale.txt"),
    }
    env = {"to": "gs://conform-drill", "delete_extra": True}
    return {"bucket": "gs://conform", "critical": ["*.bin"]}, env, gcs.env(), tampers


def firestore_case(tmp, emu):
    emu.put({f"users/u{i}": {"n": {"integerValue": str(i)}} for i in range(6)}, project="kc")
    pre = (f"import sys\nsys.path.insert(0, {PEERS_DIR!r})\nimport peers\n"
           f"e = peers.FirestoreEmulator()\ne.port, e.host = {emu.port}, {emu.host!r}")
    tampers = {
        "remove": Tamper(script('e.delete(["users/u1"], project="kc-drill")', pre), {"counts", "hashes"}),
        "change": Tamper(script('e.put({"users/u2": {"n": {"integerValue": "-1"}}}, project="kc-drill")', pre), {"hashes"}),
        "metadata": "a document holds fields only; its createTime and updateTime are the server's and no restore can keep them",
        # The restore replaces the restored collections (replace): an extra document fails `counts`;
        # a collection the backup lacks is named.
        "add": Tamper(script('e.put({"users/u99": {"n": {"integerValue": "99"}}, "stale/s1": {}}, project="kc-drill")', pre),
                      {"counts"}, "stale"),
    }
    return {"project": "kc"}, {"to_project": "kc-drill", "replace": True}, emu.env(), tampers


def mongodb_case(tmp, mongo):
    c = mongo.client()
    c.kc.items.insert_many([{"_id": i, "name": f"item{i}", "price": i * 3} for i in range(50)])
    c.kc.items.create_index("name", unique=True)
    c.kc.create_collection("recent", capped=True, size=4096)
    pre = f"import pymongo\nc = pymongo.MongoClient({mongo.uri!r}, directConnection=True)"
    tampers = {
        "remove": Tamper(script('c.kc_drill.items.delete_one({"_id": 3})', pre), {"counts", "hashes"}),
        "change": Tamper(script('c.kc_drill.items.update_one({"_id": 4}, {"$set": {"price": -1}})', pre), {"hashes"}),
        "metadata": Tamper(script('c.kc_drill.items.drop_index("name_1")', pre), {"hashes"}, "name_1"),
        # The restore drops what it restores (drop): a collection the backup lacks fails `counts`.
        "add": Tamper(script('c.kc_drill.stale.insert_one({"_id": 1})', pre), {"counts"}, "kc_drill.stale"),
    }
    return {"uri": mongo.uri, "databases": ["kc"]}, {"rename": {"kc": "kc_drill"}, "drop": True}, {}, tampers


CASES = {
    "files": Case("files", ["hashes", "counts"], "", files_case),
    "config": Case("config", ["files", "syntax"], "", config_case),
    "models": Case("models", ["manifest", "validate"], "", models_case),
    "gcs_bucket": Case("gcs_bucket", ["counts", "hashes", "critical"], "gcs", gcs_case),
    "firestore": Case("firestore", ["counts", "hashes"], "emu", firestore_case),
    "mongodb": Case("mongodb", ["counts", "hashes"], "mongo", mongodb_case),
}
TAMPERS = ["remove", "change", "metadata", "add"]  # "add" last: a server target keeps what it adds


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
    settings, env_override, env, tampers = case.setup(tmp_path, peer)
    assert set(tampers) == set(TAMPERS), f"{kind}: every way of tampering needs a row"
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

    # The target tampered with after the restore, one way at a time: the checks that must see it fail,
    # and the others pass. (A directory target is emptied first: some kinds restore only into an empty one.)
    for way in TAMPERS:
        tamper = tampers[way]
        if isinstance(tamper, str):
            assert tamper, f"{kind}: say why {way} does not apply"
            continue
        for v in env_override.values():
            if isinstance(v, str) and v.startswith(str(tmp_path)):
                shutil.rmtree(v, ignore_errors=True)
        hook = tmp_path / f"tamper-{way}.py"
        hook.write_text(tamper.script)
        plan.write_text(plan_yaml(lb.repo, kind, settings, env_override, case.checks, hook=f"{sys.executable} {hook}"))
        p = lb.run("--json", "drill", "--environment", "test", env=env, check=False)
        d, checks = drill_checks(p)
        assert set(checks) == set(case.checks), checks
        failed = {name for name, c in checks.items() if not c["ok"]}
        assert failed == tamper.fails, f"{kind}, {way}: failed {sorted(failed)}, expected {sorted(tamper.fails)}: {checks}"
        assert (p.returncode != 0) == bool(tamper.fails) and d["passed"] == (not tamper.fails), p.stdout + p.stderr
        if tamper.named:
            assert any(tamper.named in c["detail"] for c in checks.values()), f"{kind}, {way}: {tamper.named} not named: {checks}"
