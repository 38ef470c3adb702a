"""Firestore against Google's Cloud Firestore emulator (the real peer, started here on loopback):
every value type and nested subcollections round trip into another database and project; a backup
is one read time even while writes go on; restores as of an earlier backup or an instant the server
still keeps; --replace; counts and hashes read back from the target (and fail when it is tampered
with); faults answered with retries or a clean failure; the read window; plan backups and drills."""
import json
import math
import random
import string
import sys
import threading
import time

import pytest

import peers

ROOT = "projects/{p}/databases/{d}/documents"


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    with peers.FirestoreEmulator(tmp_path_factory.mktemp("firestore")) as e:
        yield e


def run(lb, emu, *args, check=True, env=None):
    return lb.run(*args, check=check, env=dict(emu.env(), **(env or {})))


def rid(rnd):
    return "".join(rnd.choice(string.ascii_letters + string.digits) for _ in range(20))


EVERY_TYPE = {
    "null": {"nullValue": None},
    "yes": {"booleanValue": True},
    "no": {"booleanValue": False},
    "big": {"integerValue": "9223372036854775807"},
    "small": {"integerValue": "-9223372036854775808"},
    "pi": {"doubleValue": 3.141592653589793},
    "tiny": {"doubleValue": 5e-324},
    "nan": {"doubleValue": "NaN"},
    "inf": {"doubleValue": "Infinity"},
    "ninf": {"doubleValue": "-Infinity"},
    "when": {"timestampValue": "2024-02-29T23:59:59.123456Z"},
    "text": {"stringValue": "héllo \u2603 \U0001F600 \"quoted\" \\ / \n"},
    "empty": {"stringValue": ""},
    "blob": {"bytesValue": "AAEC/w=="},
    "ref": {"referenceValue": "projects/p1/databases/(default)/documents/users/bob"},
    "where": {"geoPointValue": {"latitude": 52.52, "longitude": -13.405}},
    "list": {"arrayValue": {"values": [{"integerValue": "1"}, {"stringValue": "two"},
                                       {"mapValue": {"fields": {"three": {"doubleValue": 3.5}}}}]}},
    "nothing": {"arrayValue": {}},
    "deep": {"mapValue": {"fields": {"a": {"mapValue": {"fields": {"b": {"mapValue": {"fields": {
        "c": {"arrayValue": {"values": [{"mapValue": {"fields": {"d": {"arrayValue": {"values": [
            {"booleanValue": True}]}}}}}]}}}}}}}}}}},
    "blank": {"mapValue": {}},
    "a.b": {"stringValue": "a field name with a dot"},
}


def canon(fields, root=None, to=None):
    """Fields as comparable data: doubles by value (NaN equal to NaN), references relative to root."""
    def v(x):
        (k, val), = x.items()
        if k == "doubleValue":
            f = float(val)
            return (k, "nan" if math.isnan(f) else f)
        if k == "integerValue":
            return (k, int(val))
        if k == "arrayValue":
            return (k, tuple(v(e) for e in val.get("values", [])))
        if k == "mapValue":
            return (k, tuple(sorted((n, v(e)) for n, e in val.get("fields", {}).items())))
        if k == "geoPointValue":
            return (k, (float(val.get("latitude", 0)), float(val.get("longitude", 0))))
        if k == "timestampValue":
            return (k, val.rstrip("Z").rstrip("0").rstrip("."))
        if k == "referenceValue" and root and val.startswith(root + "/"):
            return (k, "~" + val[len(root):])
        return (k, val)
    return {n: v(x) for n, x in fields.items()}


def db_state(emu, project, database="(default)", read_time=None):
    root = ROOT.format(p=project, d=database)
    return {n: canon(f, root) for n, f in emu.documents(project, database, read_time).items()}


