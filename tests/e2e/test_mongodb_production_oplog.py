"""MongoDB as production writes it, replayed exactly (issue 31), against FerretDB.

FerretDB never logs transactions, renames or index builds, but its local.oplog.rs is an ordinary capped
collection: entries in MongoDB's own shape (applyOps with lsid/txnNumber/prevOpTime, partialTxn
chains, prepared transactions with commitTransaction/abortTransaction, renameCollection,
createIndexes, dropIndexes, a command no version knows) are inserted into it while a follower runs, and the
follower captures them like any other. Every expected state is written here from the entries this
test wrote, never computed by Lifeboat's replay code."""
import datetime
import json
import subprocess
import sys
import time
import uuid

import bson
from bson import Binary, Timestamp

import peers
from conftest import LIFEBOAT
from test_mongodb_pitr import Follower, mongo, settle_to_next_second, target, utc  # noqa: F401 (fixtures)

BASE = {i: {"_id": i, "qty": i} for i in range(1, 11)}
LOGS = {i: {"_id": i, "line": f"l{i}"} for i in range(1, 4)}


def lsid(n):
    return {"id": Binary(uuid.UUID(int=n).bytes, 4), "uid": Binary(bytes(32), 0)}


class OplogWriter:
    """Writes entries in MongoDB's shapes into FerretDB's oplog, each in the current second, after
    every entry the server itself logged in it (ordinals from 1000 on)."""

    def __init__(self, client):
        self.oplog = client.local["oplog.rs"]
        self.i = 1000

    def write(self, entry):
        now = time.time()
        entry = dict(entry, ts=Timestamp(int(now), self.i), t=1, v=2,
                     wall=datetime.datetime.fromtimestamp(now, datetime.timezone.utc))
        self.i += 1
        self.oplog.insert_one(entry)
        return entry["ts"]

    def txn(self, session, number, ops, **o_extra):
        prev = {"ts": Timestamp(0, 0), "t": -1}
        return self.write({"op": "c", "ns": "admin.$cmd", "lsid": lsid(session), "txnNumber": number,
                           "prevOpTime": prev, "o": dict({"applyOps": ops}, **o_extra)})


def ins(doc, ns="shop.orders"):
    return {"op": "i", "ns": ns, "ui": Binary(uuid.UUID(int=7).bytes, 4), "o": doc}


def dele(_id, ns="shop.orders"):
    return {"op": "d", "ns": ns, "o": {"_id": _id}}


def docs_of(client, db, coll):
    return {d["_id"]: d for d in client[db][coll].find()}


def dir_docs(path):
    return {d["_id"]: d for d in bson.decode_all(path.read_bytes())} if path.exists() else {}


