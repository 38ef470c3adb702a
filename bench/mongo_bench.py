"""MongoDB benchmark: Lifeboat against mongodump/mongorestore on the same FerretDB, same run.

Seeds N small documents (default 1 M) into --collections collections (default 4), each with a
secondary index, in one FerretDB on loopback. First it finds mongo-tools' best settings on this
machine: mongodump at --numParallelCollections 1, 2 and 4, mongorestore at every pair of
--numParallelCollections and --numInsertionWorkersPerCollection in 1, 2, 4 (--batchSize left at its
default, 1000: the FerretDB insert limit is what it would raise), one timed run each; the fastest are
printed and used. Then it alternates the tools:
  backup:  lifeboat backup mongodb          vs  mongodump (best settings) --out DIR
  restore: lifeboat restore mongodb --drop  vs  mongorestore (best settings) --noIndexRestore --drop
(mongorestore's index builds fail on FerretDB, so its restores skip them; Lifeboat's build them.)
Then both restores run again against a server that acknowledges every write and stores nothing
(tests/peers/ack_mongo.py, a fake): the tools' client paths alone, and the server's share of each
restore against FerretDB (1 - time there / time against FerretDB).
Prints documents per second and the ratios (goals: restore ≥ 2x, backup ≥ 2.5x), the repository
size against `mongodump --gzip`, and appends the figures to bench/RESULTS.md.

Then the replay phase: a full backup of --replay-docs documents (FerretDB with an oplog), and after it
one slice of what production writes and FerretDB cannot log (bench/synth_oplog.cpp): --deltas $v:2
delta updates and --txns transactions of --ops-per-txn operations. A restore with the slice and one
of the full backup alone are timed into a directory and into a server; their difference is the
replay, in operations per second. mongorestore --oplogReplay has no part in it: it replays through
applyOps, which FerretDB does not run. --only-replay runs this phase alone.
"""
import argparse
import datetime
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "peers"))
sys.path.insert(0, str(ROOT / "bench"))
import peers  # noqa: E402
from benchlib import machine_line, publish, timed  # noqa: E402

LIFEBOAT = ROOT / "build" / "lifeboat"


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def seed(server, n, collections=1):
    """n documents spread over `collections` collections (items, or items0…), each with an index on sku."""
    c = server.client()
    t0 = time.monotonic()
    names = ["items"] if collections == 1 else [f"items{k}" for k in range(collections)]
    for k, name in enumerate(names):
        coll = c.bench[name]
        batch = []
        for i in range(k, n, len(names)):
            batch.append({"_id": i, "sku": f"SKU-{i:08d}", "price": (i % 1000) / 10, "qty": i % 17,
                          "tags": ["frame", "lens" if i % 2 else "case"], "active": i % 3 != 0})
            if len(batch) == 10000:
                coll.insert_many(batch, ordered=False)
                batch = []
        if batch:
            coll.insert_many(batch, ordered=False)
        if collections > 1:
            coll.create_index("sku")
    print(f"seeded {n} documents in {len(names)} collection(s) in {time.monotonic() - t0:.0f} s", flush=True)
    c.close()
    return names


