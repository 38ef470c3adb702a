"""Config source end to end: config files with one broken file of each syntax (named with file and
line, still stored, exit 3), a git repository with branches, tags, notes and an LFS object mirrored
and restored (git fsck, every ref equal, LFS object present), ten secrets of the Secret Manager FAKE
(tests/peers/secret_manager_fake.py — no emulator exists) restored into another project with the
same payloads, states and aliases; checks that fail when the restored target is tampered with; bad
input (missing repository, mid-rebase, permission denied, 429); and no planted secret value in any
output, report or /metrics."""
import contextlib
import json
import time
import os
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

import peers
from conftest import LIFEBOAT

PLANTED = ["s3cr3t-PAYLOAD-0", "dotenv-VALUE-9f2b", "hunter2-in-json"]


def git(cwd, *args, env=None):
    e = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com", GIT_COMMITTER_NAME="t",
             GIT_COMMITTER_EMAIL="t@example.com", GIT_CONFIG_NOSYSTEM="1", HOME=str(cwd), **(env or {}))
    return subprocess.run(["git", *args], cwd=cwd, env=e, check=True, capture_output=True, text=True).stdout


def make_git_repo(path: Path):
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "lfs", "install", "--local")
    git(path, "lfs", "track", "*.bin")
    (path / "app.yaml").write_text("replicas: 3\n")
    (path / "model.bin").write_bytes(os.urandom(50000))
    (path / "certs.dat").write_bytes(os.urandom(100000))  # plain git: a re-cloned pack would be stored again
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "first")
    git(path, "tag", "-a", "v1", "-m", "release 1")
    git(path, "checkout", "-q", "-b", "feature")
    (path / "app.yaml").write_text("replicas: 5\n")
    git(path, "commit", "-q", "-am", "feature")
    git(path, "checkout", "-q", "main")
    git(path, "notes", "add", "-m", "deployed to production", "HEAD")
    git(path, "tag", "light")
    return path


