"""The README's "short tour" runs as written: its first two sections (a local repository; object
storage, a second region, a locked copy) are read from README.md and run line by line through a
shell, with local stand-ins where the README names a machine's paths or the cloud: the repository and
backed-up paths become temporary directories, `mongodump` a script that writes an archive, the two
snapshot IDs the first two backups' IDs, the example time now, the S3 endpoint versitygw and the GCS
bucket fake-gcs-server. Every command must exit 0, and each step's effect is checked."""
import json
import os
import re
import shlex
import subprocess
import time
from pathlib import Path

import peers
from conftest import LIFEBOAT

ROOT = Path(__file__).resolve().parents[2]


def tour_lines():
    text = (ROOT / "README.md").read_text()
    block = text.split("## A short tour", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    lines = []
    for line in block.splitlines():
        if line.startswith("# The plan"):
            break  # the plan's section runs in `make demo` (every peer) and the plan tests
        if line.strip() and not line.startswith("#") and not line.startswith(" "):
            lines.append(line)
    return lines


def test_the_readme_tour_runs_as_written(tmp_path):
    lines = tour_lines()
    assert lines[0].startswith("export LIFEBOAT_REPOSITORY=") and any("copy --to gs:" in l for l in lines), lines
    assets, etc = tmp_path / "srv" / "assets", tmp_path / "etc" / "eyewear"
    (assets / "config").mkdir(parents=True)
    (assets / "config" / "app.json").write_text('{"replicas": 3}\n')
    (assets / "logo.png").write_bytes(os.urandom(50_000))
    etc.mkdir(parents=True)
    (etc / "eyewear.conf").write_text("port = 8080\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "mongodump").write_text("#!/bin/sh\n# stand-in: an archive on stdout, as `mongodump --archive` writes\n"
                                       "printf 'mongodump archive of eyewear_ml\\n'\n")
    (bin_dir / "mongodump").chmod(0o755)
    (bin_dir / "lifeboat").symlink_to(LIFEBOAT)
    restore = tmp_path / "srv" / "restore"
    restore_config = tmp_path / "srv" / "restore-config"
    with peers.VersityGW(tmp_path / "s3") as s3, peers.FakeGCS() as gcs:
        s3.client().create_bucket(Bucket="eyewear-backups", ObjectLockEnabledForBucket=True)
        gcs.create_bucket("eyewear-dr")
        env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", TZ="UTC", LIFEBOAT_NEW_PASSWORD="a second password",
                   **gcs.env())
        env.pop("LIFEBOAT_PLAN", None)
        ids = []

        def stand_ins(line):
            paths = {"/srv/lifeboat": tmp_path / "repo", "/srv/assets": assets, "/etc/eyewear": etc,
                     "/srv/restore-config": restore_config, "/srv/restore": restore}
            line = re.sub("|".join(sorted(map(re.escape, paths), key=len, reverse=True)), lambda m: str(paths[m.group(0)]), line)
            line = line.replace("LIFEBOAT_PASSWORD='…'", "LIFEBOAT_PASSWORD='tour password'")
            line = line.replace("AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=…",
                                f"AWS_ACCESS_KEY_ID={s3.access_key} AWS_SECRET_ACCESS_KEY={s3.secret_key}")
            line = line.replace("s3:https://s3.eu-west-1.amazonaws.com/", f"s3:{s3.endpoint}/")
            line = line.replace("2026-11-20 14:00", time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + 1)))
            if len(ids) >= 2:
                line = line.replace("3fa2b1c4", ids[0][:8]).replace("9c01d7e2", ids[1][:8])
            return line

        exports = ""
        for line in lines:
            cmd = stand_ins(line)
            if cmd.startswith("export "):
                exports += cmd.split("#")[0] + "\n"
                continue
            p = subprocess.run(["bash", "-c", exports + "set -e\n" + cmd], env=env, capture_output=True, text=True, timeout=300)
            assert p.returncode == 0, f"README line failed: {line}\n  ran: {cmd}\n{p.stdout}\n{p.stderr}"
            words = shlex.split(line.split("  #")[0])
            if words[1] == "backup":
                snap = json.loads(subprocess.run(["bash", "-c", exports + "lifeboat --json snapshots"], env=env,
                                                 capture_output=True, text=True).stdout)[-1]
                ids.append(snap["id"])
            if words[1:3] == ["restore", "latest"]:
                assert (restore / str(assets).lstrip("/") / "logo.png").read_bytes() == (assets / "logo.png").read_bytes()
            if "--include" in words:
                got = restore_config / str(assets).lstrip("/")
                assert (got / "config" / "app.json").exists() and not (got / "logo.png").exists()
            if words[1:3] == ["key", "add"]:
                keys = subprocess.run(["bash", "-c", exports + "lifeboat --json key list"], env=env, capture_output=True, text=True)
                assert len(json.loads(keys.stdout)) == 2, keys.stdout
            if words[1] == "pin":
                listed = subprocess.run(["bash", "-c", exports + "lifeboat --json snapshots"], env=env, capture_output=True, text=True)
                first = next(s for s in json.loads(listed.stdout) if s["id"] == ids[0])
                assert first["pinned"] and first["pin_note"] == "production model v3", first
        # The locked S3 copy and the second region hold every local snapshot.
        def count(repo_args):
            p = subprocess.run(["bash", "-c", exports + f"lifeboat {repo_args} --json snapshots"], env=env, capture_output=True,
                               text=True)
            assert p.returncode == 0, p.stderr
            return len(json.loads(p.stdout))
        local = count("")
        assert local == len(ids) == 2 and count(f"-r s3:{s3.endpoint}/eyewear-backups/prod") == local
        assert count("-r gs:eyewear-dr/prod") == local
        locked = s3.client().get_object_lock_configuration(Bucket="eyewear-backups")["ObjectLockConfiguration"]
        assert locked["ObjectLockEnabled"] == "Enabled"