def lifeboat_version():
    return subprocess.run([LIFEBOAT, "--version"], capture_output=True, text=True).stdout.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3, help="rounds per phase (odd: the median is a real run)")
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--only-replay", action="store_true")
    ap.add_argument("--skip-replay", action="store_true", help="only the dump/restore comparison")
    ap.add_argument("--threads", type=int, default=4, help="Lifeboat's insert batches in flight")
    ap.add_argument("--collections", type=int, default=4)
    ap.add_argument("--replay-docs", type=int, default=20_000,
                    help="FerretDB on SQLite answers each $in on _id with a scan of the whole collection")
    ap.add_argument("--deltas", type=int, default=100_000)
    ap.add_argument("--txns", type=int, default=1_000)
    ap.add_argument("--ops-per-txn", type=int, default=10)
    args = ap.parse_args()
    if args.only_replay:
        publish(replay_phase(args), ROOT / "bench" / "RESULTS.md", not args.no_record)
        return
    work = Path(tempfile.mkdtemp(prefix="lifeboat-mongo-bench-", dir=ROOT / "bench" / "work"
                                 if (ROOT / "bench" / "work").exists() else None))
    env = dict(os.environ, LIFEBOAT_PASSWORD="bench")

    def fresh_repository(r):
        # Every backup round starts from an empty repository, as mongodump starts from an empty
        # directory: otherwise every round after the first would be pure deduplication.
        shutil.rmtree(work / f"repo-{r - 1}", ignore_errors=True)
        env["LIFEBOAT_REPOSITORY"] = str(work / f"repo-{r}")
        subprocess.run([LIFEBOAT, "init", "--kdf-memory-kib", "65536"], env=env, check=True, capture_output=True)
    mongodump, mongorestore = peers.mongo_tool("mongodump"), peers.mongo_tool("mongorestore")
    server = peers.FerretDB(work / "ferretdb", oplog_bytes=0).start()
    runs, peaks = {}, {}

    def record(phase, tool, run):
        dt, rss = run[0], run[1]
        runs.setdefault((phase, tool), []).append(dt)
        peaks[(phase, tool)] = max(peaks.get((phase, tool), 0), rss)
        print(f"  {phase:<8} {tool:<9} {dt:7.2f} s  {args.docs / dt:9.0f} docs/s  peak {rss / 2**20:.0f} MiB", flush=True)

    settings, sweep_lines = {}, []

    def lifeboat_restore(uri):
        return timed([LIFEBOAT, "restore", "mongodb", "--uri", uri, "--db", "bench", "--to-db", "bench=lb_restored", "--drop",
                      "--threads", str(args.threads), "-q"], env)

    def mongorestore_run(uri, pc, iw):
        return timed([mongorestore, "--uri", uri, "--noIndexRestore", "--drop", "--quiet", f"--numParallelCollections={pc}",
                      f"--numInsertionWorkersPerCollection={iw}", "--nsFrom", "bench.*", "--nsTo", "mr_restored.*",
                      work / "dump"], env)

    def mongodump_run(pc):
        shutil.rmtree(work / "dump", ignore_errors=True)
        return timed([mongodump, "--uri", server.uri, "--db", "bench", f"--numParallelCollections={pc}", "--out",
                      work / "dump", "--quiet"], env)

    try:
        names = seed(server, args.docs, args.collections)
        # mongo-tools at their best on this machine: one timed run of each setting, the fastest kept.
        sweep = {pc: mongodump_run(pc)[0] for pc in (1, 2, 4)}
        settings["mongodump"] = min(sweep, key=sweep.get)
        sweep_lines.append(f"mongodump --numParallelCollections {', '.join(f'{k}: {v:.2f}' for k, v in sweep.items())}")
        print(f"mongodump --numParallelCollections: { {k: round(v, 2) for k, v in sweep.items()} } -> {settings['mongodump']}",
              flush=True)
        sweep = {(pc, iw): mongorestore_run(server.uri, pc, iw)[0] for pc in (1, 2, 4) for iw in (1, 2, 4)}
        settings["mongorestore"] = min(sweep, key=sweep.get)
        sweep_lines.append("mongorestore (parallel collections, insertion workers) " +
                           ", ".join(f"{k[0]},{k[1]}: {v:.2f}" for k, v in sweep.items()))
        print(f"mongorestore (--numParallelCollections, --numInsertionWorkersPerCollection): "
              f"{ {f'{k[0]},{k[1]}': round(v, 2) for k, v in sweep.items()} } -> {settings['mongorestore']}", flush=True)
        for r in range(args.repeat):
            order = ["lifeboat", "mongodump"] if r % 2 == 0 else ["mongodump", "lifeboat"]
            for tool in order:
                if tool == "lifeboat":
                    fresh_repository(r)
                    run = timed([LIFEBOAT, "backup", "mongodb", "--uri", server.uri, "--db", "bench", "-q"], env)
                else:
                    run = mongodump_run(settings["mongodump"])
                record("backup", tool, run)
        repo_size = du(Path(env["LIFEBOAT_REPOSITORY"]))
        dump_size = du(work / "dump")
        timed([mongodump, "--uri", server.uri, "--db", "bench", "--gzip", "--out", work / "dumpgz", "--quiet"], env)
        gz_size = du(work / "dumpgz")
        for r in range(args.repeat):
            order = ["lifeboat", "mongorestore"] if r % 2 == 0 else ["mongorestore", "lifeboat"]
            for tool in order:
                run = lifeboat_restore(server.uri) if tool == "lifeboat" else mongorestore_run(server.uri, *settings["mongorestore"])
                record("restore", tool, run)
        c = server.client()
        for name in names:
            assert c.lb_restored[name].count_documents({}) == c.bench[name].count_documents({})
            assert c.mr_restored[name].count_documents({}) == c.bench[name].count_documents({})
        c.close()
        # The client paths alone: the same restores against a server that only acknowledges.
        with peers.AckMongo() as ack:
            for r in range(args.repeat):
                order = ["lifeboat", "mongorestore"] if r % 2 == 0 else ["mongorestore", "lifeboat"]
                for tool in order:
                    run = lifeboat_restore(ack.uri) if tool == "lifeboat" else mongorestore_run(ack.uri, *settings["mongorestore"])
                    record("ack", tool, run)
    finally:
        server.stop()

    med = {k: statistics.median(v) for k, v in runs.items()}
    ferret = "FerretDB v1.24.2 (SQLite)"
    pc, iw = settings["mongorestore"]
    lines = [f"### {datetime.date.today()} — MongoDB: {args.docs} small documents in {len(names)} collection(s) with a "
             f"secondary index each, {ferret}",
             "",
             machine_line(f"Lifeboat {lifeboat_version()}; mongo-tools 100.18.0",
                          f"Median of {args.repeat} runs, tools alternating; every backup into an empty repository (mongodump: an "
                          f"empty directory); peak RSS the largest of the runs; all on loopback. mongo-tools at their best "
                          f"settings here, found by a sweep in the same run: mongodump --numParallelCollections="
                          f"{settings['mongodump']}, mongorestore --numParallelCollections={pc} "
                          f"--numInsertionWorkersPerCollection={iw} (--batchSize at its default) --noIndexRestore (its index "
                          f"builds fail on FerretDB; Lifeboat's restores build the indexes). Lifeboat --threads {args.threads}."),
             "",
             "| phase | lifeboat s | mongo-tools s | lifeboat docs/s | mongo-tools docs/s | speed ratio | goal | peak RSS lifeboat / mongo-tools |",
             "|---|---|---|---|---|---|---|---|"]
    for phase, peer, goal in (("backup", "mongodump", 2.5), ("restore", "mongorestore", 2.0), ("ack", "mongorestore", 2.0)):
        lt, pt = med[(phase, "lifeboat")], med[(phase, peer)]
        ratio = pt / lt
        label = "restore into a server that only acknowledges (client path alone)" if phase == "ack" else phase
        lines.append(f"| {label} | {lt:.2f} | {pt:.2f} | {args.docs / lt:.0f} | {args.docs / pt:.0f} | {ratio:.2f}x | "
                     f"≥ {goal:g}x {'✅' if ratio >= goal else '❌'} | {peaks[(phase, 'lifeboat')] / 2**20:.0f} / "
                     f"{peaks[(phase, peer)] / 2**20:.0f} MiB |")
    share = {t: 1 - med[("ack", t)] / med[("restore", t)] for t in ("lifeboat", "mongorestore")}
    lines += ["", "The sweep, seconds per setting: " + "; ".join(sweep_lines) + "."]
    lines += ["", f"The server's share of each restore against FerretDB (1 - time against the acknowledging server / time "
                  f"against FerretDB): Lifeboat {share['lifeboat']:.0%}, mongorestore {share['mongorestore']:.0%}. On a server "
                  f"that kept up, the client paths alone would restore at {args.docs / med[('ack', 'lifeboat')]:,.0f} and "
                  f"{args.docs / med[('ack', 'mongorestore')]:,.0f} documents/s.",
              "", f"Sizes: Lifeboat repository {repo_size / 2**20:.1f} MiB (encrypted, zstd), mongodump {dump_size / 2**20:.1f} MiB, "
                  f"mongodump --gzip {gz_size / 2**20:.1f} MiB (repository / gzip dump: {repo_size / gz_size:.2f}x).", ""]
    report = "\n".join(lines)
    shutil.rmtree(work, ignore_errors=True)
    publish(report + ("" if args.skip_replay else "\n" + replay_phase(args)), ROOT / "bench" / "RESULTS.md", not args.no_record)