def test_every_value_type_and_nested_subcollections_round_trip_into_another_database_and_project(lb, emu):
    docs = {
        "users/alice": EVERY_TYPE,
        "users/bob": {"name": {"stringValue": "Bob"}},
        "users/alice/orders/o1": {"total": {"integerValue": "42"}},
        "users/alice/orders/o1/items/i1": {"sku": {"stringValue": "A-1"}},
        "users/alice/orders/o1/items/i1/notes/n1": {"text": {"stringValue": "three levels down"}},
        "ghosts/nobody/letters/l1": {"to": {"stringValue": "a parent that does not exist"}},
        "odd%name/x y": {"ok": {"booleanValue": True}},
    }
    emu.put(docs, project="p1")
    before = db_state(emu, "p1")
    assert "ghosts/nobody" not in before and "ghosts/nobody/letters/l1" in before

    out = json.loads(run(lb, emu, "--json", "backup", "firestore", "--project", "p1").stdout)
    meta = out["metadata"]
    assert meta["documents"] == len(docs)
    assert meta["collections"]["users"]["documents"] == 5 and meta["collections"]["ghosts"]["documents"] == 1
    assert out["summary"]["checks"][0]["ok"]

    for project, database in (("p1", "copy"), ("p2", "(default)")):
        r = run(lb, emu, "restore", "firestore", "--project", "p1", "--to-project", project, "--to-database", database)
        assert "check counts: ok" in r.stdout and "check hashes: ok" in r.stdout, r.stdout
        assert db_state(emu, project, database) == before
    # A reference into the backed-up database now points into the database it was restored into.
    got = emu.documents("p2")["users/alice"]["ref"]["referenceValue"]
    assert got == "projects/p2/databases/(default)/documents/users/bob"


def test_counts_and_hashes_read_the_target_back_and_fail_when_it_is_tampered_with(lb, emu):
    emu.put({f"items/i{i}": {"n": {"integerValue": str(i)}} for i in range(50)}, project="t1")
    run(lb, emu, "backup", "firestore", "--project", "t1")

    def tamper_after_the_writes(change):
        """A proxy that changes the target once the restore's writes are done (the emulator has answered
        all 50), before the checks read it. The restore lists the target while it writes, so a query
        alone does not mean the writes are done."""
        wrote, done, changing = threading.Event(), threading.Event(), threading.Lock()
        written = []

        def on_written(body):
            written.extend(json.loads(body)["writes"])
            if len(written) >= 50:
                wrote.set()

        def on_query():
            # The checks read in parallel: every query waits until the change is made, or one
            # forwarded meanwhile could read the target as it was.
            with changing:
                if wrote.is_set() and not done.is_set():
                    change()
                    done.set()
        return peers.FaultyHttpProxy(emu.port, [("POST", ":runQuery", on_query, None)],
                                     after=[("POST", ":batchWrite", on_written)])

    for change, failing in ((lambda: emu.put({"items/i7": {"n": {"integerValue": "700"}}}, project="t1r"), {"hashes"}),
                            (lambda: emu.delete(["items/i3"], project="t1r"), {"counts", "hashes"})):
        proxy = tamper_after_the_writes(change)
        try:
            r = run(lb, emu, "--json", "restore", "firestore", "--project", "t1", "--to-project", "t1r", check=False,
                    env={"FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{proxy.port}"})
        finally:
            proxy.close()
        assert r.returncode == 1, (failing, r.stdout, r.stderr)
        checks = {c["check"]: c for c in json.loads(r.stdout.splitlines()[0])["checks"]}
        assert {n for n, c in checks.items() if not c["ok"]} == failing, checks
        assert "items" in checks["hashes"]["detail"]

    # Untouched, both pass; an extra document fails counts only with --replace's promise.
    run(lb, emu, "restore", "firestore", "--project", "t1", "--to-project", "t1r")
    emu.put({"items/extra": {"n": {"integerValue": "1"}}}, project="t1r")
    r = run(lb, emu, "restore", "firestore", "--project", "t1", "--to-project", "t1r", "--dry-run")
    assert "1 in the target that the restored state lacks" in r.stdout, r.stdout
    r = run(lb, emu, "restore", "firestore", "--project", "t1", "--to-project", "t1r", "--replace")
    assert "1 deleted" in r.stdout and "check counts: ok" in r.stdout, r.stdout
    assert "items/extra" not in db_state(emu, "t1r")