@contextlib.contextmanager
def git_daemon(base: Path):
    """`git daemon` on loopback serving every repository below `base`; yields its git:// URL root."""
    port = peers.free_port()
    daemon = subprocess.Popen(["git", "daemon", "--listen=127.0.0.1", f"--port={port}", "--export-all", "--reuseaddr",
                               f"--base-path={base}", str(base)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        peers.wait_for_port(port, daemon, what="git daemon")
        yield f"git://127.0.0.1:{port}"
    finally:
        daemon.terminate()
        daemon.wait()


def refs_of(path: Path):
    out = git(path, "for-each-ref", "--format=%(refname) %(objectname)")
    return dict(line.split() for line in out.splitlines())


def make_config_tree(root: Path, broken=False):
    (root / "app").mkdir(parents=True)
    (root / "app" / "settings.json").write_text('{"db": {"password": "hunter2-in-json", "pool": 5}}\n')
    (root / "app" / "deploy.yaml").write_text("service:\n  replicas: 3\n  image: app:1.2\n")
    (root / "app" / "tool.toml").write_text('[server]\nport = 8080\nhost = "127.0.0.1"\n')
    (root / "app" / "legacy.ini").write_text("[main]\nname = app\n; comment\n")
    (root / "app" / ".env").write_text("# prod\nDB_PASSWORD=dotenv-VALUE-9f2b\nexport MODE='prod'\n")
    (root / "README.txt").write_text("not config\n")
    if broken:
        (root / "broken").mkdir()
        (root / "broken" / "bad.json").write_text('{\n  "a": 1,\n  "b": hunter2-in-json\n}\n')
        (root / "broken" / "bad.yaml").write_text("a: 1\nb:\n  - x\n  c: [unclosed\n")
        (root / "broken" / "bad.toml").write_text('[t]\nok = 1\nnot valid line\n')
        (root / "broken" / "bad.ini").write_text("[s]\na = 1\nthis line has no equals\n")
        (root / "broken" / "bad.env").write_bytes(b"A=1\nB=\xff\xfe dotenv-VALUE-9f2b\n")


def seed_secrets(sm, project):
    """Ten secrets, three versions each; secret 3 has version 2 disabled, secret 4 version 1 destroyed; aliases."""
    expected = {}
    for i in range(10):
        sid = f"app-secret-{i}"
        sm.create_secret(project, sid, labels={"team": "platform", "n": str(i)}, annotations={"owner": "ops"})
        for v in range(1, 4):
            sm.add_version(project, sid, f"s3cr3t-PAYLOAD-{i}-{v}".encode() if not (i == 0 and v == 1) else b"s3cr3t-PAYLOAD-0")
        expected[sid] = {1: "ENABLED", 2: "ENABLED", 3: "ENABLED"}
    assert sm.call("POST", f"{project}/secrets/app-secret-3/versions/2:disable")[0] == 200
    expected["app-secret-3"][2] = "DISABLED"
    assert sm.call("POST", f"{project}/secrets/app-secret-4/versions/1:destroy")[0] == 200
    expected["app-secret-4"][1] = "DESTROYED"
    st, _ = sm.call("PATCH", f"{project}/secrets/app-secret-5?updateMask=versionAliases",
                    {"versionAliases": {"current": "3", "previous": "2"}})
    assert st == 200
    return expected


def versions_in(sm, project, sid):
    st, body = sm.call("GET", f"{project}/secrets/{sid}/versions?pageSize=100")
    assert st == 200, body
    return {int(v["name"].rsplit("/", 1)[1]): v["state"] for v in body.get("versions", [])}


def payload(sm, project, sid, v):
    import base64
    st, body = sm.call("GET", f"{project}/secrets/{sid}/versions/{v}:access")
    assert st == 200, body
    return base64.b64decode(body["payload"]["data"])


def drill(lb, tmp_path, settings, validation, environment, after_restore, env, backup_ok=True):
    """Backs up one config source by plan and drills it with `after_restore` run before the checks
    (`backup_ok=False`: the backup reports config problems, and its snapshot is drilled all the same)."""
    plan = tmp_path / "drill.yaml"
    envs = ", ".join(f"{k}: {v}" for k, v in environment.items())
    plan.write_text(f"""
repositories:
  main: {{url: {lb.repo}}}
sources:
  c:
    kind: config
    repository: main
    {settings}
    validation: [{validation}]
    environments:
      test: {{{envs}}}
drills:
  after_restore: "{after_restore}"
""")
    e = dict(env, LIFEBOAT_PLAN=str(plan))
    b = lb.run("backup", env=e, check=backup_ok)
    assert backup_ok or b.returncode == 1, b.stderr
    p = lb.run("--json", "drill", env=e, check=False)
    d = first_json(p.stdout)
    assert (p.returncode == 0) == d["passed"], p.stderr
    d["checks"] = {c["check"]: c for s in d["sources"] for c in s.get("result", {}).get("checks", [])}
    d["output"] = p.stdout + p.stderr
    return d


@pytest.fixture
def sm():
    with peers.SecretManagerFake(max_page=3) as fake:
        yield fake


def first_json(text):
    """The first JSON document of a --json output (a failing command adds its error as a second one)."""
    return json.JSONDecoder().raw_decode(text)[0]


def assert_no_secret(*texts):
    for t in texts:
        for value in PLANTED:
            assert value not in t, f"a planted secret value appeared in output: {t[:400]}"


def test_config_tree_syntax_problems_named_and_valid_tree_round_trips(lb, tmp_path):
    good = tmp_path / "cfg"
    make_config_tree(good)
    r = lb.run("backup", "config", good, "--name", "cfg")
    assert "0 problem(s)" in r.stdout
    # Broken files: each named with its line, stored anyway, exit 3.
    make_config_tree(tmp_path / "cfg2", broken=True)
    p = lb.run("backup", "config", tmp_path / "cfg2", "--name", "cfg2", check=False)
    assert p.returncode == 3, p.stderr
    err = p.stderr
    assert f"{tmp_path}/cfg2/broken/bad.json:3:" in err
    assert f"{tmp_path}/cfg2/broken/bad.yaml:4:" in err
    assert f"{tmp_path}/cfg2/broken/bad.toml:3:" in err
    assert f"{tmp_path}/cfg2/broken/bad.ini:3:" in err
    assert f"{tmp_path}/cfg2/broken/bad.env:2: not valid UTF-8" in err
    assert "problem" in err and "saved" in err
    j = lb.json("backup", "config", tmp_path / "cfg2", "--name", "cfg2", check=False)
    assert {(x["file"].rsplit("/", 1)[1], x["line"]) for x in j["problems"]} == {
        ("bad.json", 3), ("bad.yaml", 4), ("bad.toml", 3), ("bad.ini", 3), ("bad.env", 2)}
    assert j["validation"]["ok"] is False
    assert_no_secret(r.stdout, r.stderr, p.stdout, p.stderr, json.dumps(j))
    # The broken snapshot restores too (the last good one is not the only one kept).
    out = tmp_path / "out2"
    lb.run("restore", "config", "--name", "cfg2", "--target", out)
    assert (out / str(tmp_path / "cfg2/broken/bad.json").lstrip("/")).read_bytes() == (tmp_path / "cfg2/broken/bad.json").read_bytes()
    # The valid tree restores exactly; the files check reads it back and fails once tampered with.
    out = tmp_path / "out"
    r = lb.run("restore", "config", "--name", "cfg", "--target", out, "--check", "files", "--check", "syntax")
    assert "check files: ok" in r.stdout and "check syntax: ok" in r.stdout
    restored = out / str(good).lstrip("/")
    for f in good.rglob("*"):
        if f.is_file():
            assert (restored / f.relative_to(good)).read_bytes() == f.read_bytes()
    (restored / "app" / "deploy.yaml").write_text("service:\n  replicas: 3\n  image: app:1.2\n  oops: [\n")
    shutil.rmtree(tmp_path / "again", ignore_errors=True)
    # A dry run says what would change and writes nothing.
    d = lb.run("restore", "config", "--name", "cfg", "--target", out, "--dry-run")
    assert "would replace" in d.stdout and "deploy.yaml" in d.stdout
    assert "oops" in (restored / "app" / "deploy.yaml").read_text()


def test_plan_config_checks_commands_and_tampered_target(lb, tmp_path):
    cfg = tmp_path / "cfg"
    make_config_tree(cfg)
    settings = f"""paths: [{cfg}]
    checks:
      - {{match: "*.yaml", run: "grep -q replicas {{file}}"}}"""
    target = tmp_path / "drilled"
    d = drill(lb, tmp_path, settings, "files, syntax", {"target": target}, "true", {})
    assert d["passed"] is True and d["checks"]["files"]["ok"] and d["checks"]["syntax"]["ok"], d["output"]
    # Changed after the restore, before the checks: both read the target and fail.
    restored = target / str(cfg).lstrip("/") / "app" / "settings.json"
    shutil.rmtree(target)
    d = drill(lb, tmp_path, settings, "files, syntax", {"target": target}, f"printf '{{broken' > {restored}", {})
    assert d["passed"] is False
    assert d["checks"]["files"]["ok"] is False and "settings.json" in d["checks"]["files"]["detail"], d["checks"]
    assert d["checks"]["syntax"]["ok"] is False and "settings.json:1:" in d["checks"]["syntax"]["detail"], d["checks"]
    # Restore by plan into the environment, as the runbook's restore_config.py did.
    shutil.rmtree(target)
    r = lb.run("restore", "config", "--environment", "test", "--date", "2099-01-01", env={"LIFEBOAT_PLAN": str(tmp_path / "drill.yaml")})
    assert "check files: ok" in r.stdout and "check syntax: ok" in r.stdout
    # A check command that fails is a problem at backup time (the source fails, its snapshot is kept);
    # the command's output is not repeated.
    before = len(lb.json("snapshots"))
    (cfg / "app" / "deploy.yaml").write_text("service:\n  image: app:1.3\n")
    p = lb.run("backup", env={"LIFEBOAT_PLAN": str(tmp_path / "drill.yaml")}, check=False)
    assert p.returncode == 1 and "snapshot" in p.stderr and "saved" in p.stderr, p.stdout + p.stderr
    assert len(lb.json("snapshots")) == before + 1
    assert "deploy.yaml" in p.stdout + p.stderr and "grep -q replicas" in p.stdout + p.stderr


def test_syntax_compares_problem_by_problem_and_a_missing_part_fails_its_check(lb, tmp_path):
    """The backup recorded two problems (bad.json's syntax and a failing check command): one new broken
    file in the target fails `syntax` — a count (3 against 2 known, or 2 with the command's not
    reproduced) would have let it through. A snapshot without a git part fails `git` instead of
    passing with "0 mirror(s)"."""
    cfg = tmp_path / "cfg"
    make_config_tree(cfg)
    (cfg / "bad.json").write_text('{"a": \n')
    settings = f"""paths: [{cfg}]
    checks:
      - {{match: "*.yaml", run: "grep -q never-there {{file}}"}}"""
    target = tmp_path / "drilled"
    d = drill(lb, tmp_path, settings, "syntax", {"target": target}, "true", {}, backup_ok=False)
    assert d["checks"]["syntax"]["ok"], d["checks"]  # the known problems are expected: the restore is what was backed up
    assert "recorded by the backup" in d["checks"]["syntax"]["detail"]
    restored = target / str(cfg).lstrip("/") / "app" / "tool.toml"
    shutil.rmtree(target)
    d = drill(lb, tmp_path, settings, "syntax", {"target": target}, f"printf 'not = [toml' > {restored}", {}, backup_ok=False)
    assert not d["checks"]["syntax"]["ok"] and "new: " in d["checks"]["syntax"]["detail"] and \
        "tool.toml:1:" in d["checks"]["syntax"]["detail"], d["checks"]
    shutil.rmtree(target)
    d = drill(lb, tmp_path, f"paths: [{cfg}]", "files, git", {"target": target}, "true", {}, backup_ok=False)
    assert d["checks"]["files"]["ok"], d["checks"]
    assert not d["checks"]["git"]["ok"] and "holds no git part" in d["checks"]["git"]["detail"], d["checks"]


def test_a_check_command_never_runs_what_a_file_name_holds(lb, tmp_path):
    """A file named with $( ) and backticks, checked by commands that put {file} unquoted, inside "…"
    and inside '…': each check gets the name as it is, nothing in it runs; a placeholder inside $( )
    is refused before anything is read."""
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    pwned = tmp_path / "pwned"
    name = "x $(touch pwned) `touch pwned` 'q'.json"  # the checks run in tmp_path: pwned would appear there
    (cfg / name).write_text("{}\n")
    seen = tmp_path / "seen"
    for run in (f"printf %s {{file}} >> {seen}; echo >> {seen}", f"printf %s \"{{file}}\" >> {seen}; echo >> {seen}",
                f"printf %s '{{file}}' >> {seen}; echo >> {seen}"):
        lb.run("backup", "config", cfg, "--check", f"*.json={run}", "--force", cwd=tmp_path)
    assert not pwned.exists(), "a check ran a command from a file name"
    assert seen.read_text().splitlines() == [str(cfg / name)] * 3
    p = lb.run("backup", "config", cfg, "--check", "*.json=cat $(echo {file})", check=False)
    assert p.returncode != 0 and "{file} stands inside $( ) or backticks" in p.stderr, p.stderr


def test_plan_check_names_bad_config_settings(lb, tmp_path):
    plan = tmp_path / "lifeboat.yaml"
    plan.write_text(f"""
repositories:
  main: {{url: {lb.repo}}}
sources:
  c:
    kind: config
    repository: main
    secrets: prod
    checks: [{{match: "*.json"}}]
    only: [everything]
""")
    p = subprocess.run([str(LIFEBOAT), "--plan", str(plan), "plan", "check"], env=lb.env, capture_output=True, text=True)
    assert p.returncode != 0
    out = p.stdout + p.stderr
    assert "secrets" in out and "projects/PROJECT" in out and "checks[0]" in out and "only" in out, out


def test_git_mirror_with_branches_tags_notes_and_lfs(lb, tmp_path):
    src = make_git_repo(tmp_path / "src")
    cache = tmp_path / "cache"
    env = {"XDG_CACHE_HOME": str(cache)}
    r = lb.run("backup", "config", "--git", f"app={src}", "--name", "g", env=env)
    assert "1 LFS object" in r.stdout, r.stdout
    # Incremental: a new commit adds only its objects.
    (src / "app.yaml").write_text("replicas: 4\n")
    git(src, "commit", "-q", "-am", "scale")
    j = lb.json("backup", "config", "--git", f"app={src}", "--name", "g", env=env)
    assert j["summary"]["data_added_bytes"] < 20000, j["summary"]
    # On a machine without the mirror cache, the previous backup seeds it: still only new objects.
    shutil.rmtree(cache)
    (src / "app.yaml").write_text("replicas: 6\n")
    git(src, "commit", "-q", "-am", "scale again")
    j = lb.json("backup", "config", "--git", f"app={src}", "--name", "g", env=env)
    assert j["summary"]["data_added_bytes"] < 20000, j["summary"]
    out = tmp_path / "out"
    r = lb.run("restore", "config", "--name", "g", "--target", out, "--check", "git")
    assert "check git: ok" in r.stdout, r.stdout
    mirror = out / "git" / "app.git"
    git(mirror, "fsck", "--full", "--strict")
    assert refs_of(mirror) == {k: v for k, v in refs_of(src).items()}
    assert git(mirror, "notes", "show", "light").strip() == "deployed to production"
    oid = git(src, "lfs", "ls-files", "-l").split()[0]
    lfs = mirror / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
    assert lfs.read_bytes() == (src / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid).read_bytes()
    # Pushed to the environment's remote instead: a bare repository with every ref and the LFS object.
    remote = tmp_path / "remote.git"
    lb.run("restore", "config", "--name", "g", "--target", tmp_path / "o2", "--push", f"app={remote}", "--check", "git")
    assert refs_of(remote) == refs_of(src)
    assert (remote / "lfs" / "objects" / oid[:2] / oid[2:4] / oid).exists()
    git(remote, "fsck", "--full")
    # A restore never writes over an existing mirror.
    p = lb.run("restore", "config", "--name", "g", "--target", out, check=False)
    assert p.returncode == 1 and "exists and is not empty" in p.stderr
    # The check reads the restored mirror: a moved ref or a lost LFS object fails it.
    drilled = tmp_path / "drilled" / "git" / "app.git"
    for tamper in (f"git --git-dir={drilled} update-ref refs/heads/feature {refs_of(src)['refs/heads/main']}",
                   f"rm {drilled}/lfs/objects/{oid[:2]}/{oid[2:4]}/{oid}"):
        shutil.rmtree(tmp_path / "drilled", ignore_errors=True)
        d = drill(lb, tmp_path, f"git: ['app={src}']", "git", {"target": tmp_path / "drilled"}, tamper, env)
        assert d["passed"] is False and d["checks"]["git"]["ok"] is False, json.dumps(d)[:3000]
    # A mirror missing an old object (the first commit's certs.dat), every ref intact: it could not be
    # cloned, and the connectivity walk says which object.
    blob = git(src, "rev-parse", "v1:certs.dat").strip()
    (tmp_path / "unpack.sh").write_text(f"""set -e
cd {drilled}
mkdir -p ../packs && mv objects/pack/*.pack ../packs/ && rm -f objects/pack/*.idx
for p in ../packs/*.pack; do git --git-dir=. unpack-objects -q < "$p"; done
rm objects/{blob[:2]}/{blob[2:]}
""")
    shutil.rmtree(tmp_path / "drilled", ignore_errors=True)
    d = drill(lb, tmp_path, f"git: ['app={src}']", "git", {"target": tmp_path / "drilled"}, f"sh {tmp_path / 'unpack.sh'}", env)
    assert d["checks"]["git"]["ok"] is False and f"blob {blob} (certs.dat) is missing" in d["checks"]["git"]["detail"], d["checks"]


def test_git_credentials_stay_out_of_the_cache_and_the_snapshots(lb, tmp_path):
    """A repository behind HTTP basic auth (git http-backend): the backup gives the password per fetch,
    the mirror cache's config holds the URL without it, the cache is 0700 and the config 0600, and
    neither the restored mirror nor any output holds the password."""
    src = tmp_path / "work"
    src.mkdir()
    git(src, "init", "-q", "-b", "main")
    (src / "app.yaml").write_text("replicas: 3\n")
    git(src, "add", ".")
    git(src, "commit", "-q", "-m", "first")
    git(src, "tag", "-a", "v1", "-m", "release 1")
    bare = tmp_path / "srv" / "src.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(src), str(bare)], check=True)
    cache = tmp_path / "cache"
    env = {"XDG_CACHE_HOME": str(cache)}
    with peers.GitHttp(tmp_path / "srv") as server:
        url = server.url_with_credentials("src.git")
        r = lb.run("--json", "backup", "config", "--git", f"app={url}", "--name", "net", env=env)
        assert any(ok for _, _, ok in server.requests), "the server never saw the credentials"
        git(src, "commit", "-q", "--allow-empty", "-m", "second")
        git(src, "push", "-q", str(bare), "main")
        p = lb.run("--json", "backup", "config", "--git", f"app={url}", "--name", "net", env=env)
        denied = lb.run("backup", "config", "--git", f"app={server.url}/src.git", "--name", "anon",
                        env={"XDG_CACHE_HOME": str(tmp_path / "cache2")}, check=False)
        assert denied.returncode != 0
    mirrors = list((cache / "lifeboat" / "git").glob("*.git"))
    assert len(mirrors) == 1
    config = (mirrors[0] / "config").read_text()
    assert f"url = {server.url}/src.git" in config and server.password not in config, config
    assert (cache / "lifeboat" / "git").stat().st_mode & 0o777 == 0o700
    assert (cache / "lifeboat").stat().st_mode & 0o777 == 0o700
    assert (mirrors[0] / "config").stat().st_mode & 0o777 == 0o600
    out = tmp_path / "out"
    c = lb.run("restore", "config", "--name", "net", "--target", out, "--check", "git")
    assert "check git: ok" in c.stdout
    assert refs_of(out / "git" / "app.git") == refs_of(bare)
    for f in (out / "git" / "app.git").rglob("*"):
        if f.is_file():
            assert server.password.encode() not in f.read_bytes(), f
    for text in (r.stdout, r.stderr, p.stdout, p.stderr, c.stdout, c.stderr, denied.stdout, denied.stderr,
                 lb.run("--json", "snapshots").stdout):
        assert server.password not in text


def test_concurrent_backups_of_one_git_repository_both_succeed(lb, tmp_path):
    """A plan backup and a manual one of the same repository at once share one cache mirror: the second
    waits for the first and then fetches what is new; both succeed, each snapshot restores whole."""
    src = make_git_repo(tmp_path / "src")
    for round in range(3):
        env = dict(lb.env, XDG_CACHE_HOME=str(tmp_path / f"cache{round}"))
        procs = [subprocess.Popen([str(LIFEBOAT), "backup", "config", "--git", f"app={src}", "--name", f"c{round}{i}"],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
        for pr in procs:
            out, err = pr.communicate(timeout=300)
            assert pr.returncode == 0, f"round {round}: {err}"
    for name in ("c00", "c01", "c20"):
        c = lb.run("restore", "config", "--name", name, "--target", tmp_path / f"out-{name}", "--check", "git")
        assert "check git: ok" in c.stdout
        assert refs_of(tmp_path / f"out-{name}" / "git" / "app.git") == refs_of(src)


def test_git_bad_input(lb, tmp_path):
    p = lb.run("backup", "config", "--git", tmp_path / "nope", check=False)
    assert p.returncode == 1 and "is not a git repository" in p.stderr
    src = make_git_repo(tmp_path / "src")
    (src / ".git" / "rebase-merge").mkdir()
    (src / ".git" / "rebase-merge" / "head-name").write_text("refs/heads/main\n")
    p = lb.run("backup", "config", "--git", src, check=False, env={"XDG_CACHE_HOME": str(tmp_path / "c")})
    assert p.returncode == 1 and "middle of a rebase" in p.stderr, p.stderr
    assert lb.json("snapshots") == []


def test_secrets_round_trip_into_another_project(lb, tmp_path, sm):
    expected = seed_secrets(sm, "projects/prod")
    env = sm.env()
    r = lb.run("backup", "config", "--secrets", "projects/prod", "--read-disabled", "--name", "sec", env=env)
    assert "10 secret(s), 30 version(s) (1 disabled, 1 destroyed)" in r.stdout, r.stdout
    assert "without the payload" not in r.stdout, r.stdout
    # The disabled version was enabled only to be read: it is disabled again.
    assert versions_in(sm, "projects/prod", "app-secret-3")[2] == "DISABLED"
    j = lb.json("restore", "config", "--name", "sec", "--secrets", "projects/staging", "--check", "secrets", env=env)
    assert j["checks"][0]["ok"], j["checks"]
    outputs = [r.stdout, r.stderr, json.dumps(j)]
    for sid, states in expected.items():
        assert versions_in(sm, "projects/staging", sid) == states
        for v, s in states.items():
            if s == "ENABLED":
                assert payload(sm, "projects/staging", sid, v) == payload(sm, "projects/prod", sid, v)
    st, sec5 = sm.call("GET", "projects/staging/secrets/app-secret-5")
    assert sec5["versionAliases"] == {"current": "3", "previous": "2"} and sec5["labels"] == {"team": "platform", "n": "5"}
    assert sec5["annotations"] == {"owner": "ops"}
    mapping = {(s["secret"], v["from"], v["to"]) for s in j["restored"]["secrets"] for v in s["versions"]}
    assert ("projects/staging/secrets/app-secret-4", 1, 1) in mapping
    # A change in one restored project (staging) does not touch a restore into another (qa), whose
    # check reads qa back and passes. (A check failing on a changed state or payload:
    # test_secrets_check_fails_when_target_differs.)
    sm.call("POST", "projects/staging/secrets/app-secret-7/versions/3:disable")
    p = lb.run("--json", "restore", "config", "--name", "sec", "--secrets", "projects/qa", "--check", "secrets", env=env)
    assert first_json(p.stdout)["checks"][0]["ok"]
    # Dry run: nothing written.
    before = sm.call("GET", "/_fake/stats")[1]["secrets"]
    d = lb.run("restore", "config", "--name", "sec", "--secrets", "projects/dry", "--dry-run", env=env)
    assert "would create secret projects/dry/secrets/app-secret-0 with 3 version(s)" in d.stdout
    assert sm.call("GET", "/_fake/stats")[1]["secrets"] == before
    outputs += [p.stdout, p.stderr, d.stdout, d.stderr]
    assert_no_secret(*outputs)


def test_a_disabled_version_is_not_read_unless_asked(lb, tmp_path, sm):
    """By default a DISABLED version is never enabled: its metadata is stored, not its payload, and a
    restore brings it back disabled (and empty, which the output says); the secrets check passes."""
    seed_secrets(sm, "projects/prod")
    env = sm.env()
    proxy = peers.FaultyHttpProxy(int(sm.endpoint.rsplit(":", 1)[1]),
                                  rules=[("POST", ":enable", "403", None)])  # an enable would fail the backup
    try:
        r = lb.run("backup", "config", "--secrets", "projects/prod", "--name", "sec",
                   env=dict(env, LIFEBOAT_SECRETMANAGER_ENDPOINT=proxy.endpoint))
    finally:
        proxy.close()
    assert not [h for h in proxy.hits if ":enable" in h[1]], "a disabled version was enabled"
    assert "(1 disabled, 1 destroyed); 1 disabled version(s) stored without the payload" in r.stdout, r.stdout
    assert versions_in(sm, "projects/prod", "app-secret-3")[2] == "DISABLED"
    j = lb.json("restore", "config", "--name", "sec", "--secrets", "projects/staging", "--check", "secrets", env=env)
    assert j["checks"][0]["ok"], j["checks"]
    assert versions_in(sm, "projects/staging", "app-secret-3") == {1: "ENABLED", 2: "DISABLED", 3: "ENABLED"}
    s3 = [s for s in j["restored"]["secrets"] if s["secret"].endswith("/app-secret-3")][0]
    assert s3["disabled_without_payload"] == [2]


def test_a_backup_killed_while_it_holds_a_disabled_version_enabled_never_leaves_it_enabled(lb, tmp_path, sm):
    """kill -9 while the revoked version 2 of app-secret-3 is enabled to be read (the proxy holds its
    access for seconds): the version is ENABLED in the source for the moment, and the next backup
    disables it again before reading anything, records it DISABLED, and says what it did."""
    import threading
    seed_secrets(sm, "projects/prod")
    env = dict(sm.env(), XDG_STATE_HOME=str(tmp_path / "state"))
    reading = threading.Event()

    def hold():
        reading.set()
        time.sleep(8)

    proxy = peers.FaultyHttpProxy(int(sm.endpoint.rsplit(":", 1)[1]),
                                  rules=[("GET", "app-secret-3/versions/2:access", hold, 1)])
    try:
        env["LIFEBOAT_SECRETMANAGER_ENDPOINT"] = proxy.endpoint
        p = subprocess.Popen([str(LIFEBOAT), "backup", "config", "--secrets", "projects/prod", "--read-disabled", "--name", "sec"],
                             env=dict(lb.env, **env), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert reading.wait(60), "the backup never read the disabled version"
        p.kill()
        p.wait()
        assert versions_in(sm, "projects/prod", "app-secret-3")[2] == "ENABLED", "the window was not reproduced"
        r = lb.run("--json", "backup", "config", "--secrets", "projects/prod", "--read-disabled", "--name", "sec",
                   env=env, check=False)
    finally:
        proxy.close()
    assert versions_in(sm, "projects/prod", "app-secret-3")[2] == "DISABLED", "the revoked version was left enabled"
    out = first_json(r.stdout)
    assert out["summary"]["secrets"]["disabled"] == 1, out["summary"]
    assert any("app-secret-3/versions/2 was left enabled" in w and "disabled again" in w for w in out["warnings"]), out["warnings"]
    assert r.returncode == 3, (r.returncode, r.stderr)  # saved, with a warning to read
    assert list((tmp_path / "state" / "lifeboat" / "secret-versions").iterdir()) == []
    # A later backup has nothing to complete: clean.
    r = lb.run("backup", "config", "--secrets", "projects/prod", "--read-disabled", "--name", "sec",
               env=dict(env, LIFEBOAT_SECRETMANAGER_ENDPOINT=sm.endpoint))
    assert "left enabled" not in r.stdout + r.stderr


def test_secrets_check_fails_when_target_differs(lb, tmp_path, sm):
    seed_secrets(sm, "projects/prod")
    env = sm.env()
    lb.run("backup", "config", "--secrets", "projects/prod", "--name", "sec", env=env)
    plan = tmp_path / "lifeboat.yaml"
    plan.write_text(f"""
repositories:
  main: {{url: {lb.repo}}}
sources:
  sec:
    kind: config
    repository: main
    secrets: projects/prod
    validation: [secrets]
    environments:
      test: {{secrets: projects/drill}}
drills:
  after_restore: "true"
""")
    penv = dict(env, LIFEBOAT_PLAN=str(plan))
    d = lb.run("--json", "drill", env=penv)
    assert first_json(d.stdout)["passed"] is True, d.stdout[:2000]
    # Tamper: the after_restore hook disables a restored version that the backup has enabled.
    hook = tmp_path / "tamper.py"
    hook.write_text(f"""
import http.client, json
c = http.client.HTTPConnection("127.0.0.1", {sm.port})
c.request("GET", "/v1/projects/drill2/secrets/app-secret-6/versions?pageSize=10", headers={{"Authorization": "Bearer t"}})
newest = json.loads(c.getresponse().read())["versions"][0]["name"]
c.request("POST", "/v1/" + newest + ":disable", body="{{}}", headers={{"Authorization": "Bearer t"}})
print(c.getresponse().status)
""")
    plan.write_text(plan.read_text().replace("projects/drill}", "projects/drill2}").replace('"true"', f'"python3 {hook}"'))
    p = lb.run("--json", "drill", env=penv, check=False)
    assert p.returncode != 0
    d = first_json(p.stdout)
    checks = [c for s in d["sources"] for c in s.get("result", {}).get("checks", [])]
    assert checks and checks[0]["ok"] is False and "app-secret-6" in checks[0]["detail"], checks
    assert_no_secret(p.stdout, p.stderr)
    # Tamper: a restored enabled version's payload changed at rest (the fake's test control).
    hook.write_text(f"""
import http.client
c = http.client.HTTPConnection("127.0.0.1", {sm.port})
c.request("POST", "/_fake/set_payload?version=projects/drill3/secrets/app-secret-8/versions/2", body=b"not-the-payload")
assert c.getresponse().status == 200
""")
    plan.write_text(plan.read_text().replace("projects/drill2}", "projects/drill3}"))
    p = lb.run("--json", "drill", env=penv, check=False)
    assert p.returncode == 1
    checks = [c for s in first_json(p.stdout)["sources"] for c in s.get("result", {}).get("checks", [])]
    assert checks[0]["ok"] is False and "app-secret-8 version 2: the payload differs from the backup" in checks[0]["detail"], checks
    assert_no_secret(p.stdout, p.stderr)
    # Tamper: annotations changed, and a version added to a secret the restore created.
    for project, request, words in (
            ("drill4", ("PATCH", "secrets/app-secret-2?updateMask=annotations", {"annotations": {"owner": "someone-else"}}),
             "app-secret-2: annotations differ from the backup"),
            ("drill5", ("POST", "secrets/app-secret-2:addVersion", {"payload": {"data": "eA=="}}),
             "app-secret-2: version 4 is in the target and not in the backup")):
        method, path, body = request
        hook.write_text(f"""
import http.client, json
c = http.client.HTTPConnection("127.0.0.1", {sm.port})
c.request("{method}", "/v1/projects/{project}/{path}", body=json.dumps({body!r}), headers={{"Authorization": "Bearer t"}})
assert c.getresponse().status == 200
""")
        plan.write_text(re.sub(r"projects/drill\d*}", f"projects/{project}}}", plan.read_text()))
        p = lb.run("--json", "drill", env=penv, check=False)
        assert p.returncode == 1, (project, p.stdout[-3000:], p.stderr)
        checks = [c for s in first_json(p.stdout)["sources"] for c in s.get("result", {}).get("checks", [])]
        assert checks[0]["ok"] is False and words in checks[0]["detail"], (project, checks)


def test_secret_manager_refusals(lb, tmp_path, sm):
    seed_secrets(sm, "projects/prod")
    p = lb.run("backup", "config", "--secrets", "projects/prod", check=False, env=sm.env(token="denied"))
    assert p.returncode == 1 and "PERMISSION_DENIED" in p.stderr and "Secret Manager" in p.stderr, p.stderr
    # 429 beyond the retries: a clear error, nothing committed.
    sm.call("POST", "/_fake/fail?status=429&count=50")
    p = lb.run("backup", "config", "--secrets", "projects/prod", check=False, env=dict(sm.env(), LIFEBOAT_RETRY_ATTEMPTS="3"))
    assert p.returncode == 1 and "RESOURCE_EXHAUSTED" in p.stderr, p.stderr
    assert lb.json("snapshots") == []
    # A payload whose CRC32C does not match what the API sent: the backup fails, nothing committed.
    while sm.call("GET", "projects/prod/secrets")[0] == 429:  # drain what the failed run left queued
        pass
    sm.call("POST", "/_fake/corrupt?count=1")
    p = lb.run("backup", "config", "--secrets", "projects/prod", check=False, env=sm.env())
    assert p.returncode == 1 and "does not match its CRC32C" in p.stderr, p.stderr
    assert lb.json("snapshots") == []
    assert_no_secret(p.stdout, p.stderr)
    # A few 429s are retried and the backup completes.
    while sm.call("GET", "projects/prod/secrets")[0] == 429:  # drain what the failed run left queued
        pass
    sm.call("POST", "/_fake/fail?status=429&count=2")
    lb.run("backup", "config", "--secrets", "projects/prod", env=sm.env())
    assert len(lb.json("snapshots")) == 1


def test_plan_config_source_no_secret_in_report_or_metrics(lb, tmp_path, sm):
    seed_secrets(sm, "projects/prod")
    cfg = tmp_path / "cfg"
    make_config_tree(cfg)
    src = make_git_repo(tmp_path / "src")
    plan = tmp_path / "lifeboat.yaml"
    plan.write_text(f"""
repositories:
  main: {{url: {lb.repo}}}
sources:
  config:
    kind: config
    repository: main
    paths: [{cfg}]
    git: ["app={src}"]
    secrets: projects/prod
    validation: [files, syntax, git, secrets]
    retention: {{daily: 90}}
    environments:
      test: {{target: {tmp_path / 'drill'}, secrets: projects/test}}
      production: {{target: {tmp_path / 'prod'}, secrets: projects/prod-restored}}
""")
    env = dict(sm.env(), LIFEBOAT_PLAN=str(plan), XDG_CACHE_HOME=str(tmp_path / "cache"))
    outs = []
    p = lb.run("backup", env=env)
    outs += [p.stdout, p.stderr]
    p = lb.run("--json", "drill", env=env)
    outs += [p.stdout, p.stderr]
    d = first_json(p.stdout)
    assert d["passed"] is True, d
    assert {c["check"] for s in d["sources"] for c in s["result"]["checks"] if c["ok"]} == {"files", "syntax", "git", "secrets"}
    p = lb.run("restore", "config", "--environment", "production", "--only", "secrets", env=env)
    outs += [p.stdout, p.stderr]
    assert "secret projects/prod-restored/secrets/app-secret-0 (created)" in p.stdout
    assert not (tmp_path / "prod").exists()
    p = lb.run("report", env=env)
    outs += [p.stdout, p.stderr]
    p = lb.run("metrics", env=env)
    assert 'source="config"' in p.stdout, p.stdout
    outs += [p.stdout, p.stderr]
    assert_no_secret(*outs)
    # The repository itself never holds a plaintext payload.
    for f in Path(lb.repo).rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            for v in PLANTED:
                assert v.encode() not in data, f"plaintext secret in {f}"


def test_git_over_the_network_with_lfs_from_its_server(lb, tmp_path):
    """A URL source goes through libgit2's smart protocol (git daemon on loopback) and its LFS objects
    come from the Git LFS server its .lfsconfig names (giftless, JWT in the URL): the second backup
    fetches only new objects, the restored mirror has every ref and the LFS object, the token is never
    shown, and an LFS object the server lacks is named (exit 3)."""
    src = make_git_repo(tmp_path / "srv" / "src")
    with peers.Giftless(tmp_path / "lfs") as lfs:
        lfs_url = lfs.lfs_url("eyewear", "src")
        token = lfs.token("eyewear")
        git(src, "config", "-f", ".lfsconfig", "lfs.url", lfs_url)
        git(src, "add", ".lfsconfig")
        git(src, "commit", "-q", "-m", "lfs server")
        git(src, "remote", "add", "origin", "git://127.0.0.1:1/src")
        git(src, "lfs", "push", "--all", "origin")
        with git_daemon(tmp_path / "srv") as served:
            env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
            url = f"{served}/src"
            r = lb.run("--json", "backup", "config", "--git", f"app={url}", "--name", "net", env=env)
            assert first_json(r.stdout)["warnings"] == []
            (src / "app.yaml").write_text("replicas: 9\n")
            git(src, "commit", "-q", "-am", "nine")
            p = lb.run("--json", "backup", "config", "--git", f"app={url}", "--name", "net", env=env)
            assert first_json(p.stdout)["summary"]["data_added_bytes"] < 20000
            out = tmp_path / "out"
            c = lb.run("restore", "config", "--name", "net", "--target", out, "--check", "git")
            assert "check git: ok" in c.stdout
            mirror = out / "git" / "app.git"
            git(mirror, "fsck", "--full")
            assert refs_of(mirror) == refs_of(src)
            assert (mirror / "HEAD").read_text().strip() == "ref: refs/heads/main"
            oid = git(src, "lfs", "ls-files", "-l").split()[0]
            assert (mirror / "lfs" / "objects" / oid[:2] / oid[2:4] / oid).read_bytes() == \
                (src / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid).read_bytes()
            snaps = lb.run("--json", "snapshots")
            assert_no_secret(r.stdout, r.stderr, p.stdout, c.stdout, snaps.stdout)
            for text in (r.stdout, r.stderr, p.stdout, p.stderr, c.stdout, snaps.stdout):
                assert token not in text
            # An LFS object the server does not have: named, the snapshot saved, exit 3.
            (src / "other.bin").write_bytes(os.urandom(1000))
            git(src, "add", "other.bin")
            git(src, "commit", "-q", "-m", "not pushed to the LFS server")
            p = lb.run("--json", "backup", "config", "--git", f"app={url}", "--name", "net", env=env, check=False)
            assert p.returncode == 3, p.stderr
            warnings = first_json(p.stdout)["warnings"]
            assert len(warnings) == 1 and "LFS object" in warnings[0] and "404" in warnings[0], warnings
            assert token not in p.stdout + p.stderr


def test_an_lfs_object_larger_than_the_memory_bound_streams_from_its_server(lb, tmp_path):
    """A 320 MiB LFS object (random bytes) comes from the Git LFS server into the mirror piece by
    piece, hashed as it arrives: the backup's peak resident memory stays under 200 MiB as the kernel
    counts it, less than the object, so a download held whole would fail. The restored mirror holds
    the object byte for byte and the git check passes."""
    mib = 320
    src = tmp_path / "srv" / "src"
    src.mkdir(parents=True)
    git(src, "init", "-q", "-b", "main")
    git(src, "lfs", "install", "--local")
    git(src, "lfs", "track", "*.bin")
    with open(src / "weights.bin", "wb") as f:
        for _ in range(mib // 16):
            f.write(os.urandom(16 << 20))
    with peers.Giftless(tmp_path / "lfs") as lfs:
        git(src, "config", "-f", ".lfsconfig", "lfs.url", lfs.lfs_url("eyewear", "big"))
        git(src, "add", ".")
        git(src, "commit", "-q", "-m", "weights")
        git(src, "remote", "add", "origin", "git://127.0.0.1:1/src")
        git(src, "lfs", "push", "--all", "origin")
        oid = git(src, "lfs", "ls-files", "-l").split()[0]
        local = src / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
        with git_daemon(tmp_path / "srv") as served:
            env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
            r, rss = lb.run_measured("--json", "backup", "config", "--git", f"app={served}/src", "--name", "big", env=env)
            assert first_json(r.stdout)["warnings"] == []
            assert rss < 200, f"backup of a {mib} MiB LFS object peaked at {rss:.0f} MiB"
    out = tmp_path / "out"
    c, rss = lb.run_measured("restore", "config", "--name", "big", "--target", out, "--check", "git")
    assert "check git: ok" in c.stdout
    assert rss < 200, f"restore of a {mib} MiB LFS object peaked at {rss:.0f} MiB"
    restored = out / "git" / "app.git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
    assert restored.stat().st_size == local.stat().st_size == mib << 20
    assert subprocess.run(["cmp", "-s", restored, local]).returncode == 0


def test_an_append_key_backs_up_config_and_git_and_an_admin_restores_them(lb, tmp_path):
    """Files and a git mirror (with LFS) backed up twice by an append key; the second stores only what
    changed (compared with its own cache); it is refused the restore; an admin restores and checks it."""
    from conftest import Lifeboat
    lb.run("key", "add", "--role", "append", "--kdf-memory-kib", "1024", "--kdf-iterations", "1",
           env={"LIFEBOAT_NEW_PASSWORD": "append pw"})
    app = Lifeboat(lb.repo, "append pw")
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    src = make_git_repo(tmp_path / "src")
    conf = tmp_path / "etc"
    conf.mkdir()
    (conf / "app.yaml").write_text("replicas: 3\n")
    app.run("backup", "config", "--git", f"app={src}", "--name", "g", conf, env=env)
    (src / "app.yaml").write_text("replicas: 4\n")
    git(src, "commit", "-q", "-am", "scale")
    j = app.json("backup", "config", "--git", f"app={src}", "--name", "g", conf, env=env)
    assert j["summary"]["data_added_bytes"] < 20000, j["summary"]
    p = app.run("restore", "config", "--name", "g", "--target", tmp_path / "nope", check=False, env=env)
    assert p.returncode == 13 and "append key" in p.stderr, p.stderr
    out = tmp_path / "out"
    r = lb.run("restore", "config", "--name", "g", "--target", out, "--check", "git")
    assert "check git: ok" in r.stdout, r.stdout
    assert refs_of(out / "git" / "app.git") == refs_of(src)
    assert (out / str(conf).lstrip("/") / "app.yaml").read_text() == "replicas: 3\n"