def replay_phase(args):
    """Oplog replay of delta updates and transactions (see the module's docstring); returns the report."""
    work = Path(tempfile.mkdtemp(prefix="lifeboat-replay-bench-"))
    env = dict(os.environ, LIFEBOAT_PASSWORD="bench", LIFEBOAT_REPOSITORY=str(work / "repo"))
    subprocess.run([LIFEBOAT, "init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1"], env=env, check=True,
                   capture_output=True)
    source = peers.FerretDB(work / "source").start()
    target = peers.FerretDB(work / "target", oplog_bytes=0).start()
    try:
        seed(source, args.replay_docs)
        subprocess.run([LIFEBOAT, "backup", "mongodb", "--uri", source.uri, "--db", "bench", "--name", "bench", "-q"],
                       env=env, check=True)
        synth = subprocess.run([ROOT / "build" / "synth_oplog", work / "repo", "bench", str(args.replay_docs),
                                str(args.deltas), str(args.txns), str(args.ops_per_txn)], env=env, check=True,
                               capture_output=True, text=True)
        info = json.loads(synth.stdout)
        full_at = datetime.datetime.fromtimestamp(info["from"], datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        runs, peak, cpu = {}, {}, {}
        for r in range(args.repeat):
            for what, at in (("full", ["--at", full_at]), ("replay", [])):
                out = work / f"dump-{what}"
                shutil.rmtree(out, ignore_errors=True)
                for where, target_args in (("dir", ["--to-dir", out]),
                                           ("server", ["--uri", target.uri, "--to-db", f"bench=r_{what}", "--drop"])):
                    before = resource.getrusage(resource.RUSAGE_CHILDREN)
                    dt, rss, _ = timed([LIFEBOAT, "restore", "mongodb", "--name", "bench", *at, *target_args, "-q"], env)
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    runs.setdefault((where, what), []).append(dt)
                    cpu.setdefault((where, what), []).append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
                    peak[(where, what)] = max(peak.get((where, what), 0), rss)
                print(f"  replay round {r}: {what} done", flush=True)
        # The replayed state read back and compared with the prediction, once, outside the timings.
        for target_args in (["--to-dir", work / "dump-check"], ["--uri", target.uri, "--to-db", "bench=r_check", "--drop"]):
            p = subprocess.run([LIFEBOAT, "--json", "restore", "mongodb", "--name", "bench", *target_args, "--check",
                                "counts", "--check", "hashes"], env=env, capture_output=True, text=True)
            assert p.returncode == 0 and all(k["ok"] for k in json.loads(p.stdout)["checks"]), p.stdout + p.stderr
    finally:
        source.stop()
        target.stop()
        shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in runs.items()}
    ops = info["operations"]
    lines = [f"### {datetime.date.today()} — MongoDB oplog replay: {args.deltas} $v:2 delta updates and {args.txns} "
             f"transactions of {args.ops_per_txn} operations over {args.replay_docs} documents, FerretDB v1.24.2 (SQLite)",
             "",
             machine_line(f"Lifeboat {lifeboat_version()}", f"Median of {args.repeat} runs; the slice is synthetic "
                          "(bench/synth_oplog.cpp: FerretDB cannot log these shapes); replay time = restore with the "
                          "slice minus restore of the full backup alone; no mongo-tools figure (mongorestore "
                          "--oplogReplay needs applyOps, which FerretDB does not run)."),
             "",
             "| target | full backup alone s | with the slice s | replay s | operations/s | entries/s | Lifeboat CPU in the replay s | peak RSS alone / with |",
             "|---|---|---|---|---|---|---|---|"]
    for where in ("dir", "server"):
        base, full = med[(where, "full")], med[(where, "replay")]
        replay = max(full - base, 1e-9)
        lines.append(f"| {'--to-dir' if where == 'dir' else '--uri (FerretDB)'} | {base:.2f} | {full:.2f} | {replay:.2f} | "
                     f"{ops / replay:.0f} | {info['entries'] / replay:.0f} | "
                     f"{statistics.median(cpu[(where, 'replay')]) - statistics.median(cpu[(where, 'full')]):.2f} | "
                     f"{peak[(where, 'full')] / 2**20:.0f} / {peak[(where, 'replay')] / 2**20:.0f} MiB |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
