"""The MongoDB source against a real FerretDB (with its oplog) and mongo-tools: round trips of every
BSON type FerretDB stores, point-in-time restores, a follower killed mid-slice, gaps, bad input."""
import datetime
import json
import re
import signal
import subprocess
import threading
import time
import uuid

import bson
import pytest
from bson import Binary, Int64, ObjectId, Regex, Timestamp
from bson.raw_bson import RawBSONDocument

import peers


@pytest.fixture
def mongo(tmp_path):
    with peers.FerretDB(tmp_path / "ferretdb") as server:
        yield server


def raw_docs(client, db, coll):
    """Every document's exact BSON bytes, keyed by _id: types and field order must survive."""
    c = client.get_database(db, codec_options=bson.CodecOptions(document_class=RawBSONDocument))[coll]
    return {bson.encode({"k": d["_id"]}): d.raw for d in c.find()}


def state(client, db):
    return {name: raw_docs(client, db, name) for name in sorted(client[db].list_collection_names())}


def every_type_doc(i):
    return {
        "_id": i,
        "double": 1.5 + i, "string": f"näme {i} ✓", "int32": i, "int64": Int64(2**40 + i),
        "bool": i % 2 == 0, "null": None, "date": datetime.datetime(2026, 11, 25, 12, 0, i % 60, 123000),
        "oid": ObjectId(), "binary": Binary(bytes(range(i % 256)) * 3), "uuid": Binary(uuid.uuid4().bytes, 4),
        "regex": Regex("^fr[a-z]+$", "i"), "ts": Timestamp(1700000000 + i, 1),
        "array": [1, "two", 3.0, {"four": 4}], "nested": {"a": {"b": {"c": [i, {"d": "deep"}]}}},
        "empty_doc": {}, "empty_array": [],
    }


