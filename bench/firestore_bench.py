"""Firestore benchmark: Google's Cloud Firestore emulator on loopback holding 100k user-profile
documents (~1 KB each: strings, numbers, a timestamp, a map, an array). In the same run: Lifeboat
(`backup firestore`, `restore firestore` into another project) against an export and an import
written with Google's official Python client (google-cloud-firestore, in .peers/firestore-py):
the export single-stream and paginated (order by __name__, pages of 1000 after the last name, as a
script that must survive a long read does), and also as one unpaginated stream(); the import with the
client's BulkWriter (parallel batches, its ramp lifted). Several rounds, the tools alternating with the
order swapped each round; the median is reported. Then 1% of the documents change and Lifeboat backs up again: bytes
stored for the second day against the first. Prints documents/s and ratios, appends to
bench/RESULTS.md."""
import argparse
import datetime
import json
import os
import random
import shutil
import string
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "peers"))
sys.path.insert(0, str(ROOT / "bench"))
import peers  # noqa: E402
from benchlib import machine_line, publish, timed  # noqa: E402
from files_bench import LIFEBOAT, WORK  # noqa: E402

PY = ROOT / ".peers" / "firestore-py" / "bin" / "python"

CLIENT = r'''
import json, sys, time
from google.cloud import firestore
mode, project, path = sys.argv[1], sys.argv[2], sys.argv[3]
db = firestore.Client(project=project)
t0 = time.monotonic()
n = 0
if mode == "export-paged":
    with open(path, "w") as out:
        last = None
        while True:
            q = db.collection("users").order_by("__name__").limit(1000)
            if last is not None:
                q = q.start_after(last)
            page = list(q.stream())
            for d in page:
                out.write(json.dumps({"id": d.id, "data": d.to_dict()}, default=str) + "\n")
            n += len(page)
            if len(page) < 1000:
                break
            last = page[-1]
elif mode == "export-stream":
    with open(path, "w") as out:
        for d in db.collection("users").order_by("__name__").stream():
            out.write(json.dumps({"id": d.id, "data": d.to_dict()}, default=str) + "\n")
            n += 1
else:  # import: the client's BulkWriter (batches of 20 sent in parallel), its 500/50/5 ramp lifted as
    # Lifeboat's restore does without `ramp` (a fresh project takes the load)
    from google.cloud.firestore_v1.bulk_writer import BulkWriterOptions, SendMode
    bw = db.bulk_writer(options=BulkWriterOptions(initial_ops_per_second=1_000_000, max_ops_per_second=1_000_000,
                                                  mode=SendMode.parallel))
    for line in open(path):
        rec = json.loads(line)
        bw.set(db.collection("users").document(rec["id"]), rec["data"])
        n += 1
    bw.close()
print(json.dumps({"documents": n, "seconds": time.monotonic() - t0}))
'''


def ensure_client():
    if not PY.exists() or subprocess.run([str(PY), "-c", "import google.cloud.firestore"], capture_output=True).returncode:
        subprocess.run([sys.executable, "-m", "venv", str(PY.parent.parent)], check=True)
        subprocess.run([str(PY), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "google-cloud-firestore==2.34.1"],
                       check=True)
    return subprocess.run([str(PY), "-c", "import google.cloud.firestore as f; print(f.__version__)"], capture_output=True,
                          text=True).stdout.strip()


