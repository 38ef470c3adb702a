"""Drills prove what the restored target holds: a target tampered with after the restore fails its
checks (files and MongoDB, into a server and into a directory); drills with no restorable point, an
unopenable repository or missed objectives fail and say why; the daemon's /metrics derives no key
after the first scrape; plan retention forgets oplog slices with the full backup they extend."""
import json
import re
import sys
import time
import urllib.request

import peers
from test_mongodb import raw_docs, wait_slices

TAMPER = r'''
import os, sys
src = os.environ["LIFEBOAT_SOURCE"]
if src == "assets":
    root = sys.argv[1]
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            if f == "model-1.bin":
                open(p, "ab").write(b"x")       # content changed
            if f == "model-2.bin":
                os.remove(p)                   # file gone
if src == "eyewear-mongo":
    import pymongo
    c = pymongo.MongoClient(sys.argv[2])
    c.eyewear_ml_test.frames.delete_one({"_id": 3})
    c.eyewear_ml_test.frames.update_one({"_id": 4}, {"$set": {"price": -1}})
'''


def first_json(stdout):
    """--json prints the result, then (on failure) an error line: the result is the first document."""
    return json.loads(stdout.splitlines()[0])


def plan_text(extra=""):
    return """
version: 1
objectives: {rpo: 1h, rto: 4h}
repositories:
  main: {url: "${REPO}"}
sources:
  eyewear-mongo:
    kind: mongodb
    uri: ${MONGO_URI}
    databases: [eyewear_ml]
    validation: [counts, hashes]
    environments:
      test: {rename: {eyewear_ml: eyewear_ml_test}}
      dir: {to_dir: "${DUMP_DIR}"}
  assets:
    kind: files
    paths: ["${ASSETS}"]
    validation: [hashes, counts]
    environments:
      test: {target: "${DRILL_DIR}"}
""" + extra


def setup(lb, tmp_path, mongo, extra=""):
    assets = tmp_path / "assets"
    assets.mkdir()
    for i in range(8):
        (assets / f"model-{i}.bin").write_bytes(bytes([i]) * (500 + i * 3000))
    (assets / "hard-link.bin").hardlink_to(assets / "model-5.bin")
    plan = tmp_path / "lifeboat.yaml"
    plan.write_text(plan_text(extra))
    lb.env.update(REPO=str(lb.repo), MONGO_URI=mongo.uri, ASSETS=str(assets), DRILL_DIR=str(tmp_path / "drill"),
                  DUMP_DIR=str(tmp_path / "dump"), LIFEBOAT_PLAN=str(plan))
    c = mongo.client()
    c.eyewear_ml.frames.insert_many([{"_id": i, "model": f"m{i}", "price": i * 10} for i in range(300)])
    c.eyewear_ml.lenses.insert_many([{"_id": i, "kind": "progressive"} for i in range(40)])
    return plan, c


def checks_of(drill):
    return {(s["source"], ch["check"]): ch for s in drill["sources"] for ch in s["result"]["checks"]}


