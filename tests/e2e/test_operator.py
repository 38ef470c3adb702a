"""The commands an operator types first, under stress (issue 38): `latest` is the newest data, never a
drill's record, and never a guess between sources; times are read one way and impossible ones refused;
pins keep their notes, in listings and in copies; status is a health check; every command reads the
plan; errors name what to do; stored bytes are one figure; the plan schedules maintenance. Each
expectation is written out here."""
import datetime
import json
import os

from conftest import Lifeboat


def plan_with_files(tmp_path, lb, src, rpo="1h", repo=None, hook=None):
    """A plan of one files source `assets` (checks hashes and counts; environment test restores into
    tmp_path/drill); returns the environment that names it."""
    plan = tmp_path / "lifeboat.yaml"
    plan.write_text(f"""
objectives: {{rpo: {rpo}, rto: 4h}}
repositories:
  main: {{url: {repo or lb.repo}}}
sources:
  assets:
    kind: files
    paths: [{src}]
    validation: [hashes, counts]
    environments:
      test: {{target: {tmp_path / "drill"}}}
""" + (f"drills: {{after_restore: {json.dumps(hook)}}}\n" if hook else ""))
    return {"LIFEBOAT_PLAN": str(plan)}


def test_latest_is_the_newest_data_not_a_drill_record_nor_a_guess_between_sources(lb, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("alpha\n")
    env = plan_with_files(tmp_path, lb, src)
    lb.run("backup", env=env)
    assert lb.run("drill", env=env, check=False).returncode == 0
    assert lb.json("snapshots")[-1]["source"] == "drill", "the drill's record is the newest snapshot"
    # `restore latest` after the drill restores the data.
    lb.run("restore", "latest", "--target", tmp_path / "r1")
    assert (tmp_path / "r1" / str(src).lstrip("/") / "a.txt").read_text() == "alpha\n"
    # A second source's snapshot: `latest` no longer guesses, it names both and asks.
    lb.run("backup", "--stdin-from-command", "--", "echo", "dump")
    p = lb.run("restore", "latest", "--target", tmp_path / "r2", check=False)
    assert p.returncode != 0 and "--source" in p.stderr, p.stderr
    assert "files (1 snapshot)" in p.stderr and "stdin (1 snapshot)" in p.stderr, p.stderr
    assert not (tmp_path / "r2").exists(), "nothing is written when the choice is not clear"
    lb.run("restore", "latest", "--source", "files", "--target", tmp_path / "r2")
    assert (tmp_path / "r2" / str(src).lstrip("/") / "a.txt").exists()
    # `ls latest` follows the same rule; a drill record is still reachable by ID or --source drill.
    assert lb.run("ls", "latest", check=False).returncode != 0
    record = [s for s in lb.json("snapshots") if s["source"] == "drill"][0]
    assert lb.run("ls", "latest", "--source", "drill").returncode == 0
    assert lb.run("ls", record["short_id"]).returncode == 0


def test_times_are_read_one_way_and_impossible_ones_are_refused(lb, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("alpha\n")
    snap = lb.json("backup", src)["snapshot_id"]
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")  # the tests run in UTC
    # A day alone means the end of that day, for --at as for --date: today's backup is found.
    r = lb.json("restore", "--at", today, "--target", tmp_path / "today")
    assert r["snapshot"]["id"] == snap
    for bad in (["--at", "2026-02-30"], ["--at", ""], ["--at", "2026-04-31 10:00"]):
        p = lb.run("restore", *bad, "--target", tmp_path / "x", check=False)
        assert p.returncode != 0, bad
        assert "2026" in p.stderr or "needs a value" in p.stderr, (bad, p.stderr)
    # --at beside a snapshot ID: the two name different things; refused.
    p = lb.run("restore", snap[:8], "--at", today, "--target", tmp_path / "x", check=False)
    assert p.returncode != 0 and "--at" in p.stderr, p.stderr
    # --date takes a day; both --at and --date is refused.
    p = lb.run("restore", "models", "--date", f"{today} 10:00", check=False)
    assert p.returncode != 0 and "--date takes a day" in p.stderr, p.stderr
    p = lb.run("restore", "models", "--date", today, "--at", today, check=False)
    assert p.returncode != 0 and "not both" in p.stderr, p.stderr
    assert not (tmp_path / "x").exists()


def test_pins_keep_their_notes_in_listings_and_copies(lb, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("alpha\n")
    first = lb.json("backup", src)["snapshot_id"]
    (src / "b.txt").write_text("beta\n")
    lb.json("backup", src)
    lb.run("pin", first[:8], "--note", "audit 2026-Q4")
    listed = {s["id"]: s for s in lb.json("snapshots")}
    assert listed[first]["pinned"] and listed[first]["pin_note"] == "audit 2026-Q4", listed[first]
    assert "(pinned: audit 2026-Q4)" in lb.run("snapshots").stdout
    # The copy in a second repository is pinned too, with the note; a second copy adds nothing.
    second = Lifeboat(tmp_path / "second")
    second.run("init")
    out = lb.json("copy", "--to", second.repo, env={"LIFEBOAT_TO_PASSWORD": "correct horse"})
    assert out["pins_copied"] == 1, out
    copies = second.json("snapshots")
    pinned = [s for s in copies if s["pinned"]]
    assert len(copies) == 2 and len(pinned) == 1 and pinned[0]["pin_note"] == "audit 2026-Q4", copies
    out = lb.json("copy", "--to", second.repo, env={"LIFEBOAT_TO_PASSWORD": "correct horse"})
    assert out["pins_copied"] == 0 and out["snapshots_present"] == 2, out


def test_status_is_a_health_check_with_documented_exit_codes(lb, tmp_path):
    import time
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("alpha\n")
    plan = tmp_path / "lifeboat.yaml"
    env = {"LIFEBOAT_PLAN": str(plan)}

    def write(rpo="1h", repo=None, hook=None):
        plan_with_files(tmp_path, lb, src, rpo, repo, hook)

    def status():
        p = lb.run("--json", "status", env=env, check=False)
        return p.returncode, json.loads(p.stdout.splitlines()[0]), p

    write()
    rc, st, p = status()
    assert rc == 5 and st["sources"][0]["problems"] == ["never backed up"], p.stdout + p.stderr
    lb.run("backup", env=env)
    assert lb.run("drill", env=env, check=False).returncode == 0
    rc, st, p = status()
    assert rc == 0 and st["healthy"] and st["sources"][0]["health"] == "ok", p.stdout + p.stderr
    # The newest point older than the RPO objective (1 s): 5, and why.
    time.sleep(1.2)  # the objective is about time passing: the point must be older than 1 s
    write(rpo="1s")
    rc, st, p = status()
    assert rc == 5 and st["sources"][0]["health"] == "stale" and "over the RPO objective" in st["sources"][0]["problems"][0], p.stdout
    text = lb.run("status", env=env, check=False)
    assert text.returncode == 5 and "! assets: the newest restorable point" in text.stdout, text.stdout
    # A drill that fails its checks: 6 (more severe than stale).
    write(hook=f"rm -rf {tmp_path / 'drill'}")
    assert lb.run("drill", env=env, check=False).returncode != 0
    rc, st, p = status()
    assert rc == 6 and st["sources"][0]["health"] == "drill_failed", p.stdout
    # A repository that cannot be read: 7; the table stays a table, the reason whole below it.
    write(repo=tmp_path / "gone")
    rc, st, p = status()
    assert rc == 7 and st["sources"][0]["health"] == "unreachable" and not st["healthy"], p.stdout
    text = lb.run("status", env=env, check=False)
    lines = text.stdout.splitlines()
    assert text.returncode == 7 and lines[1].split()[:3] == ["assets", "files", "unreachable"], text.stdout
    assert lines[-1].startswith("! assets: repository main cannot be read"), text.stdout


def on_terminal(lb, args, answers, env_drop=("LIFEBOAT_PASSWORD",)):
    """Runs lifeboat with a pseudo-terminal as stdin, typing each answer after each prompt."""
    import os
    import pty
    import subprocess
    import select
    from conftest import LIFEBOAT
    env = {k: v for k, v in lb.env.items() if k not in env_drop}
    master, slave = pty.openpty()
    p = subprocess.Popen([str(LIFEBOAT), *map(str, args)], stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env)
    os.close(slave)
    fd = p.stderr.fileno()
    err = ""
    for answer in answers:
        # Each prompt ("…password: ", "enter it again: ") goes to stderr; answer once it is there.
        while not err.endswith(": "):
            r, _, _ = select.select([fd], [], [], 20)
            assert r, f"no prompt: {err}"
            ch = os.read(fd, 1).decode()  # unbuffered: select sees what is left
            if not ch:
                break  # exited before asking again
            err += ch
        if p.poll() is not None:
            break
        os.write(master, (answer + "\n").encode())
        err += "\n"
    out, rest = p.communicate(timeout=60)
    os.close(master)
    return p.returncode, out.decode(), err + rest.decode()


def test_a_new_password_is_typed_twice_and_a_missing_one_is_named(lb, tmp_path):
    other = Lifeboat(tmp_path / "new-repo")
    rc, _, err = on_terminal(other, ["init"], ["first-try", "first-typo"])
    assert rc != 0 and "differ" in err and "enter it again" in err, err
    assert not (tmp_path / "new-repo" / "config").exists(), "nothing is created when the two differ"
    rc, out, err = on_terminal(other, ["init"], ["same-pw", "same-pw"])
    assert rc == 0, err
    assert other.run("snapshots", env={"LIFEBOAT_PASSWORD": "same-pw"}).returncode == 0
    # key add without a terminal and without LIFEBOAT_NEW_PASSWORD: the error names that variable.
    p = lb.run("key", "add", check=False)
    assert p.returncode != 0 and "LIFEBOAT_NEW_PASSWORD" in p.stderr, p.stderr
    # key add on a terminal: the new password twice.
    rc, _, err = on_terminal(lb, ["key", "add"], ["pw-two", "pw-tw0"], env_drop=())
    assert rc != 0 and "differ" in err, err
    assert len(lb.json("key", "list")) == 1
    rc, _, err = on_terminal(lb, ["key", "add"], ["pw-two", "pw-two"], env_drop=())
    assert rc == 0 and len(lb.json("key", "list")) == 2, err
    assert lb.run("snapshots", env={"LIFEBOAT_PASSWORD": "pw-two"}).returncode == 0


def test_every_command_reads_the_plan(lb, tmp_path):
    """With LIFEBOAT_PLAN (and no -r), init creates the plan's repositories (a copy sharing its
    primary's keys), and snapshots, ls, stats, check, backup PATH and restore latest use them; -r takes a
    repository's name; a plan with several asks which."""
    import subprocess
    from conftest import LIFEBOAT
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("alpha\n")
    plan = tmp_path / "lifeboat.yaml"
    plan.write_text(f"""
repositories:
  main: {{url: {tmp_path / "main"}, password_env: MAIN_PW}}
  dr: {{url: {tmp_path / "dr"}, password_env: DR_PW, copy_of: main}}
sources:
  assets:
    kind: files
    repository: main
    paths: [{src}]
""")
    env = {k: v for k, v in lb.env.items() if k not in ("LIFEBOAT_REPOSITORY", "LIFEBOAT_PASSWORD")}
    env.update(LIFEBOAT_PLAN=str(plan), MAIN_PW="main-secret", DR_PW="dr-secret")

    def run(*args, check=True):
        p = subprocess.run([str(LIFEBOAT), *map(str, args)], env=env, capture_output=True, text=True)
        assert not check or p.returncode == 0, f"{args}: {p.stdout} {p.stderr}"
        return p

    out = json.loads(run("--json", "init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1").stdout)
    assert [(r["repository"], r["created"]) for r in out["repositories"]] == [("main", True), ("dr", True)], out
    assert out["repositories"][1]["keys_from"] == "main"
    again = json.loads(run("--json", "init").stdout)
    assert not any(r["created"] for r in again["repositories"]), again
    run("backup")  # the plan's sources
    run("-r", "main", "backup", src)  # a path, into the named repository
    # Several repositories: a command that needs one asks which, naming them.
    p = run("snapshots", check=False)
    assert p.returncode != 0 and "(dr, main)" in p.stderr and "-r NAME" in p.stderr, p.stderr
    listed = json.loads(run("--json", "-r", "main", "snapshots").stdout)
    assert len(listed) == 2 and {s["source"] for s in listed} == {"files"}, listed
    run("-r", "main", "ls", "latest")
    run("-r", "main", "stats")
    run("-r", "main", "check")
    run("-r", "main", "restore", "latest", "--target", tmp_path / "out")
    assert (tmp_path / "out" / str(src).lstrip("/") / "a.txt").read_text() == "alpha\n"
    # The plan's backup was copied to dr already (copy_of); `copy --to dr` (a name of the plan's, its
    # password the plan's DR_PW) brings the path's backup, sealed: the copy shares the keys.
    copied = json.loads(run("--json", "-r", "main", "copy", "--to", "dr").stdout)
    assert (copied["snapshots_copied"], copied["snapshots_present"], copied["mode"]) == (1, 1, "sealed"), copied
    assert len(json.loads(run("--json", "-r", "dr", "snapshots").stdout)) == 2


def test_the_errors_a_person_meets_first(lb, tmp_path):
    # A mistyped command or flag: "did you mean".
    p = lb.run("snapshot", check=False)
    assert p.returncode == 1 and "did you mean: snapshot → snapshots" in p.stderr, p.stderr
    p = lb.run("snapshots", "--tagg", "x", check=False)
    assert p.returncode == 1 and "--tagg → --tag" in p.stderr, p.stderr
    p = lb.run("restore", "mongodb", "--to-dri", "x", check=False)
    assert p.returncode == 1 and "--to-dri → --to-dir" in p.stderr and "lifeboat restore mongodb --help" in p.stderr, p.stderr
    # Under --json the parse error is JSON too, wherever --json stands.
    for args in (["--json", "snapshot"], ["snapshots", "--tagg", "x", "--json"]):
        p = lb.run(*args, check=False)
        err = json.loads(p.stdout.splitlines()[0])
        assert p.returncode == 1 and err["code"] == "invalid_argument" and err["exit_code"] == 1 and "did you mean" in err["error"], p.stdout
    # A repository path that is a file, or a directory that is not a repository: 10, "no repository".
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "a-dir").mkdir()
    (tmp_path / "a-dir" / "notes.txt").write_text("mine")
    for where in (tmp_path / "a-file", tmp_path / "a-dir"):
        p = lb.run("-r", where, "snapshots", check=False)
        assert p.returncode == 10 and "no repository at" in p.stderr, (where, p.stderr)
    # init does not take over a directory holding something else (nor a file).
    for where in (tmp_path / "a-dir", tmp_path / "a-file"):
        p = lb.run("-r", where, "init", check=False)
        assert p.returncode == 1 and "not a repository" in p.stderr or "is a file" in p.stderr, (where, p.stderr)
    assert sorted(x.name for x in (tmp_path / "a-dir").iterdir()) == ["notes.txt"]
    # A subcommand's help shows the global options.
    p = lb.run("restore", "--help")
    assert p.returncode == 0 and "--password-file" in p.stdout and "-r,--repo" in p.stdout and "--json" in p.stdout, p.stdout


def test_stored_bytes_are_one_figure_and_failing_says_why(lb, tmp_path):
    """A source whose data another backup stored first: `stats`, `report` and `metrics` give it the same
    stored bytes (every blob its snapshots reference, once), not the few bytes its own backup added."""
    import re
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.bin").write_bytes(os.urandom(100_000))
    lb.run("backup", src)  # outside the plan: the plan source's backup then adds almost nothing
    env = plan_with_files(tmp_path, lb, src)
    out = lb.json("backup", env=env)
    added = out["backups"][0]["result"]["summary"]["data_stored_bytes"]
    stats = lb.json("stats", "--tag", "source:assets")["unique_stored_bytes"]
    report = {s["source"]: s for s in lb.json("report", env=env)["sources"]}["assets"]["stored_bytes"]
    metrics = lb.run("metrics", env=env).stdout
    metric = int(re.search(r'^lifeboat_stored_bytes\{source="assets"\} (\d+)$', metrics, re.M).group(1))
    assert stats == report == metric > 100_000 > added, (stats, report, metric, added)
    # A repository that cannot be read: the report's state says why, its table keeps its columns.
    (tmp_path / "lifeboat.yaml").write_text((tmp_path / "lifeboat.yaml").read_text().replace(str(lb.repo), str(tmp_path / "gone")))
    rep = lb.json("report", env=env)
    assert rep["sources"][0]["state"].startswith("failing: ") and "no repository" in rep["sources"][0]["state"], rep["sources"]
    text = lb.run("report", env=env).stdout
    assert any(l.split()[:3] == ["assets", "files", "failing"] for l in text.splitlines()), text
    assert "assets: failing: " in text and "no repository" in text, text


def test_a_drill_with_no_restorable_point_says_so(lb, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    env = plan_with_files(tmp_path, lb, src)  # never backed up
    p = lb.run("drill", "--record", tmp_path / "drill.md", env=env, check=False)
    assert p.returncode != 0
    md = (tmp_path / "drill.md").read_text()
    assert "RPO NOT met (1 source(s) with no restorable point)" in md and "worst 0ms" not in md, md


def test_the_plan_schedules_maintenance_and_status_shows_it(lb, tmp_path):
    import re
    import signal
    import time
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.bin").write_bytes(os.urandom(200_000))
    plan = tmp_path / "lifeboat.yaml"
    env = {"LIFEBOAT_PLAN": str(plan)}

    def write(maintenance):
        plan.write_text(f"""
repositories:
  main:
    url: {lb.repo}
    maintenance: {maintenance}
sources:
  assets:
    kind: files
    paths: [{src}]
""")
    # A malformed subset is refused at its line.
    write('{check: "0 5 * * *", read_data_subset: 2/3}')
    p = lb.run("plan", "check", env=env, check=False)
    assert p.returncode != 0 and "repositories.main.maintenance.read_data_subset" in p.stderr and "1/T" in p.stderr, p.stderr
    write('{prune: "0 4 * * 0", check: "* * * * *", read_data_subset: 1/1}')
    lb.run("plan", "check", env=env)
    lb.run("backup", env=env)
    # Run now, as the daemon and the emitted units do; recorded in the repository, one record per kind.
    for _ in range(2):
        runs = json.loads(lb.run("--json", "maintenance", "check", env=env).stdout)["runs"]
        assert runs[0]["ok"] and runs[0]["result"]["read_data_subset"] == "1/1" and runs[0]["result"]["packs_read"] >= 1, runs
    records = [s for s in lb.json("snapshots") if s["source"] == "maintenance"]
    assert len(records) == 1 and "check" in records[0]["tags"], records
    lb.run("restore", "latest", "--target", tmp_path / "r")  # a record is never `latest`
    st = json.loads(lb.run("--json", "status", env=env).stdout)
    repo = st["repositories"][0]
    assert repo["last_check"]["ok"] and "last_prune" not in repo and st["healthy"], st
    text = lb.run("status", env=env).stdout
    assert re.search(r"repository main: prune never \(cron 0 4 \* \* 0\); check \S+ ok \(reads 1/1", text), text
    # The units and manifests run it as emitted.
    units = lb.run("emit", "systemd", env=env).stdout
    assert "### lifeboat-main-check.timer" in units and "maintenance check main" in units and "### lifeboat-main-prune.timer" in units
    import yaml
    jobs = [d for d in yaml.safe_load_all(lb.run("emit", "k8s", env=env).stdout) if d and d["kind"] == "CronJob"]
    args = [j["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"] for j in jobs]
    assert ["--plan", "/etc/lifeboat/lifeboat.yaml", "maintenance", "check", "main"] in args, args
    # Damage in a pack: the check fails, its record says so, status exits 7 naming it, the report warns.
    pack = next(p for p in (lb.repo / "data").rglob("*") if p.is_file())
    original = pack.read_bytes()
    data = bytearray(original)
    data[len(data) // 2] ^= 0xFF
    pack.write_bytes(bytes(data))
    p = lb.run("maintenance", "check", env=env, check=False)
    assert p.returncode != 0 and "check found" in p.stderr, p.stderr
    p = lb.run("--json", "status", env=env, check=False)
    st = json.loads(p.stdout.splitlines()[0])
    assert p.returncode == 7 and not st["repositories"][0]["last_check"]["ok"], p.stdout
    assert any("the last check" in w for w in lb.json("report", env=env)["warnings"])
    pack.write_bytes(original)  # mended, for the daemon's run
    # The daemon runs the schedule: the check due at the next minute is run and recorded; so is a
    # backup of a source whose path is gone, which fails: status reads the daemon's run history.
    before = json.loads(lb.run("--json", "status", env=env, check=False).stdout.splitlines()[0])["repositories"][0]["last_check"]
    plan.write_text(plan.read_text() + f"""  gone:
    kind: files
    paths: [{tmp_path / "no-such-dir"}]
    schedule: {{full: "* * * * *"}}
""")
    state = tmp_path / "state"
    d = lb.popen("--plan", plan, "daemon", "--state-dir", state)
    try:
        deadline = time.time() + 90
        while True:
            p = lb.run("--json", "status", "--state-dir", state, env=env, check=False)
            st = json.loads(p.stdout.splitlines()[0])
            gone = {s["source"]: s for s in st["sources"]}["gone"]
            if st["repositories"][0]["last_check"] != before and "last_run_failed" in gone:
                break
            assert time.time() < deadline and d.poll() is None, f"the daemon did not run the scheduled jobs: {st}"
            time.sleep(1)
        assert st["repositories"][0]["last_check"]["ok"], st
        assert p.returncode == 5 and any("the last scheduled backup" in x and "failed" in x for x in gone["problems"]), gone
    finally:
        d.send_signal(signal.SIGTERM)
        d.communicate(timeout=60)


def test_checks_judge_the_backed_up_paths_not_the_directories_above_them(lb, tmp_path):
    """A restore into a target that holds more (a restore into "/" meets a whole system): the
    directories above the backed-up path are only the way down to it, so what else they hold and
    their times are not the backup's to judge; inside the backed-up path every change still counts."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("alpha\n")
    env = plan_with_files(tmp_path, lb, src)
    lb.run("backup", env=env)
    above = tmp_path / "drill" / str(tmp_path).lstrip("/")  # the restored path's parent, inside the target
    hook = tmp_path / "hook.sh"
    hook.write_text(f"mkdir -p {above}/other && echo x > {above}/other/file && touch -d 2001-01-01 {above}\n")
    plan = tmp_path / "lifeboat.yaml"
    plan.write_text(plan.read_text() + f"drills: {{after_restore: 'sh {hook}'}}\n")
    d = json.loads(lb.run("--json", "drill", env=env).stdout.splitlines()[0])
    checks = {c["check"]: c for s in d["sources"] for c in s["result"]["checks"]}
    assert d["passed"] and all(c["ok"] for c in checks.values()), checks
    assert "other" not in checks["counts"]["detail"], checks
    # The same change one level down, inside the backed-up directory, fails `hashes`.
    hook.write_text(f"touch -d 2001-01-01 {above}/src\n")
    p = lb.run("--json", "drill", env=env, check=False)
    d = json.loads(p.stdout.splitlines()[0])
    checks = {c["check"]: c for s in d["sources"] for c in s["result"]["checks"]}
    assert p.returncode != 0 and not checks["hashes"]["ok"] and "modification time" in checks["hashes"]["detail"], checks