def test_a_backup_is_one_read_time_while_writes_go_on(lb, emu):
    rnd = random.Random(5)
    emu.put({f"users/{rid(rnd)}": {"v": {"integerValue": "0"}, "pad": {"stringValue": "x" * 300}} for _ in range(6000)},
            project="c1")
    stop = threading.Event()
    written = []

    def writer():
        i = 0
        while not stop.is_set():
            t = emu.put({f"late/w{i}": {"i": {"integerValue": str(i)}}, "users/aaaa": {"v": {"integerValue": str(i)}}},
                        project="c1")
            written.append(t)
            i += 1

    th = threading.Thread(target=writer)
    th.start()
    time.sleep(0.3)
    try:
        out = json.loads(run(lb, emu, "--json", "backup", "firestore", "--project", "c1", "--readers", "4").stdout)
    finally:
        stop.set()
        th.join()
    read_time = out["metadata"]["read_time"]
    after = [t for t in written if t > read_time]
    assert after, "no write landed while the backup ran"
    # The snapshot holds exactly what the server says the database held at its read time.
    at = db_state(emu, "c1", read_time=read_time)
    assert out["metadata"]["documents"] == len(at)
    run(lb, emu, "restore", "firestore", "--project", "c1", "--to-project", "c1r")
    assert db_state(emu, "c1r") == {n: f for n, f in at.items()}
    assert len(db_state(emu, "c1")) > len(at)


def test_restore_an_earlier_backup_or_an_instant_and_replace_removes_what_came_since(lb, emu):
    emu.put({"orders/a": {"n": {"integerValue": "1"}}, "orders/b": {"n": {"integerValue": "2"}}}, project="d1")
    first = json.loads(run(lb, emu, "--json", "backup", "firestore", "--project", "d1").stdout)
    day1 = db_state(emu, "d1")
    time.sleep(1.1)
    emu.put({"orders/a": {"n": {"integerValue": "100"}}, "orders/c": {"n": {"integerValue": "3"}}}, project="d1")
    instant = emu.delete(["orders/b"], project="d1")  # the server's commit time
    time.sleep(1.1)
    emu.put({"orders/d": {"n": {"integerValue": "4"}}}, project="d1")
    run(lb, emu, "backup", "firestore", "--project", "d1")
    state_at_instant = db_state(emu, "d1", read_time=instant)

    # The first backup, into the live database itself: without --replace c and d stay.
    t1 = first["metadata"]["read_time"]
    r = run(lb, emu, "restore", "firestore", "--project", "d1", "--at", t1, "--from-backup")
    assert f"backup {first['short_id']} read at {t1}" in r.stdout, r.stdout
    assert "2 documents in the restored collections are not in the restored state" in r.stdout, r.stdout
    r = run(lb, emu, "restore", "firestore", "--project", "d1", "--at", t1, "--from-backup", "--replace")
    assert "2 deleted" in r.stdout and "check counts: ok" in r.stdout, r.stdout
    assert db_state(emu, "d1") == day1

    # An instant the server still keeps is read from the database's own versions: no backup holds it.
    r = run(lb, emu, "restore", "firestore", "--project", "d1", "--at", instant, "--to-project", "d1i")
    assert "the live database as the server kept it at" in r.stdout, r.stdout
    assert db_state(emu, "d1i") == state_at_instant
    assert state_at_instant != day1

    # --snapshot and --collection: only the named collection is touched.
    emu.put({"other/x": {"n": {"integerValue": "9"}}}, project="d1")
    r = run(lb, emu, "--json", "restore", "firestore", "--project", "d1", "--snapshot", first["short_id"],
            "--collection", "orders", "--replace")
    assert json.loads(r.stdout)["checks"][0]["ok"]
    assert "other/x" in db_state(emu, "d1")


def test_faults_are_retried_or_fail_cleanly_and_nothing_half_written_is_committed(lb, emu):
    emu.put({f"f/{i}": {"i": {"integerValue": str(i)}} for i in range(300)}, project="e1")
    proxy = peers.FaultyHttpProxy(emu.port, [("POST", ":runQuery", "503", 2), ("POST", ":runQuery", "429", 2)])
    try:
        env = {"FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{proxy.port}"}
        out = json.loads(run(lb, emu, "--json", "backup", "firestore", "--project", "e1", env=env).stdout)
        assert out["metadata"]["documents"] == 300
        assert len([h for h in proxy.hits if h[2] in ("503", "429")]) == 4
        proxy.rules = [["POST", ":batchWrite", "503", 3]]
        run(lb, emu, "restore", "firestore", "--project", "e1", "--to-project", "e1r", env=env)
        assert len(db_state(emu, "e1r")) == 300

        before = len(lb.json("snapshots"))
        for rules in ([["POST", ":runQuery", "cut", None]], [["POST", ":runQuery", "403", None]],
                      [["POST", ":runQuery", "garble", None]]):
            proxy.rules = rules
            r = run(lb, emu, "backup", "firestore", "--project", "e1", env=env, check=False)
            assert r.returncode != 0 and "error" in r.stderr, r.stderr
            assert "e1" in r.stderr
        assert len(lb.json("snapshots")) == before
        # A write the server refuses names the document.
        proxy.rules = [["POST", ":batchWrite", "400", None]]
        r = run(lb, emu, "restore", "firestore", "--project", "e1", "--to-project", "e1x", env=env, check=False)
        assert r.returncode != 0 and "HTTP 400" in r.stderr, r.stderr
    finally:
        proxy.close()
    lb.run("check")