def profile(rnd, i):
    word = lambda n: "".join(rnd.choice(string.ascii_lowercase) for _ in range(n))  # noqa: E731
    return {"name": {"stringValue": f"{word(6).title()} {word(9).title()}"},
            "email": {"stringValue": f"{word(8)}@{word(6)}.example.com"},
            "age": {"integerValue": str(rnd.randint(18, 90))},
            "score": {"doubleValue": rnd.random() * 100},
            "joined": {"timestampValue": f"20{rnd.randint(15, 26)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}T"
                                         f"{rnd.randint(0, 23):02d}:{rnd.randint(0, 59):02d}:00Z"},
            "face_shape": {"stringValue": rnd.choice(["oval", "round", "square", "heart", "diamond"])},
            "address": {"mapValue": {"fields": {"street": {"stringValue": f"{rnd.randint(1, 300)} {word(10).title()} Street"},
                                                "city": {"stringValue": word(8).title()},
                                                "zip": {"stringValue": str(rnd.randint(10000, 99999))},
                                                "country": {"stringValue": rnd.choice(["DE", "FR", "US", "GB", "NL"])}}}},
            "prefs": {"mapValue": {"fields": {"frame": {"stringValue": rnd.choice(["acetate", "metal", "titanium"])},
                                              "width_mm": {"integerValue": str(rnd.randint(125, 150))},
                                              "newsletter": {"booleanValue": rnd.random() < 0.5}}}},
            "tags": {"arrayValue": {"values": [{"stringValue": word(rnd.randint(4, 9))} for _ in range(rnd.randint(1, 6))]}},
            "bio": {"stringValue": " ".join(word(rnd.randint(3, 9)) for _ in range(rnd.randint(20, 60)))},
            "last_try_on": {"mapValue": {"fields": {"frame": {"stringValue": f"EW-{rnd.randint(0, 99999):05d}"},
                                                    "confidence": {"doubleValue": rnd.random()}}}}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--documents", type=int, default=100000)
    ap.add_argument("--readers", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3, help="rounds (odd: the median is a real run)")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    scratch = WORK / "firestore-bench"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    client_version = ensure_client()
    rnd = random.Random(19)
    ids = ["".join(rnd.choice(string.ascii_letters + string.digits) for _ in range(20)) for _ in range(args.documents)]
    with peers.FirestoreEmulator(scratch, heap="6g") as emu:
        t0 = time.monotonic()
        emu.put({f"users/{i}": profile(rnd, n) for n, i in enumerate(ids)}, project="bench")
        load_s = time.monotonic() - t0
        env = dict(os.environ, LIFEBOAT_PASSWORD="bench", **emu.env())
        env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
        repo = scratch / "repo"

        def lifeboat(*a):
            dt, rss, out = timed([LIFEBOAT, "-r", repo, "--no-progress", "--json", *a], env)
            return dt, rss, json.loads(out.splitlines()[0])

        def client(mode, project, path):
            p = subprocess.run([str(PY), "-c", CLIENT, mode, project, str(path)], env=env, capture_output=True, text=True)
            if p.returncode:
                sys.exit(f"python client {mode} failed:\n{p.stderr[-3000:]}")
            return json.loads(p.stdout.splitlines()[-1])

        runs = {k: [] for k in ("lb_backup", "paged", "stream", "lb_write", "bulk")}
        lb_backup_rss = lb_restore_rss = 0
        first = None
        for r in range(args.repeat):
            exports = ["lifeboat", "paged", "stream"] if r % 2 == 0 else ["stream", "paged", "lifeboat"]
            for tool in exports:
                if tool == "lifeboat":
                    # Into a new repository each round, as each export starts from nothing.
                    shutil.rmtree(repo, ignore_errors=True)
                    subprocess.run([LIFEBOAT, "-r", repo, "init", "--kdf-memory-kib", "65536"], env=env, check=True,
                                   capture_output=True)
                    dt, rss, out = lifeboat("backup", "firestore", "--project", "bench", "--readers", str(args.readers))
                    assert out["metadata"]["documents"] == args.documents, out["metadata"]
                    first = out  # the day-one backup the second day builds on (this round's repository)
                    runs["lb_backup"].append(dt)
                    lb_backup_rss = max(lb_backup_rss, rss)
                else:
                    got = client(f"export-{tool}", "bench", scratch / f"export-{tool}.jsonl")
                    assert got["documents"] == args.documents, got
                    runs[tool].append(got["seconds"])
            for tool in (["lifeboat", "bulk"] if r % 2 == 0 else ["bulk", "lifeboat"]):
                if tool == "lifeboat":
                    dt, rss, _ = lifeboat("restore", "firestore", "--project", "bench", "--to-project", f"lb-written-{r}",
                                          "--writers", str(args.readers), "--check", "none")
                    runs["lb_write"].append(dt)
                    lb_restore_rss = max(lb_restore_rss, rss)
                    emu.clear(f"lb-written-{r}")
                else:
                    got = client("import", f"py-restored-{r}", scratch / "export-paged.jsonl")
                    assert got["documents"] == args.documents
                    runs["bulk"].append(got["seconds"])
                    emu.clear(f"py-restored-{r}")
        # Once: the restore with its checks reading the whole target back.
        lb_restore_s, rss, restored = lifeboat("restore", "firestore", "--project", "bench", "--to-project", "lb-restored",
                                               "--writers", str(args.readers))
        assert all(c["ok"] for c in restored["checks"]), restored["checks"]
        lb_restore_rss = max(lb_restore_rss, rss)
        emu.clear("lb-restored")
        med = {k: sorted(v)[len(v) // 2] for k, v in runs.items()}
        lb_backup_s, lb_write_s = med["lb_backup"], med["lb_write"]
        paged, stream, imported = {"seconds": med["paged"]}, {"seconds": med["stream"]}, {"seconds": med["bulk"]}

        # Day two: 1% of the documents changed (a field each), then the second backup.
        changed = rnd.sample(ids, args.documents // 100)
        docs = emu.documents("bench")
        emu.put({f"users/{i}": dict(docs[f"users/{i}"], score={"doubleValue": rnd.random() * 100}) for i in changed}, project="bench")
        lb_second_s, _, second = lifeboat("backup", "firestore", "--project", "bench", "--readers", str(args.readers))
    export_bytes = (scratch / "export-paged.jsonl").stat().st_size
    shutil.rmtree(scratch, ignore_errors=True)

    n = args.documents

    def rate(s):
        return f"{n / s:,.0f}"

    s1, s2 = first["summary"]["data_stored_bytes"], second["summary"]["data_stored_bytes"]
    lines = [
        f"### {datetime.date.today()} — Firestore: {n:,} user-profile documents (~1 KB each) in Google's emulator",
        "",
        machine_line(f"Lifeboat 0.1.0 (REST, {args.readers} readers/writers); google-cloud-firestore {client_version} (gRPC); "
                     "Cloud Firestore emulator 1.19.9 (google-cloud-cli-firestore-emulator 528.0.0, Java 17, -Xmx6g)",
                     f"Median of {args.repeat} rounds, tools alternating, order swapped each round (loading the emulator "
                     f"takes {load_s:.0f} s; each import goes into a fresh project, cleared after); all on loopback; the "
                     "emulator, the tools and Lifeboat share the 2 cores."),
        "",
        "| phase | lifeboat s | python client s | lifeboat docs/s | client docs/s | ratio |",
        "|---|---|---|---|---|---|",
        f"| export: backup vs single-stream paginated export (pages of 1000) | {lb_backup_s:.1f} | {paged['seconds']:.1f} | "
        f"{rate(lb_backup_s)} | {rate(paged['seconds'])} | {paged['seconds'] / lb_backup_s:.2f}x |",
        f"| export: backup vs one unpaginated `stream()` | {lb_backup_s:.1f} | {stream['seconds']:.1f} | {rate(lb_backup_s)} | "
        f"{rate(stream['seconds'])} | {stream['seconds'] / lb_backup_s:.2f}x |",
        f"| import: restore into another project (`--check none`) vs the client's BulkWriter, ramp lifted | {lb_write_s:.1f} | "
        f"{imported['seconds']:.1f} | {rate(lb_write_s)} | {rate(imported['seconds'])} | {imported['seconds'] / lb_write_s:.2f}x |",
        f"| import: the same restore, then counts and hashes read back from the target (one run) | {lb_restore_s:.1f} | {imported['seconds']:.1f} | "
        f"{rate(lb_restore_s)} | {rate(imported['seconds'])} | {imported['seconds'] / lb_restore_s:.2f}x |",
        f"| second day's backup (1% of documents changed) | {lb_second_s:.1f} | — | {rate(lb_second_s)} | — | — |",
        "",
        f"Stored: first backup {s1 / 2**20:.1f} MiB (the client's JSON export: {export_bytes / 2**20:.1f} MiB, uncompressed, "
        f"values without their types), second day {s2 / 2**20:.2f} MiB = {100 * s2 / s1:.1f}% of the first "
        f"({len(changed)} documents changed). Lifeboat's times include reading every stored document back from the "
        f"repository (backup) and, in the second restore row, reading the whole target back for the counts and hashes "
        f"checks; the client's do not check anything. Peak RSS: backup {lb_backup_rss / 2**20:.0f} MiB, restore {lb_restore_rss / 2**20:.0f} MiB. "
        "The emulator scans its whole database for every query, so each page of the paginated export costs a scan; "
        "Lifeboat asks for few, long ranges there (one per reader).",
        "",
    ]
    publish("\n".join(lines), ROOT / "bench" / "RESULTS.md", record=not args.no_record)


if __name__ == "__main__":
    main()
