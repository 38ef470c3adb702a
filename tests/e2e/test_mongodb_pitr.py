"""Point-in-time restores of MongoDB are exact, or say exactly how far they got (FerretDB with its oplog).

Every expected state is computed independently of Lifeboat, from the server's own oplog: the state
right after the full backup, plus every logged change with a timestamp at or before T (FerretDB
logs an update as the whole new document). A restore that claims T must equal that state; one that
falls short must equal the state at the point it reports instead. The follower runs on its own
clock (plain, five minutes fast, five minutes slow): only the server's evidence may count."""
import datetime
import glob
import json
import os
import signal
import subprocess
import threading
import time

import bson
import pytest
from bson import Timestamp
from bson.raw_bson import RawBSONDocument

from conftest import LIFEBOAT

N_ORDERS = 1500


@pytest.fixture
def mongo(tmp_path):
    import peers
    with peers.FerretDB(tmp_path / "ferretdb") as server:
        yield server


@pytest.fixture
def target(tmp_path):
    """Another server to restore into (the source's oplog makes every write there slower)."""
    import peers
    with peers.FerretDB(tmp_path / "target", oplog_bytes=0) as server:
        yield server


def utc(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def settle_to_next_second():
    time.sleep(1.05 - (time.time() % 1.0))


def raw_state(client, db, coll):
    c = client.get_database(db, codec_options=bson.CodecOptions(document_class=RawBSONDocument))[coll]
    return {bson.encode({"k": d["_id"]}): d.raw for d in c.find()}


def oplog_after(client, ts):
    """The server's own log of changes after `ts`, in order."""
    return list(client.local["oplog.rs"].find({"ts": {"$gt": ts}}).sort("$natural", 1))


def expected_at(base, entries, ns, t_s):
    """`base` (the collection right after the full backup) with every entry of `ns` whose ts.t <= t_s applied."""
    state = dict(base)
    for e in entries:
        if e["ts"].time > t_s:
            break
        if e["ns"] != ns:
            continue
        if e["op"] == "i":
            state[bson.encode({"k": e["o"]["_id"]})] = bson.encode(e["o"])
        elif e["op"] == "u":
            doc = e["o"]["$set"]
            state[bson.encode({"k": doc["_id"]})] = bson.encode(doc)
        elif e["op"] == "d":
            state.pop(bson.encode({"k": e["o"]["_id"]}), None)
    return state


class Follower:
    def __init__(self, lb, uri, skew=None, interval="2s"):
        cmd = [str(LIFEBOAT), "--json", "mongodb", "follow", "--uri", uri, "--interval", interval]
        env = dict(lb.env)
        if skew:
            # libfaketime (Debian `faketime`) preloaded into the follower itself: the `faketime`
            # wrapper would not pass our stop signal on.
            libs = glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1")
            assert libs, "libfaketime is missing: run scripts/setup"
            env.update(LD_PRELOAD=libs[0], FAKETIME=skew, FAKETIME_DONT_FAKE_MONOTONIC="1")
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if skew:
            time.sleep(0.5)
            assert self.proc.poll() is None, self.proc.communicate()

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, [json.loads(l) for l in out.splitlines() if l.strip()], err


def check_plan(plan, at):
    point_s = plan["point_ns"] // 1_000_000_000
    assert point_s <= at
    if plan["lag_ms"] == 0:
        assert plan["proved"] is True and point_s == at, plan
    else:
        assert plan["proved"] is False and plan["limit"], plan
    return point_s


def restore_and_compare(lb, client, into, at, base, full_end, target, server=True):
    """Restores `shop` as of `at` into a mongodump directory (and into the server unless a long write
    holds it); the result must equal the server's own record of the point the restore reports, and
    that point is `at` exactly whenever the restore says so."""
    out = lb.repo.parent / f"dir_{target}"
    d = lb.json("restore", "mongodb", "--at", utc(at), "--to-dir", out, "--db", "shop")
    plan = d["plan"]
    point_s = plan["point_ns"] // 1_000_000_000
    want = expected_at(base, oplog_after(client, full_end), "shop.orders", point_s)
    docs = bson.decode_all((out / "shop" / "orders.bson").read_bytes())
    got = {bson.encode({"k": x["_id"]}): bson.encode(x) for x in docs}
    assert len(got) == len(want), f"restore at {utc(at)} (point {utc(point_s)}): {len(got)} documents, {len(want)} expected"
    assert got == want, f"restore at {utc(at)} (point {utc(point_s)}) differs from the server's log"
    check_plan(plan, at)
    if server:
        r = lb.json("restore", "mongodb", "--at", utc(at), "--uri", into.uri, "--db", "shop", "--to-db",
                    f"shop={target}", "--drop")
        assert r["plan"]["point_ns"] == plan["point_ns"]
        assert raw_state(into.client(), target, "orders") == want
    return plan


@pytest.mark.parametrize("skew,kill", [(None, True), ("+5m", False), ("-5m", False)],
                         ids=["own-clock-killed-mid-write", "follower-5min-fast", "follower-5min-slow"])
def test_restore_at_T_equals_the_servers_log_through_a_long_write(lb, mongo, target, skew, kill):
    c = mongo.client()
    shop = c.shop
    shop.orders.insert_many([{"_id": i, "status": "new", "qty": i, "pad": "x" * 40} for i in range(N_ORDERS)])
    lb.run("backup", "mongodb", "--uri", mongo.uri)
    full = [s for s in lb.json("snapshots") if s["source"] == "mongodb"][0]
    end = full["metadata"]["oplog_end"]
    full_end = Timestamp(end["t"], end["i"])
    base = raw_state(c, "shop", "orders")
    f = Follower(lb, mongo.uri, skew)
    try:
        settle_to_next_second()
        t_before = int(time.time()) - 1
        shop.orders.insert_many([{"_id": N_ORDERS + i, "status": "new", "qty": i} for i in range(200)])
        shop.orders.update_many({"_id": {"$lt": 100}}, {"$set": {"status": "paid"}})
        shop.orders.delete_many({"_id": {"$gte": 100, "$lt": 200}})
        time.sleep(2.5)
        settle_to_next_second()
        t = int(time.time()) - 1
        at_t = raw_state(c, "shop", "orders")
        assert at_t == expected_at(base, oplog_after(c, full_end), "shop.orders", t), "the test's own model is wrong"
        settle_to_next_second()
        long_write_started = time.time()

        def long_write():
            shop.orders.delete_many({"_id": {"$gte": 500, "$lt": 900}})
            shop.orders.update_many({}, {"$set": {"touched": True}})

        w = threading.Thread(target=long_write)
        w.start()
        # While the long write runs and the follower commits slices, restores must already be exact
        # or say how far they got: the reported failure claimed T while entries before T were unread.
        # (FerretDB on SQLite takes one writer at a time: this restore writes a directory.)
        restore_and_compare(lb, c, target, t, base, full_end, "during", server=False)
        if kill:
            time.sleep(0.5)
            f.stop(signal.SIGKILL)
            time.sleep(0.3)
            f = Follower(lb, mongo.uri, skew)
        while time.time() < long_write_started + 2.1:
            time.sleep(0.05)
        t_mid = int(time.time()) - 1
        inside = w.is_alive()
        w.join()
        assert inside and t_mid > long_write_started, "the long write ended too soon to restore inside it"
        time.sleep(2.5)
        settle_to_next_second()
        t_after = int(time.time()) - 1
        final = raw_state(c, "shop", "orders")
        # Let the follower read everything the server has logged (FerretDB is slow to hand it over).
        newest = c.local["oplog.rs"].find().sort("$natural", -1).limit(1)[0]["ts"]
        deadline = time.time() + 120
        while time.time() < deadline:
            tos = [s["metadata"]["to"] for s in lb.json("snapshots") if s["source"] == "mongodb-oplog"]
            if any(Timestamp(x["t"], x["i"]) >= newest for x in tos):
                break
            time.sleep(1)
        time.sleep(3)
    finally:
        rc, events, err = f.stop()
    assert rc == 0, err

    slices = sorted((s["metadata"] for s in lb.json("snapshots") if s["source"] == "mongodb-oplog"),
                    key=lambda m: (m["from"]["t"], m["from"]["i"]))
    pos = (end["t"], end["i"])
    for m in slices:
        assert (m["from"]["t"], m["from"]["i"]) == pos, "slices continue exactly where the last one ended"
        assert not m["gap"]
        pos = (m["to"]["t"], m["to"]["i"])
    assert sum(m["entries"] for m in slices) == c.local["oplog.rs"].count_documents({"ts": {"$gt": full_end}}), \
        "every logged change is captured once"

    for at, name in ((t_before, "before"), (t, "at_t"), (t_mid, "mid"), (t_after, "after")):
        plan = restore_and_compare(lb, c, target, at, base, full_end, name)
        assert plan["lag_ms"] == 0 and plan["proved"], f"the follower caught up, so {utc(at)} is proved: {plan}"
    assert raw_state(target.client(), "after", "orders") == final
    assert raw_state(target.client(), "at_t", "orders") == at_t
    # A time the server has not reached yet cannot be proved.
    future = int(time.time()) + 3600
    r = lb.json("restore", "mongodb", "--dry-run", "--at", utc(future))
    assert r["plan"]["proved"] is False and r["plan"]["lag_ms"] > 3_000_000
    assert r["plan"]["point_ns"] // 1_000_000_000 <= int(time.time())