def test_transactions_renames_and_index_builds_replay_exactly_and_unknown_entries_stop_it(lb, mongo, target, tmp_path):
    c = mongo.client()
    c.shop.orders.insert_many(list(BASE.values()))
    c.shop.logs.insert_many(list(LOGS.values()))
    c.shop.orders.create_index("qty", name="qty_1")  # in the full backup; dropped by an entry below
    lb.run("backup", "mongodb", "--uri", mongo.uri)
    w = OplogWriter(c)
    f = Follower(lb, mongo.uri, interval="2s")
    try:
        settle_to_next_second()
        c.shop.orders.insert_one({"_id": 11, "qty": 11})  # a real entry first
        settle_to_next_second()
        s_txn = w.txn(1, 1, [ins({"_id": 100, "qty": 100}), dele(2)]).time
        settle_to_next_second()
        s_partial = w.txn(2, 1, [ins({"_id": 201, "qty": 1})], partialTxn=True).time
        w.txn(2, 1, [ins({"_id": 202, "qty": 2})], partialTxn=True)
        settle_to_next_second()
        s_chain_end = w.txn(2, 1, [ins({"_id": 203, "qty": 3}), dele(3)], count=3).time
        w.txn(3, 5, [ins({"_id": 300, "qty": 300})], prepare=True)
        w.txn(4, 9, [ins({"_id": 400, "qty": 400})], prepare=True)
        settle_to_next_second()
        commit_ts = Timestamp(int(time.time()), 999)
        s_commit = w.write({"op": "c", "ns": "admin.$cmd", "lsid": lsid(3), "txnNumber": 5,
                            "o": {"commitTransaction": 1, "commitTimestamp": commit_ts}}).time
        w.write({"op": "c", "ns": "admin.$cmd", "lsid": lsid(4), "txnNumber": 9, "o": {"abortTransaction": 1}})
        w.write({"op": "c", "ns": "shop.$cmd", "o": {"renameCollection": "shop.logs", "to": "shop.logs_v2",
                                                      "stayTemp": False, "dropTarget": False}})
        w.write({"op": "c", "ns": "shop.$cmd", "o": {"createIndexes": "orders", "v": 2, "key": {"sku": 1},
                                                      "name": "sku_1"}})
        w.write({"op": "c", "ns": "shop.$cmd", "o": {"dropIndexes": "orders", "index": "qty_1"},
                 "o2": {"v": 2, "key": {"qty": 1}, "name": "qty_1"}})
        settle_to_next_second()
        s_unknown = w.write({"op": "c", "ns": "shop.$cmd", "o": {"futureCommand": "orders", "level": 3}}).time
        settle_to_next_second()
        c.shop.orders.insert_one({"_id": 12, "qty": 12})
        s_last = int(time.time())
        settle_to_next_second()
        time.sleep(2.5)
    finally:
        rc, events, err = f.stop()
    assert rc == 0, err
    captured = sum(e["entries"] for e in events if e["event"] == "slice")
    assert captured >= 13, events

    # Each state written out from the entries above.
    after_txn = {k: v for k, v in BASE.items() if k != 2}
    after_txn.update({11: {"_id": 11, "qty": 11}, 100: {"_id": 100, "qty": 100}})
    after_chain = {k: v for k, v in after_txn.items() if k != 3}
    after_chain.update({i: {"_id": i, "qty": i - 200} for i in (201, 202, 203)})
    after_commit = {**after_chain, 300: {"_id": 300, "qty": 300}}
    states = [(s_txn, after_txn, True), (s_partial, after_txn, True),  # the chain is open: nothing of it
              (s_chain_end, after_chain, True), (s_commit, after_commit, False)]
    for n, (second, want, logs_before_rename) in enumerate(states):
        into = f"r{n}"
        r = lb.json("restore", "mongodb", "--at", utc(second), "--uri", target.uri, "--db", "shop", "--to-db",
                    f"shop={into}", "--drop", "--check", "counts", "--check", "hashes")
        assert r["plan"]["proved"] is True and r["plan"]["lag_ms"] == 0, r["plan"]
        assert "stopped_before" not in r and r["warnings"] == 0
        assert all(k["ok"] for k in r["checks"]) and "read back from" in r["checks"][1]["detail"], r["checks"]
        t = target.client()
        assert docs_of(t, into, "orders") == want, f"server restore at {utc(second)}"
        dump = tmp_path / f"dump{n}"
        d = lb.json("restore", "mongodb", "--at", utc(second), "--to-dir", dump, "--db", "shop", "--check", "hashes")
        assert all(k["ok"] for k in d["checks"]), d["checks"]
        assert dir_docs(dump / "shop" / "orders.bson") == want, f"directory restore at {utc(second)}"
        meta = json.loads((dump / "shop" / "orders.metadata.json").read_text())
        index_names = [ix["name"] for ix in meta["indexes"]]
        if logs_before_rename:
            assert docs_of(t, into, "logs") == LOGS and "logs_v2" not in t[into].list_collection_names()
            assert dir_docs(dump / "shop" / "logs.bson") == LOGS and not (dump / "shop" / "logs_v2.bson").exists()
            assert "sku_1" not in index_names and "qty_1" in index_names
            assert "sku_1" not in t[into].orders.index_information() and "qty_1" in t[into].orders.index_information()
        else:
            assert docs_of(t, into, "logs_v2") == LOGS and "logs" not in t[into].list_collection_names()
            assert dir_docs(dump / "shop" / "logs_v2.bson") == LOGS and not (dump / "shop" / "logs.bson").exists()
            assert "sku_1" in index_names and "qty_1" not in index_names
            assert "sku_1" in t[into].orders.index_information() and "qty_1" not in t[into].orders.index_information()

    # After the unknown command: the restore stops before it, says which entry and why, and never
    # claims the requested instant; the target holds the state just before it.
    p = lb.run("restore", "mongodb", "--at", utc(s_last), "--uri", target.uri, "--db", "shop", "--to-db",
               "shop=stopped", "--drop", check=False)
    assert p.returncode == 3, p.stdout + p.stderr
    assert "futureCommand" in p.stdout and "exactly the requested instant" not in p.stdout, p.stdout
    assert f"ts {s_unknown}:" in p.stdout, p.stdout
    assert docs_of(target.client(), "stopped", "orders") == after_commit
    p = lb.run("--json", "restore", "mongodb", "--at", utc(s_last), "--to-dir", tmp_path / "dump_stopped", "--db", "shop",
               check=False)
    assert p.returncode == 3
    stopped = json.loads(p.stdout.splitlines()[0])
    assert "o.futureCommand" in stopped["stopped_before"] and stopped["plan"]["proved"] is False
    assert stopped["plan"]["point_ns"] < s_unknown * 1_000_000_000
    assert dir_docs(tmp_path / "dump_stopped" / "shop" / "orders.bson") == after_commit

    # --skip-unknown goes on, and says what it skipped.
    want = {**after_commit, 12: {"_id": 12, "qty": 12}}
    r = lb.json("restore", "mongodb", "--at", utc(s_last), "--uri", target.uri, "--db", "shop", "--to-db",
                "shop=skipped", "--drop", "--skip-unknown")
    assert r["skip_unknown"] is True and r["warnings"] == 1 and "futureCommand" in r["skipped"][0]
    assert docs_of(target.client(), "skipped", "orders") == want
    text = lb.run("restore", "mongodb", "--at", utc(s_last), "--to-dir", tmp_path / "dump_skipped", "--skip-unknown").stdout
    assert "--skip-unknown: 1 oplog entries" in text and "futureCommand" in text
    assert dir_docs(tmp_path / "dump_skipped" / "shop" / "orders.bson") == want