def test_drill_fails_when_the_restored_target_is_tampered_with(lb, tmp_path):
    with peers.FerretDB(tmp_path / "ferretdb") as mongo:
        plan, c = setup(lb, tmp_path, mongo)
        lb.run("backup")
        # A follower adds slices after the full backup, so the prediction includes replayed entries.
        follower = lb.popen("--json", "mongodb", "follow", "--uri", mongo.uri, "--name", "eyewear-mongo", "--interval", "1s")
        c.eyewear_ml.frames.update_one({"_id": 7}, {"$set": {"price": 7777}})
        c.eyewear_ml.frames.delete_one({"_id": 8})
        c.eyewear_ml.frames.insert_one({"_id": 1000, "model": "new"})
        # Every change captured: the slices hold the three entries (however many slices it takes).
        deadline = time.time() + 30
        while sum(x["summary"].get("entries", 0) for x in wait_slices(lb, 1)) < 3:
            assert time.time() < deadline, "the follower did not capture the three changes"
            time.sleep(0.2)
        follower.terminate()
        follower.communicate(timeout=30)

        # Untouched: every check passes, and reads the target, hard link included.
        good = lb.json("drill")
        assert good["passed"], good
        got = checks_of(good)
        assert all(ch["ok"] for ch in got.values()) and len(got) == 4
        assert "9 of 9 files read back" in got[("assets", "hashes")]["detail"]
        assert "read back from" in got[("eyewear-mongo", "counts")]["detail"]
        assert c.eyewear_ml_test.frames.count_documents({}) == 300
        assert c.eyewear_ml_test.frames.find_one({"_id": 7})["price"] == 7777

        # Tampered between restore and validation: each check fails, the drill fails and says why.
        hook = tmp_path / "tamper.py"
        hook.write_text(TAMPER)
        plan.write_text(plan_text(f'drills: {{after_restore: "{sys.executable} {hook} {tmp_path / "drill"} {mongo.uri}"}}\n'))
        p = lb.run("--json", "drill", check=False)
        assert p.returncode == 1
        bad = first_json(p.stdout)
        assert not bad["passed"]
        got = checks_of(bad)
        assert not any(ch["ok"] for ch in got.values()), got
        assert "7 of 9 files" in got[("assets", "hashes")]["detail"]
        assert "file missing" in got[("assets", "counts")]["detail"]
        assert "eyewear_ml_test.frames holds 299 documents, 300 expected" in got[("eyewear-mongo", "counts")]["detail"]
        assert "eyewear_ml_test.frames: content hash" in got[("eyewear-mongo", "hashes")]["detail"]
        assert any("check hashes failed" in x for x in bad["failures"])
        stored = [s for s in lb.json("snapshots") if s["source"] == "drill"]
        assert len(stored) == 2 and stored[-1]["metadata"]["passed"] is False
        report = lb.json("report")
        assert report["drills"][-1]["passed"] is False and "the last drill failed" in report["warnings"]

        # Into a directory (mongorestore layout): the same checks read the files back.
        r = lb.json("restore", "eyewear-mongo", "--environment", "dir")
        assert r["failed"] == 0 and all(ch["ok"] for ch in r["restores"][0]["result"]["checks"])
        frames = tmp_path / "dump" / "eyewear_ml" / "frames.bson"
        data = frames.read_bytes()
        first_len = int.from_bytes(data[:4], "little")
        plan.write_text(plan_text(f'drills: {{after_restore: "{sys.executable} -c \\"import pathlib; p=pathlib.Path(\'{frames}\'); p.write_bytes(p.read_bytes()[{first_len}:])\\""}}\n'))
        p = lb.run("--json", "drill", "eyewear-mongo", "--environment", "dir", check=False)
        assert p.returncode == 1
        got = checks_of(first_json(p.stdout))
        assert "eyewear_ml.frames holds 299 documents, 300 expected" in got[("eyewear-mongo", "counts")]["detail"]
        assert not got[("eyewear-mongo", "hashes")]["ok"]