def test_a_backup_that_outlasts_the_read_window_commits_nothing_and_says_what_to_do(lb, emu):
    emu.put({f"w/{i}": {"i": {"integerValue": str(i)}} for i in range(1500)}, project="w1")
    proxy = peers.FaultyHttpProxy(emu.port, [("POST", ":runQuery", lambda: time.sleep(1.2), None)])
    try:
        env = {"FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{proxy.port}"}
        r = run(lb, emu, "backup", "firestore", "--project", "w1", "--read-window", "2s", env=env, check=False)
    finally:
        proxy.close()
    assert r.returncode != 0
    assert "read window" in r.stderr and "point-in-time recovery" in r.stderr and "--collection" in r.stderr, r.stderr
    assert lb.json("snapshots") == []


PLAN = """
version: 1
repositories:
  main: {{url: "{repo}"}}
sources:
  app-db:
    kind: firestore
    project: g1
    validation: [counts, hashes]
    retention: {{daily: 30}}
    environments:
      test: {{to_project: g1-drill, replace: true}}
drills: {{environment: test{hook}}}
"""

TAMPER = r'''
import json, os, urllib.request
if os.environ["LIFEBOAT_SOURCE"] == "app-db":
    host = os.environ["FIRESTORE_EMULATOR_HOST"]
    body = json.dumps({"writes": [{"update": {"name": "projects/g1-drill/databases/(default)/documents/users/u1",
                                               "fields": {"n": {"integerValue": "-1"}}}}]}).encode()
    req = urllib.request.Request(f"http://{host}/v1/projects/g1-drill/databases/(default)/documents:commit", data=body,
                                 headers={"Content-Type": "application/json", "Authorization": "Bearer owner"})
    urllib.request.urlopen(req).read()
'''


def test_plan_backup_and_drill_read_the_database_back(lb, emu, tmp_path):
    emu.put({f"users/u{i}": {"n": {"integerValue": str(i)}} for i in range(40)}, project="g1")
    emu.put({"users/stale": {"n": {"integerValue": "0"}}}, project="g1-drill")
    plan = tmp_path / "lifeboat.yaml"
    plan.write_text(PLAN.format(repo=lb.repo, hook=""))
    env = dict(emu.env(), LIFEBOAT_PLAN=str(plan))
    lb.run("plan", "check", env=env)
    out = json.loads(lb.run("--json", "backup", env=env).stdout)
    assert out["failed"] == 0, out
    r = lb.run("drill", "--environment", "test", env=env)
    assert "passed" in r.stdout.lower(), r.stdout
    assert "users/stale" not in db_state(emu, "g1-drill")  # replace: true

    hook = tmp_path / "tamper.py"
    hook.write_text(TAMPER)
    plan.write_text(PLAN.format(repo=lb.repo, hook=f', after_restore: "{sys.executable} {hook}"'))
    r = lb.run("--json", "drill", "--environment", "test", env=env, check=False)
    assert r.returncode == 1
    text = r.stdout + r.stderr
    assert "hashes" in text and "users" in text, text


