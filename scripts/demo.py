"""make demo: the full disaster-recovery cycle on one machine, printed step by step.

FerretDB (MongoDB wire protocol with an oplog) and fake-gcs-server (the second region) run on
loopback; an EyewearML-like `eyewear_ml` database and an assets directory are backed up by the plan,
MongoDB changes are captured continuously, the data is destroyed, a drill restores everything into
the test environment and measures RTO and RPO, and production is restored as of one instant.
"""
import datetime
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "peers"))
import peers  # noqa: E402

LB = str(ROOT / "build" / "lifeboat")
DEMO = ROOT / ".demo"
T0 = time.time()


def step(title):
    print(f"\n\033[1m== {title}\033[0m  (+{time.time() - T0:.1f}s)", flush=True)


def lb(*args, check=True, quiet=False):
    p = subprocess.run([LB, *map(str, args)], env=ENV, capture_output=True, text=True)
    if not quiet or p.returncode != 0:
        sys.stdout.write(p.stdout)
        sys.stderr.write(p.stderr)
    if check and p.returncode != 0:
        sys.exit(f"demo: lifeboat {' '.join(map(str, args))} failed ({p.returncode})")
    return p


shutil.rmtree(DEMO, ignore_errors=True)
DEMO.mkdir()
mongo = peers.FerretDB(DEMO / "ferretdb")
gcs = peers.FakeGCS()
step("0. Peers on loopback: FerretDB (MongoDB wire protocol + oplog) and fake-gcs-server (second region)")
mongo.start()
gcs.start()
print(f"   FerretDB {mongo.uri}   fake-gcs-server {gcs.endpoint}")
ENV = dict(os.environ, LIFEBOAT_PASSWORD="demo password", MONGO_URI=mongo.uri, ASSETS_DIR=str(DEMO / "assets"),
           DEMO=str(DEMO), LIFEBOAT_PLAN=str(DEMO / "lifeboat.yaml"), **gcs.env())