def test_drills_with_no_point_unopenable_repository_or_missed_objectives_fail(lb, tmp_path):
    with peers.FerretDB(tmp_path / "ferretdb") as mongo:
        plan, c = setup(lb, tmp_path, mongo)
        lb.run("backup", "assets")  # MongoDB never backed up
        p = lb.run("--json", "drill", check=False)
        assert p.returncode == 1
        d = first_json(p.stdout)
        assert not d["passed"] and not d["rpo_met"]
        assert "eyewear-mongo: no restorable backup" in d["failures"]
        by = {s["source"]: s for s in d["sources"]}
        assert by["eyewear-mongo"]["rpo_ms"] is None and by["assets"]["ok"]
        stored = lambda: [s for s in lb.json("snapshots") if s["source"] == "drill"][-1]["metadata"]
        rec = stored()  # the record kept in the repository says the same
        assert (rec["passed"], rec["rpo_met"], rec["started_ns"]) == (False, False, d["started_ns"]), rec

        # Tiny objectives: every restore and check passes, but RPO and RTO are missed: the drill fails
        # with exit 4 (not 1), naming each objective and by how much; the record, report and metrics agree.
        lb.run("backup")
        time.sleep(1.2)  # the RPO objective is 1 s: the newest point must be older than that
        plan.write_text(plan_text().replace("rpo: 1h, rto: 4h", "rpo: 1s, rto: 0s"))
        p = lb.run("--json", "drill", check=False)
        assert p.returncode == 4, p.stderr
        d = first_json(p.stdout)
        assert not d["passed"] and d["checks_passed"] and not d["rpo_met"] and not d["rto_met"]
        missed = {(m["source"], m["objective"]): m for m in d["missed_objectives"]}
        for src in ("assets", "eyewear-mongo"):
            m = missed[(src, "rpo")]
            assert m["objective_ms"] == 1000 and m["measured_ms"] > 1000 and m["over_ms"] == m["measured_ms"] - 1000, m
        assert ("", "rto") in missed and missed[("", "rto")]["objective_ms"] == 0
        assert "the drill restored and checked every source but missed" in p.stdout + p.stderr, p.stdout + p.stderr
        rec = stored()
        assert (rec["passed"], rec["checks_passed"], rec["rpo_met"], rec["rto_met"], rec["started_ns"]) == \
            (False, True, False, False, d["started_ns"]), rec
        assert {(m["source"], m["objective"]) for m in rec["missed_objectives"]} == set(missed)
        text = lb.run("drill", check=False).stdout
        assert "## Missed objectives" in text and "assets: RPO" in text and "missed the objective 1.0s by" in text, text
        report = lb.json("report")
        assert any("the last drill failed: it missed its objectives" in w for w in report["warnings"]), report["warnings"]
        metrics = lb.run("metrics").stdout
        assert re.search(r'lifeboat_last_drill_objective_missed_seconds\{source="assets",objective="rpo"\} [0-9.]+', metrics), metrics

        # A source without validation fails the drill too (exit 4), unless the plan allows it by name.
        plan.write_text(plan_text().replace("    validation: [hashes, counts]\n", ""))
        p = lb.run("--json", "drill", check=False)
        assert p.returncode == 4, p.stderr
        d = first_json(p.stdout)
        assert [(m["source"], m["objective"]) for m in d["missed_objectives"]] == [("assets", "validation")], d
        plan.write_text(plan_text("drills: {allow_unvalidated: [assets]}\n").replace("    validation: [hashes, counts]\n", ""))
        d = lb.json("drill")
        assert d["passed"] and any("assets: no validation ran (allowed by drills.allow_unvalidated)" in x for x in d["deviations"])

        # A failed check with objectives missed as well: exit 1, the check named under failures.
        plan.write_text(plan_text('drills: {after_restore: "find ${DRILL_DIR} -name model-1.bin -delete"}\n')
                        .replace("rpo: 1h, rto: 4h", "rpo: 1s, rto: 0s"))
        p = lb.run("--json", "drill", "assets", check=False)
        assert p.returncode == 1, p.stderr
        d = first_json(p.stdout)
        assert not d["checks_passed"] and d["missed_objectives"], d

        # A repository that cannot be opened (wrong password): the drill fails and names it.
        p = lb.run("--json", "drill", check=False, env={"LIFEBOAT_PASSWORD": "wrong"})
        assert p.returncode == 1
        d = first_json(p.stdout)
        assert not d["passed"] and not d["rpo_met"]
        assert any("repository main cannot be opened" in x and "password" in x for x in d["failures"]), d["failures"]


def test_metrics_scraped_100_times_derive_the_key_once(lb, tmp_path):
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "a").write_text("a")
    plan = tmp_path / "lifeboat.yaml"
    plan.write_text(f'repositories: {{main: {{url: "{lb.repo}"}}}}\nsources:\n  assets: {{kind: files, paths: ["{assets}"]}}\n')
    lb.run("--plan", plan, "backup")
    port = peers.free_port()
    d = lb.popen("--plan", plan, "daemon", "--state-dir", tmp_path / "state", "--listen", f"127.0.0.1:{port}")
    try:
        deadline = time.time() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz").read()
                break
            except OSError:
                assert time.time() < deadline, "daemon did not listen"
                time.sleep(0.2)
        values = []
        for _ in range(100):
            m = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
            values.append(int(re.search(r"^lifeboat_key_derivations_total (\d+)$", m, re.M).group(1)))
        assert values == [1] * 100, values
        assert 'lifeboat_source_ok{source="assets"} 1' in m
    finally:
        d.terminate()
        d.communicate(timeout=60)