def test_an_instant_inside_a_second_is_cut_by_the_entries_wall_times(lb, mongo, target, tmp_path):
    c = mongo.client()
    c.shop.orders.insert_many([{"_id": i} for i in range(5)])
    lb.run("backup", "mongodb", "--uri", mongo.uri)
    f = Follower(lb, mongo.uri, interval="2s")
    try:
        settle_to_next_second()
        c.shop.orders.insert_one({"_id": "A"})
        time.sleep(0.05)
        at = time.time()
        time.sleep(0.3)
        c.shop.orders.delete_one({"_id": 1})  # the accidental delete, in the same second
        assert int(time.time()) == int(at), "the writes must share one second"
        settle_to_next_second()
        # A second with an entry that carries no wall time (as servers before 4.2 wrote them): it
        # cannot be split.
        no_wall = time.time()
        c.local["oplog.rs"].insert_one({"op": "i", "ns": "shop.orders", "o": {"_id": "B"}, "t": 1, "v": 2,
                                        "ts": Timestamp(int(no_wall), 1000)})
        settle_to_next_second()
        time.sleep(2.5)
    finally:
        rc, _, err = f.stop()
    assert rc == 0, err
    r = lb.json("restore", "mongodb", "--at", datetime.datetime.fromtimestamp(
        int(no_wall) + 0.5, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "--to-dir", tmp_path / "nowall",
        "--db", "shop")
    assert r["plan"]["proved"] is False and "carry no wall time" in r["plan"]["limit"], r["plan"]
    assert r["plan"]["point_ns"] == int(no_wall) * 1_000_000_000 - 1
    assert "B" not in dir_docs(tmp_path / "nowall" / "shop" / "orders.bson")
    stamp = datetime.datetime.fromtimestamp(at, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    want = {i: {"_id": i} for i in range(5)}
    want["A"] = {"_id": "A"}
    r = lb.json("restore", "mongodb", "--at", stamp, "--uri", target.uri, "--db", "shop", "--to-db", "shop=cut",
                "--drop", "--check", "hashes")
    assert docs_of(target.client(), "cut", "orders") == want, "the delete after the instant came back"
    assert r["plan"]["proved"] is True and "wall times" in r["plan"]["proof"], r["plan"]
    assert r["checks"][0]["ok"], r["checks"]
    d = lb.json("restore", "mongodb", "--at", stamp, "--to-dir", tmp_path / "cut", "--db", "shop")
    assert dir_docs(tmp_path / "cut" / "shop" / "orders.bson") == want
    assert d["plan"]["point_ns"] == r["plan"]["point_ns"]
    # The whole second, named without a fraction, holds the delete.
    whole = lb.json("restore", "mongodb", "--at", utc(int(at)), "--to-dir", tmp_path / "whole", "--db", "shop")
    assert 1 not in dir_docs(tmp_path / "whole" / "shop" / "orders.bson") and whole["plan"]["proved"]


TAMPER = r'''
import sys, pymongo
c = pymongo.MongoClient(sys.argv[1])
c.shop_drill.orders.update_one({"_id": 100}, {"$set": {"qty": -1}})
'''

PLAN = """
version: 1
objectives: {rpo: 1h, rto: 4h}
repositories:
  main: {url: "${REPO}"}
sources:
  shop:
    kind: mongodb
    uri: ${MONGO_URI}
    databases: [shop]
    validation: [counts, hashes]
    environments:
      test: {rename: {shop: shop_drill}}
"""


def test_drill_hashes_predict_transactions_and_fail_on_one_changed_field(lb, mongo, tmp_path):
    c = mongo.client()
    c.shop.orders.insert_many(list(BASE.values()))
    plan = tmp_path / "lifeboat.yaml"
    plan.write_text(PLAN)
    lb.env.update(REPO=str(lb.repo), MONGO_URI=mongo.uri, LIFEBOAT_PLAN=str(plan))
    lb.run("backup")
    w = OplogWriter(c)
    follower = lb.popen("--json", "mongodb", "follow", "--uri", mongo.uri, "--name", "shop", "--interval", "1s")
    try:
        settle_to_next_second()
        w.txn(1, 1, [ins({"_id": 100, "qty": 100}), dele(2), ins({"_id": 101, "qty": 101})])
        settle_to_next_second()
        w.write({"op": "c", "ns": "shop.$cmd", "o": {"futureCommand": "orders"}})
        settle_to_next_second()
        time.sleep(2.5)
    finally:
        follower.terminate()
        _, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err
    # The unknown entry fails the drill, named; skip_unknown in the plan goes past it and the drill
    # record says so.
    p = lb.run("--json", "drill", check=False)
    assert p.returncode != 0 and "futureCommand" in p.stdout + p.stderr, p.stdout + p.stderr
    plan.write_text(PLAN.replace("databases: [shop]", "databases: [shop]\n    skip_unknown: true"))
    good = lb.json("drill")
    assert good["passed"], good
    details = good["sources"][0]["result"]["details"]
    assert details["skip_unknown"] is True and details["unknown_entries_skipped"] == 1, details
    assert "futureCommand" in details["skipped"][0]
    checks = {ch["check"]: ch for s in good["sources"] for ch in s["result"]["checks"]}
    assert checks["hashes"]["ok"] and "read back from" in checks["hashes"]["detail"], checks
    assert mongo.client().shop_drill.orders.find_one({"_id": 100}) == {"_id": 100, "qty": 100}

    hook = tmp_path / "tamper.py"
    hook.write_text(TAMPER)
    plan.write_text(PLAN.replace("databases: [shop]", "databases: [shop]\n    skip_unknown: true") +
                    f'drills: {{after_restore: "{sys.executable} {hook} {mongo.uri}"}}\n')
    p = lb.run("--json", "drill", check=False)
    assert p.returncode == 1
    bad = json.loads(p.stdout.splitlines()[0])
    checks = {ch["check"]: ch for s in bad["sources"] for ch in s["result"]["checks"]}
    assert checks["counts"]["ok"] and not checks["hashes"]["ok"], checks
    assert "shop_drill.orders: content hash" in checks["hashes"]["detail"]


def apply_diff(doc, diff):
    """The test's own reading of the $v:2 shapes bench/synth_oplog.cpp writes (u in place, i moved to
    the end, d removed, s<field> array diffs with u<index>), written from MongoDB's format, not ours."""
    out = {k: v for k, v in doc.items() if k not in diff.get("d", {}) and k not in diff.get("i", {})}
    for k, v in diff.get("u", {}).items():
        out[k] = v
    for k, v in diff.get("i", {}).items():
        out[k] = v
    for k, sub in diff.items():
        if k.startswith("s") and k[1:] in out:
            assert sub.get("a") is True and set(sub) - {"a"} <= {f"u{i}" for i in range(100)}, sub
            arr = list(out[k[1:]])
            for key, v in sub.items():
                if key != "a":
                    arr[int(key[1:])] = v
            out[k[1:]] = arr
    return out


def test_delta_updates_and_transactions_replay_into_a_server_and_a_directory(lb, mongo, target, tmp_path):
    """FerretDB cannot log $v:2 entries, so bench/synth_oplog.cpp appends them to the repository after
    a real full backup; the expected state is computed here from the entries it wrote."""
    c = mongo.client()
    docs = {i: {"_id": i, "sku": f"SKU-{i:08d}", "price": i / 10, "qty": i % 17, "tags": ["frame", "case"],
                "active": True} for i in range(300)}
    c.bench.items.insert_many([dict(d) for d in docs.values()])
    lb.run("backup", "mongodb", "--uri", mongo.uri, "--db", "bench", "--name", "bench")
    oplog_out = tmp_path / "synth.bson"
    synth = subprocess.run([str(LIFEBOAT.parent / "synth_oplog"), str(lb.repo), "bench", "300", "900", "30", "6",
                            str(oplog_out)], env=lb.env, capture_output=True, text=True)
    assert synth.returncode == 0, synth.stderr
    want = {k: dict(v) for k, v in docs.items()}
    changes = 0
    for e in bson.decode_all(oplog_out.read_bytes()):
        ops = e["o"]["applyOps"] if e["op"] == "c" else [e]
        for op in ops:
            changes += 1
            if op["op"] == "i":
                want[op["o"]["_id"]] = op["o"]
            else:
                assert op["op"] == "u" and op["o"]["$v"] == 2
                want[op["o2"]["_id"]] = apply_diff(want[op["o2"]["_id"]], op["o"]["diff"])
    assert changes == json.loads(synth.stdout)["operations"] == 900 + 30 * 6

    r = lb.json("restore", "mongodb", "--name", "bench", "--uri", target.uri, "--to-db", "bench=replayed", "--drop",
                "--check", "counts", "--check", "hashes")
    assert r["oplog_entries_applied"] == changes and all(k["ok"] for k in r["checks"]), r
    got = {d["_id"]: d for d in target.client().replayed.items.find()}
    assert got == want
    assert all(list(got[k]) == list(want[k]) for k in want), "field order differs from the server's"
    d = lb.json("restore", "mongodb", "--name", "bench", "--to-dir", tmp_path / "dump", "--check", "hashes")
    assert all(k["ok"] for k in d["checks"]), d
    from_dir = dir_docs(tmp_path / "dump" / "bench" / "items.bson")
    assert from_dir == want and all(list(from_dir[k]) == list(want[k]) for k in want)