def test_to_dir_writes_a_managed_export_that_the_emulators_import_loads(lb, emu, tmp_path):
    """The plan's runbook (`gcloud firestore import DIR`) works on Lifeboat's output: the emulator's import
    (the managed-export reader) loads it, and the documents equal the backup's."""
    rnd = random.Random(9)
    docs = {"users/alice": EVERY_TYPE, "users/alice/orders/o1/items/i1": {"sku": {"stringValue": "A-1"}},
            "ghosts/nobody/letters/l1": {"to": {"stringValue": "no parent"}},
            "big/one": {"text": {"stringValue": "x" * 100_000}}}  # one record across four 32 KiB log blocks
    docs.update({f"many/{rid(rnd)}": {"i": {"integerValue": str(i)}} for i in range(5200)})  # two output files
    emu.put(docs, project="x1")
    run(lb, emu, "backup", "firestore", "--project", "x1")
    out = tmp_path / "2026-11-20"
    r = run(lb, emu, "restore", "firestore", "--project", "x1", "--to-dir", out)
    assert "gcloud firestore import" in r.stdout, r.stdout
    meta = out / "2026-11-20.overall_export_metadata"
    assert meta.is_file() and (out / "all_namespaces/all_kinds/output-1").is_file()
    st, body = emu.call("POST", "/emulator/v1/projects/x1i:import",
                        {"database": "projects/x1i/databases/(default)", "export_directory": str(meta)})
    assert st == 200, body
    want = {n: canon(f) for n, f in emu.documents("x1").items()}
    deadline = time.time() + 60
    while time.time() < deadline:  # the import finishes a moment after it answers
        got = {n: canon(f) for n, f in emu.documents("x1i").items()}
        if len(got) == len(want):
            break
        time.sleep(0.5)
    assert got == want
    # A directory that is not empty is refused.
    r = run(lb, emu, "restore", "firestore", "--project", "x1", "--to-dir", out, check=False)
    assert r.returncode != 0 and "not empty" in r.stderr


def test_an_instant_before_the_databases_history_is_never_restored_as_empty(lb, emu):
    """The emulator answers reads before it started with an empty database; Lifeboat does not take that
    for a state to restore (with --replace it would delete everything): it looks for a backup instead."""
    emu.put({f"keep/{i}": {"i": {"integerValue": str(i)}} for i in range(5)}, project="h1")
    two_days_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 2 * 86400))
    r = run(lb, emu, "restore", "firestore", "--project", "h1", "--at", two_days_ago, "--replace", check=False)
    assert r.returncode != 0 and "no Firestore backup" in r.stderr, r.stdout + r.stderr
    assert len(db_state(emu, "h1")) == 5


def test_partitions_from_the_server_split_the_backup(lb, emu):
    """The real service answers partitionQuery (the emulator does not): its cut points become the ranges."""
    emu.put({f"users/{c}{i}": {"i": {"integerValue": str(i)}} for c in "agmt" for i in range(30)}, project="q1")
    root = ROOT.format(p="q1", d="(default)")
    cuts = {"partitions": [{"values": [{"referenceValue": f"{root}/users/g0"}]},
                           {"values": [{"referenceValue": f"{root}/users/t0"}]}]}
    proxy = peers.FaultyHttpProxy(emu.port, [("POST", ":partitionQuery", lambda: (200, cuts), None)])
    try:
        out = json.loads(run(lb, emu, "--json", "backup", "firestore", "--project", "q1",
                             env={"FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{proxy.port}"}).stdout)
    finally:
        proxy.close()
    assert [h for h in proxy.hits if ":partitionQuery" in h[1]]
    assert out["metadata"]["ranges"] == 3 and out["metadata"]["documents"] == 120, out["metadata"]
    run(lb, emu, "restore", "firestore", "--project", "q1", "--to-project", "q1r")
    assert db_state(emu, "q1r") == db_state(emu, "q1")


def test_a_write_the_server_refuses_names_its_document(lb, emu):
    """The server refuses a whole batch for one document over 1 MiB; the restore names that document."""
    emu.put({f"big/d{i:03d}": {"s": {"stringValue": "fits"}} for i in range(300)}, project="m1")
    run(lb, emu, "backup", "firestore", "--project", "m1")
    too_big = {"error": {"code": 400, "status": "INVALID_ARGUMENT",
                         "message": 'The value of property "s" is longer than 1048487 bytes.'}}
    proxy = peers.FaultyHttpProxy(emu.port, [("POST", ":batchWrite", lambda body: (400, too_big) if b"big/d123" in body else None,
                                              None)])
    try:
        r = run(lb, emu, "restore", "firestore", "--project", "m1", "--to-project", "m1r", check=False,
                env={"FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{proxy.port}"})
    finally:
        proxy.close()
    assert r.returncode != 0
    assert "document big/d123" in r.stderr and "longer than 1048487 bytes" in r.stderr, r.stderr


LIVE_PLAN = """
repositories:
  main: {{url: {repo}}}
sources:
  live-db:
    kind: firestore
    project: v1
    live_history: true
    environments:
      test: {{to_project: v1-drill, replace: true}}
"""