def test_round_trip_every_type_many_collections_large_docs(lb, mongo, tmp_path):
    c = mongo.client()
    db = c.rt
    db.types.insert_many([every_type_doc(i) for i in range(300)])
    db.types.create_index([("string", 1)], name="by_string")
    db.types.create_index([("int32", -1), ("bool", 1)], name="compound", unique=True)
    db.large.insert_many([{"_id": i, "blob": Binary(bytes([i]) * (4 * 1024 * 1024)), "text": "x" * 1_000_000}
                          for i in range(3)])
    for n in range(25):
        db[f"c{n:02}"].insert_many([{"_id": ObjectId(), "n": n, "k": k} for k in range(n + 1)])
    c.other.things.insert_one({"_id": "only", "v": 1})
    before = state(c, "rt")

    out = lb.json("backup", "mongodb", "--uri", mongo.uri)
    cols = {x["name"]: x for x in out["collections"] if x["db"] == "rt"}
    assert len(cols) == 27 and cols["types"]["count"] == 300 and cols["large"]["count"] == 3
    assert re.fullmatch(r"[0-9a-f]{32}", cols["types"]["hash"])

    # Into a server under a new name: every document byte-identical, indexes back.
    r = lb.json("restore", "mongodb", "--uri", mongo.uri, "--db", "rt", "--to-db", "rt=rt_copy")
    assert r["documents"] == sum(x["count"] for x in cols.values())
    assert all(x["hash_ok"] for x in r["collections"])
    assert state(c, "rt_copy") == before
    ix = {i["name"]: i for i in c.rt_copy.types.list_indexes()}
    assert set(ix) == {"_id_", "by_string", "compound"} and ix["compound"].get("unique") is True
    assert "other" not in [x["db"] for x in r["collections"]]

    # Into a mongodump directory that mongorestore loads.
    dump = tmp_path / "dump"
    lb.run("restore", "mongodb", "--to-dir", dump)
    assert (dump / "rt" / "types.bson").exists() and (dump / "rt" / "types.metadata.json").exists()
    meta = json.loads((dump / "rt" / "types.metadata.json").read_text())
    assert meta["collectionName"] == "types" and len(meta["indexes"]) == 3
    p = subprocess.run([peers.mongo_tool("mongorestore"), "--uri", mongo.uri, "--noIndexRestore",
                        "--nsInclude", "rt.*", "--nsFrom", "rt.*", "--nsTo", "rt_mr.*", str(dump)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert state(c, "rt_mr") == before

    # And the other way round: what mongodump writes is exactly what we store.
    mdump = tmp_path / "mongodump"
    p = subprocess.run([peers.mongo_tool("mongodump"), "--uri", mongo.uri, "--db", "rt", "--out", str(mdump)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    for name in ("types", "large", "c07"):
        ours = bson.decode_all((dump / "rt" / f"{name}.bson").read_bytes())
        theirs = bson.decode_all((mdump / "rt" / f"{name}.bson").read_bytes())
        assert sorted(map(bson.encode, ours), key=bytes) == sorted(map(bson.encode, theirs), key=bytes)


def test_restore_without_drop_keeps_existing_and_reports_duplicates(lb, mongo):
    c = mongo.client()
    c.app.items.insert_many([{"_id": i, "v": i} for i in range(50)])
    lb.run("backup", "mongodb", "--uri", mongo.uri)
    c.app.items.update_one({"_id": 1}, {"$set": {"v": "changed"}})
    r = lb.json("restore", "mongodb", "--uri", mongo.uri)
    assert r["collections"][0]["duplicates"] == 50
    assert c.app.items.find_one({"_id": 1})["v"] == "changed"
    lb.run("restore", "mongodb", "--uri", mongo.uri, "--drop")
    assert c.app.items.find_one({"_id": 1})["v"] == 1


class Follower:
    """`mongodb follow --json`, its events read as they come."""

    def __init__(self, lb, uri, interval="1s"):
        self.proc = lb.popen("--json", "mongodb", "follow", "--uri", uri, "--interval", interval)
        self.events = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            if line.strip():
                self.events.append(json.loads(line))

    def wait_event(self, pred, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for e in list(self.events):
                if pred(e):
                    return e
            assert self.proc.poll() is None, "the follower exited"
            time.sleep(0.05)
        raise AssertionError(f"no such event after {timeout}s: {self.events[-5:]}")

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)
        self.reader.join(timeout=10)
        return self.proc.returncode, [e for e in self.events if e["event"] != "held"], self.proc.stderr.read()


def wait_slices(lb, n, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        s = [x for x in lb.json("snapshots") if x["source"] == "mongodb-oplog"]
        if len(s) >= n:
            return s
        time.sleep(0.3)
    raise AssertionError(f"fewer than {n} slices after {timeout}s")


def utc(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def settle_to_next_second():
    """Oplog times have one-second resolution: start the next step in a fresh second."""
    time.sleep(1.05 - (time.time() % 1.0))


def test_point_in_time_restore_exact_at_T_and_between_slices(lb, mongo):
    c = mongo.client()
    db = c.shop
    db.orders.insert_many([{"_id": i, "status": "new", "qty": i} for i in range(200)])
    lb.run("backup", "mongodb", "--uri", mongo.uri)
    f = Follower(lb, mongo.uri, interval="3s")
    try:
        settle_to_next_second()
        db.orders.insert_one({"_id": 1000, "status": "new", "qty": 7})
        db.orders.update_one({"_id": 5}, {"$set": {"status": "paid"}, "$unset": {"qty": ""}})
        db.orders.delete_one({"_id": 6})
        db.customers.insert_one({"_id": "c1", "name": "Ada"})  # a collection born after the full backup
        settle_to_next_second()
        t1 = int(time.time()) - 1
        at_t1 = state(c, "shop")
        settle_to_next_second()
        db.orders.update_one({"_id": 1000}, {"$set": {"status": "shipped"}})
        db.orders.delete_many({"_id": {"$lt": 20}})
        db.customers.update_one({"_id": "c1"}, {"$set": {"name": "Ada L."}})
        settle_to_next_second()
        t2 = int(time.time()) - 1   # falls inside the same 3 s slice as some of the writes after it
        at_t2 = state(c, "shop")
        settle_to_next_second()
        db.orders.insert_many([{"_id": 2000 + i} for i in range(10)])
        db.orders.update_one({"_id": 100}, {"$set": {"status": "late"}})
        final = state(c, "shop")
        time.sleep(3.5)
    finally:
        rc, events, err = f.stop()
    assert rc == 0, err
    slices = [e for e in events if e["event"] == "slice"]
    assert slices and all(s["gap"] is False for s in slices)

    for t, want, target in ((t1, at_t1, "pitr1"), (t2, at_t2, "pitr2")):
        r = lb.json("restore", "mongodb", "--at", utc(t), "--uri", mongo.uri, "--db", "shop",
                    "--to-db", f"shop={target}", "--drop")
        assert r["plan"]["lag_ms"] == 0, r["plan"]
        assert state(c, target) == want, f"state at {utc(t)} differs"
        d = lb.json("restore", "mongodb", "--at", utc(t), "--to-dir", lb.repo.parent / f"dir_{target}")
        got = {p: {bson.encode({"k": x["_id"]}): bson.encode(x) for x in bson.decode_all(
            (lb.repo.parent / f"dir_{target}" / "shop" / f"{p}.bson").read_bytes())} for p in want}
        assert got == want
        assert d["oplog_entries_applied"] == r["oplog_entries_applied"]
    r = lb.json("restore", "mongodb", "--uri", mongo.uri, "--db", "shop", "--to-db", "shop=latest", "--drop")
    assert state(c, "latest") == final


def oplog_count_after(client, ts):
    return client.local["oplog.rs"].count_documents({"ts": {"$gt": ts}})


def test_follower_killed_mid_slice_resumes_without_gap_or_double_apply(lb, mongo):
    c = mongo.client()
    c.app.counter.insert_one({"_id": "n", "v": 0})
    lb.run("backup", "mongodb", "--uri", mongo.uri)
    full = [s for s in lb.json("snapshots") if s["source"] == "mongodb"][0]
    start = full["metadata"]["oplog_start"]
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            c.app.log.insert_one({"_id": i})
            c.app.counter.update_one({"_id": "n"}, {"$set": {"v": i}})
            i += 1
            time.sleep(0.01)

    t = threading.Thread(target=writer)
    t.start()
    try:
        f = Follower(lb, mongo.uri, interval="2s")
        first = f.wait_event(lambda e: e["event"] == "slice")
        # Mid-slice: the follower reports entries read after that slice and not yet committed.
        held = f.wait_event(lambda e: e["event"] == "held" and e["entries"] > 0 and
                            (e["through"]["t"], e["through"]["i"]) > (first["to"]["t"], first["to"]["i"]))
        f.stop(signal.SIGKILL)
        assert oplog_count_after(c, Timestamp(first["to"]["t"], first["to"]["i"])) >= held["entries"]
        time.sleep(0.5)
        f = Follower(lb, mongo.uri, interval="2s")
        time.sleep(2.5)
    finally:
        stop.set()
        t.join()
    time.sleep(2.5)
    rc, _, err = f.stop()
    assert rc == 0, err
    slices = sorted((s["metadata"] for s in lb.json("snapshots") if s["source"] == "mongodb-oplog"),
                    key=lambda m: (m["from"]["t"], m["from"]["i"]))
    pos = (start["t"], start["i"])
    for m in slices:
        assert (m["from"]["t"], m["from"]["i"]) == pos, "slices must continue exactly where the last one ended"
        assert not m["gap"]
        pos = (m["to"]["t"], m["to"]["i"])
    assert sum(m["entries"] for m in slices) == oplog_count_after(c, Timestamp(start["t"], start["i"]))
    final = state(c, "app")
    lb.run("restore", "mongodb", "--uri", mongo.uri, "--db", "app", "--to-db", "app=copy", "--drop")
    assert state(c, "copy") == final


def test_a_second_follower_of_one_deployment_refuses(lb, mongo):
    """Two `mongodb follow` of one deployment into one repository would store every slice twice: the
    second refuses, naming the first (its lease), and exits 11; once the first stops, a new one starts."""
    c = mongo.client()
    lb.run("backup", "mongodb", "--uri", mongo.uri)
    f = Follower(lb, mongo.uri, interval="1s")
    try:
        c.app.lease.insert_one({"_id": 1})
        f.wait_event(lambda e: e["event"] in ("held", "slice"), timeout=30)  # it reads: it holds its lease
        second = lb.run("mongodb", "follow", "--uri", mongo.uri, "--interval", "1s", check=False, timeout=60)
        assert second.returncode == 11, second.stderr
        assert "mongodb-follow:" in second.stderr and "only one may hold it" in second.stderr, second.stderr
        assert f.proc.poll() is None, "the first follower must go on"
    finally:
        rc, _, err = f.stop()
    assert rc == 0, err
    again = Follower(lb, mongo.uri, interval="1s")
    c.app.lease.insert_one({"_id": 2})
    again.wait_event(lambda e: e["event"] in ("held", "slice"), timeout=30)
    rc, _, err = again.stop()
    assert rc == 0, err


def test_gap_is_reported_and_limits_restores(lb, mongo):
    c = mongo.client()
    c.app.x.insert_one({"_id": 1})
    lb.run("backup", "mongodb", "--uri", mongo.uri)
    f = Follower(lb, mongo.uri)
    c.app.x.insert_one({"_id": 2})
    wait_slices(lb, 1)
    f.stop()
    # The oplog rolls over while nobody follows it: its old entries are gone.
    c.local["oplog.rs"].drop()
    c.local.create_collection("oplog.rs", capped=True, size=1 << 20)
    settle_to_next_second()
    c.app.x.insert_one({"_id": 3})
    f = Follower(lb, mongo.uri)
    wait_slices(lb, 2)
    time.sleep(1.5)
    rc, events, err = f.stop()
    assert rc == 3, err
    assert "OPLOG GAP" in err and "take a new full backup" in err
    assert any(e["event"] == "slice" and e["gap"] for e in events)
    r = lb.json("restore", "mongodb", "--dry-run", "--at", utc(time.time()))
    assert "gap" in r["plan"]["limit"] and r["plan"]["lag_ms"] > 0
    # A new full backup after the gap makes the newest state restorable again.
    lb.run("backup", "mongodb", "--uri", mongo.uri)
    lb.run("restore", "mongodb", "--uri", mongo.uri, "--db", "app", "--to-db", "app=after", "--drop")
    assert sorted(d["_id"] for d in c.after.x.find()) == [1, 2, 3]


def test_bad_input_fails_cleanly_and_commits_nothing(lb, mongo):
    dead = f"mongodb://127.0.0.1:{peers.free_port()}/?serverSelectionTimeoutMS=1500"
    p = lb.run("backup", "mongodb", "--uri", dead, check=False)
    assert p.returncode == 1 and "unreachable" in p.stderr
    p = lb.run("backup", "mongodb", "--uri", "http://nope", check=False)
    assert p.returncode == 1 and "invalid MongoDB URI" in p.stderr
    c = mongo.client()
    c.big.docs.insert_many([{"_id": i, "pad": "p" * 2000} for i in range(3000)])
    p = lb.run("backup", "mongodb", "--uri", mongo.uri, "--db", "missing", check=False)
    assert p.returncode == 1 and "database missing not found" in p.stderr
    # The server goes away mid-stream: a proxy cuts the connection after 1 MB of replies.
    proxy = peers.CuttingProxy(mongo.port, cut_after=1 << 20)
    try:
        p = lb.run("backup", "mongodb", "--uri", f"mongodb://127.0.0.1:{proxy.port}/?socketTimeoutMS=5000",
                   check=False)
    finally:
        proxy.close()
    assert p.returncode == 1, p.stderr
    assert proxy.cuts >= 1, "the proxy must have forwarded 1 MB and then cut the connection"
    assert "connection to MongoDB lost" in p.stderr, p.stderr
    assert lb.json("snapshots") == []
    lb.run("check")
    p = lb.run("restore", "mongodb", "--uri", mongo.uri, check=False)
    assert p.returncode == 1 and "no MongoDB backups" in p.stderr
    lb.run("backup", "mongodb", "--uri", mongo.uri)  # and after all that, a clean backup works
    p = lb.run("restore", "mongodb", "--at", "2001-01-01", "--uri", mongo.uri, check=False)
    assert p.returncode == 1 and "no full backup" in p.stderr
    p = lb.run("restore", "mongodb", "--to-db", "nonsense", "--uri", mongo.uri, check=False)
    assert p.returncode == 1 and "OLD=NEW" in p.stderr


def test_an_append_key_backs_up_and_follows_and_an_admin_restores_to_the_instant(lb, mongo, tmp_path):
    """A backup host holding an append key takes the full backup and follows the oplog; it cannot read
    any of it back; an admin restores the instant between two writes exactly (docs/security.md)."""
    from conftest import Lifeboat
    lb.run("key", "add", "--role", "append", "--kdf-memory-kib", "1024",
           "--kdf-iterations", "1", env={"LIFEBOAT_NEW_PASSWORD": "append pw"})
    app = Lifeboat(lb.repo, "append pw")
    app.env["LIFEBOAT_CACHE_DIR"] = str(tmp_path / "cache")
    c = mongo.client()
    c.shop.orders.insert_many([{"_id": i, "status": "new"} for i in range(100)])
    app.run("backup", "mongodb", "--uri", mongo.uri)
    f = Follower(app, mongo.uri, interval="2s")
    try:
        settle_to_next_second()
        c.shop.orders.update_one({"_id": 5}, {"$set": {"status": "paid"}})
        c.shop.orders.insert_one({"_id": 500, "status": "new"})
        settle_to_next_second()
        t1 = int(time.time()) - 1
        at_t1 = state(c, "shop")
        settle_to_next_second()
        c.shop.orders.delete_many({"_id": {"$lt": 50}})
        time.sleep(3)
    finally:
        rc, events, err = f.stop()
    assert rc == 0, err
    assert [e for e in events if e["event"] == "slice"], events
    p = app.run("restore", "mongodb", "--uri", mongo.uri, "--to-db", "shop=nope", check=False)
    assert p.returncode == 13 and "append key" in p.stderr, p.stderr
    assert "nope" not in c.list_database_names()
    # The full backup and the slices are signed by the append key: an admin trusts them and restores T exactly.
    snaps = lb.json("snapshots")
    assert {s["source"] for s in snaps} == {"mongodb", "mongodb-oplog"} and all(s["trusted"] for s in snaps)
    r = lb.json("restore", "mongodb", "--at", utc(t1), "--uri", mongo.uri, "--db", "shop", "--to-db", "shop=pitr", "--drop")
    assert r["plan"]["lag_ms"] == 0, r["plan"]
    assert state(c, "pitr") == at_t1