try:
    step("1. Seed EyewearML-like data: eyewear_ml (frames, users, try_on_sessions) and an assets directory")
    c = mongo.client()
    rnd = random.Random(7)
    db = c.eyewear_ml
    db.frames.insert_many([{"_id": i, "sku": f"EW-{i:05}", "shape": rnd.choice(["round", "square", "cat-eye"]),
                            "price": 79 + i % 120, "stock": rnd.randint(0, 40)} for i in range(5000)])
    db.users.insert_many([{"_id": f"u{i}", "email": f"user{i}@example.com", "face_shape": rnd.choice(["oval", "heart"])}
                          for i in range(1000)])
    db.try_on_sessions.insert_many([{"user": f"u{i % 1000}", "frame": i % 5000, "score": rnd.random()} for i in range(3000)])
    db.frames.create_index("sku", unique=True)
    assets = DEMO / "assets"
    (assets / "models" / "face-analysis").mkdir(parents=True)
    (assets / "config").mkdir()
    (assets / "models" / "face-analysis" / "model-v3.onnx").write_bytes(rnd.randbytes(8 << 20))
    for env in ("production", "staging", "test"):
        (assets / "config" / f"{env}.yaml").write_text(f"environment: {env}\nfeature_flags: {{virtual_try_on: true}}\n")
    print("   eyewear_ml: 5000 frames, 1000 users, 3000 try-on sessions; assets: an 8 MiB model and 3 configs")

    step("2. The plan (lifeboat.yaml): local repository + GCS copy, MongoDB with continuous oplog, assets")
    (DEMO / "lifeboat.yaml").write_text("""version: 1
objectives: {rpo: 1h, rto: 4h}
repositories:
  local: {url: "${DEMO}/repo"}
  gcs-copy: {url: "gs:eyewear-backups/lifeboat", copy_of: local}
sources:
  eyewear-mongo:
    kind: mongodb
    uri: ${MONGO_URI}
    databases: [eyewear_ml]
    schedule: {full: "0 2 * * *", continuous: true, interval: 2s}
    retention: {daily: 30, weekly: 12, monthly: 12}
    validation: [counts, hashes]
    environments:
      test: {rename: {eyewear_ml: eyewear_ml_test}}
      production: {}
  assets:
    kind: files
    paths: ["${ASSETS_DIR}"]
    schedule: {full: "30 2 * * *"}
    retention: {within: 90d}
    validation: [hashes, counts]
    environments:
      test: {target: "${DEMO}/drill"}
      production: {target: /}
""")
    lb("init", "-r", DEMO / "repo", quiet=True)
    lb("plan", "check")

    step("3. lifeboat backup: every source, then verification, retention and the copy to the GCS region")
    lb("backup")

    step("4. Continuous capture: `lifeboat mongodb follow` commits an oplog slice every 2 s")
    follower = subprocess.Popen([LB, "mongodb", "follow", "--uri", mongo.uri, "--name", "eyewear-mongo", "--interval", "2s",
                                 "-r", DEMO / "repo"], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(1.2)
    db.frames.update_many({"_id": {"$lt": 25}}, {"$set": {"price": 59}})  # a sale, after the nightly backup
    db.users.insert_one({"_id": "u-new", "email": "new@example.com", "face_shape": "oval"})
    time.sleep(1.1)
    at = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    expected = {n: db[n].count_documents({}) for n in ("frames", "users", "try_on_sessions")}
    sale_price = db.frames.find_one({"_id": 3})["price"]
    print(f"   writes after the backup; the instant to recover: {at.isoformat()} ({expected})")
    time.sleep(1.5)

    step("5. Disaster: a bad migration drops eyewear_ml.frames and deletes the assets directory")
    db.frames.drop()
    shutil.rmtree(assets)
    time.sleep(3)  # the follower captures the damage too; point-in-time restore goes back before it
    follower.send_signal(signal.SIGTERM)
    out, _ = follower.communicate(timeout=30)
    print("   " + "\n   ".join(out.strip().splitlines()[-3:]))
    print(f"   frames left: {db.frames.count_documents({})}; assets present: {assets.exists()}")

    step("6. lifeboat drill --environment test: restore everything, validate, measure RTO and RPO")
    lb("drill", "--environment", "test", "--record", DEMO / "drill.md")

    step(f"7. lifeboat restore --all --at {at.isoformat()} --environment production: one instant, every system")
    lb("restore", "--all", "--at", at.strftime("%Y-%m-%dT%H:%M:%SZ"), "--environment", "production")
    got = {n: db[n].count_documents({}) for n in ("frames", "users", "try_on_sessions")}
    ok = got == expected and db.frames.find_one({"_id": 3})["price"] == sale_price == 59 and \
        (assets / "models" / "face-analysis" / "model-v3.onnx").stat().st_size == 8 << 20
    print(f"   eyewear_ml now: {got} — {'equal to the state at ' + at.isoformat() if ok else 'NOT equal to the state at T'}")
    if not ok:
        sys.exit("demo: the restore did not bring back the state at T")

    step("8. The runbook still works: --to-dir writes a mongodump layout for `mongorestore --db eyewear_ml --drop`")
    lb("restore", "mongodb", "-r", DEMO / "repo", "--at", at.strftime("%Y-%m-%dT%H:%M:%SZ"), "--to-dir",
       DEMO / "backups" / at.strftime("%Y-%m-%d"), quiet=True)
    print("   " + " ".join(sorted(p.name for p in (DEMO / "backups" / at.strftime("%Y-%m-%d") / "eyewear_ml").iterdir())))

    step("9. Status and the daily report (HTML in .demo/report.html, metrics in .demo/lifeboat.prom)")
    lb("status")
    lb("report", "--format", "html", "-o", DEMO / "report.html")
    lb("metrics", "--textfile", DEMO / "lifeboat.prom")
    lb("report")
    step(f"Done in {time.time() - T0:.0f}s: backed up, destroyed, drilled (RTO/RPO above), restored to {at.isoformat()}")
finally:
    mongo.stop()
    gcs.stop()