def test_a_plan_restore_reads_the_live_version_history_when_the_plan_says_so(lb, emu, tmp_path):
    """The choice between the database's own version history and a backup lives in the kind, so a plan
    restore (and a drill) reaches it: with live_history, an instant no backup holds comes from the server."""
    emu.put({"orders/a": {"n": {"integerValue": "1"}}}, project="v1")
    plan = tmp_path / "lifeboat.yaml"
    plan.write_text(LIVE_PLAN.format(repo=lb.repo))
    env = dict(emu.env(), LIFEBOAT_PLAN=str(plan))
    assert json.loads(lb.run("--json", "backup", env=env).stdout)["failed"] == 0
    time.sleep(1.1)
    instant = emu.put({"orders/b": {"n": {"integerValue": "2"}}}, project="v1")
    want = db_state(emu, "v1", read_time=instant)
    time.sleep(1.1)
    emu.put({"orders/c": {"n": {"integerValue": "3"}}}, project="v1")
    out = lb.json("restore", "live-db", "--environment", "test", "--at", instant, env=env)
    text = json.dumps(out)
    assert '"from": "live"' in text, text
    assert db_state(emu, "v1-drill") == want and "orders/b" in want and "orders/c" not in want
    # Without live_history the same request takes the newest backup before the instant.
    plan.write_text(LIVE_PLAN.format(repo=lb.repo).replace("    live_history: true\n", ""))
    out = lb.json("restore", "live-db", "--environment", "test", "--at", instant, env=env)
    assert '"from": "backup"' in json.dumps(out), out
    assert "orders/b" not in db_state(emu, "v1-drill")


def test_a_document_outside_the_database_stops_the_backup_naming_it(lb, emu):
    """A server (or something between) answering a query with a document of another database: the
    backup is not ours to complete. It fails naming the document, and commits nothing."""
    emu.put({"o/1": {"n": {"integerValue": "1"}}}, project="out1")
    stranger = [{"document": {"name": "projects/elsewhere/databases/(default)/documents/o/1",
                              "fields": {"n": {"integerValue": "1"}}, "createTime": "2026-12-01T00:00:00Z",
                              "updateTime": "2026-12-01T00:00:00Z"}, "readTime": "2026-12-01T00:00:00Z"}]
    proxy = peers.FaultyHttpProxy(emu.port, [("POST", ":runQuery", lambda: (200, json.dumps(stranger).encode()), None)])
    try:
        before = len(lb.json("snapshots"))
        r = run(lb, emu, "backup", "firestore", "--project", "out1", check=False,
                env={"FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{proxy.port}"})
        assert r.returncode == 1, r.stdout + r.stderr
        assert "outside" in r.stderr and "projects/elsewhere" in r.stderr, r.stderr
        assert len(lb.json("snapshots")) == before
    finally:
        proxy.close()


def test_an_append_key_backs_up_a_database_and_an_admin_restores_it(lb, emu, tmp_path):
    """An append key backs a database up (twice: the second stores only what changed); it is refused
    the restore; an admin restores it, and the checks read the restored database."""
    from conftest import Lifeboat
    lb.run("key", "add", "--role", "append", "--kdf-memory-kib", "1024", "--kdf-iterations", "1",
           env={"LIFEBOAT_NEW_PASSWORD": "append pw"})
    app = Lifeboat(lb.repo, "append pw")
    app.env["LIFEBOAT_CACHE_DIR"] = str(tmp_path / "cache")
    emu.put({f"orders/o{i}": {"n": {"integerValue": str(i)}, "pad": {"stringValue": "x" * 2000}} for i in range(300)},
            project="ap1")
    first = run(app, emu, "backup", "firestore", "--project", "ap1")
    assert "Check hashes: skipped — not read back: an append key" in first.stdout, first.stdout
    emu.put({"orders/o7": {"n": {"integerValue": "700"}}}, project="ap1")
    second = json.loads(run(app, emu, "--json", "backup", "firestore", "--project", "ap1").stdout)
    assert second["summary"]["data_added_bytes"] < 20000, second["summary"]
    before = db_state(emu, "ap1")
    p = run(app, emu, "restore", "firestore", "--project", "ap1", "--to-project", "ap1r", check=False)
    assert p.returncode == 13 and "append key" in p.stderr, p.stderr
    r = run(lb, emu, "restore", "firestore", "--project", "ap1", "--to-project", "ap1r")
    assert "check counts: ok" in r.stdout and "check hashes: ok" in r.stdout, r.stdout
    assert db_state(emu, "ap1r") == before