def test_plan_retention_forgets_slices_with_the_full_backup_they_extend(lb, tmp_path):
    with peers.FerretDB(tmp_path / "ferretdb") as mongo:
        plan, c = setup(lb, tmp_path, mongo)
        plan.write_text(plan.read_text().replace("    validation: [counts, hashes]\n", "    validation: [counts, hashes]\n    retention: {last: 1}\n", 1))

        def follow_some(change):
            f = lb.popen("--json", "mongodb", "follow", "--uri", mongo.uri, "--name", "eyewear-mongo", "--interval", "1s")
            before = len([s for s in lb.json("snapshots") if s["source"] == "mongodb-oplog"])
            change()
            wait_slices(lb, before + 1)
            f.terminate()
            f.communicate(timeout=30)

        lb.run("backup", "eyewear-mongo")
        follow_some(lambda: c.eyewear_ml.frames.insert_one({"_id": 5000}))
        slices = [s for s in lb.json("snapshots") if s["source"] == "mongodb-oplog"]
        assert slices and all("source:eyewear-mongo" in s["tags"] for s in slices)
        out = lb.json("backup", "eyewear-mongo")["backups"][0]["result"]["retention"]
        assert out["forgotten"] == 1 and out["dependents_forgotten"] == len(slices), out
        assert any(not e["keep"] and e["dependent"] and "which is forgotten" in e["reasons"][0] for e in out["explain"])
        assert not [s for s in lb.json("snapshots") if s["source"] == "mongodb-oplog"]

        # Slices after the kept full stay with it, and restores still reach the newest point.
        follow_some(lambda: c.eyewear_ml.frames.delete_one({"_id": 0}))
        out = lb.json("backup", "eyewear-mongo")["backups"][0]["result"]["retention"]
        assert out["forgotten"] == 1 and out["dependents_forgotten"] >= 1, out
        follow_some(lambda: c.eyewear_ml.frames.insert_one({"_id": 6000}))
        assert len([s for s in lb.json("snapshots") if s["source"] == "mongodb-oplog"]) >= 1
        r = lb.json("restore", "eyewear-mongo", "--environment", "test")
        assert r["failed"] == 0 and all(ch["ok"] for ch in r["restores"][0]["result"]["checks"])
        assert r["restores"][0]["result"]["details"]["slices"] >= 1
        assert raw_docs(c, "eyewear_ml_test", "frames") == raw_docs(c, "eyewear_ml", "frames")


def test_plan_backup_after_packs_vanished_stores_again_and_verifies_from_storage(lb, tmp_path):
    """Packs deleted behind the index's back: the next plan backup stores the data again, warns, and its
    verification (storage listing, not the index; verify_snapshot's unit tests show it failing) counts
    the new copies although the index files still also name the deleted packs. The snapshot restores."""
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "a.bin").write_bytes(b"a" * 50_000)
    plan = tmp_path / "lifeboat.yaml"
    plan.write_text(f'repositories: {{main: {{url: "{lb.repo}"}}}}\nsources:\n  assets: {{kind: files, paths: ["{assets}"]}}\n')
    first = lb.json("--plan", plan, "backup")
    assert first["failed"] == 0 and first["backups"][0]["result"]["verified"]["packs"] >= 1
    for pack in (lb.repo / "data").rglob("*"):
        if pack.is_file():
            pack.unlink()
    # Which copy of a blob an index lookup meets first depends on IDs: several backups, each after
    # the packs vanished again, so both orders occur.
    for n in range(4):
        p = lb.run("--plan", plan, "--json", "backup", check=False)
        assert p.returncode == 0, (p.stdout, p.stderr)
        out = first_json(p.stdout)
        assert out["failed"] == 0 and out["backups"][0]["result"]["verified"]["packs"] >= 1, out
        assert "repository is damaged" in p.stderr and "lifeboat check" in p.stderr, p.stderr
        target = tmp_path / f"r{n}"
        lb.run("restore", "latest", "--target", target)
        assert (target / str(assets).lstrip("/") / "a.bin").read_bytes() == b"a" * 50_000
        for pack in (lb.repo / "data").rglob("*"):
            if pack.is_file():
                pack.unlink()
