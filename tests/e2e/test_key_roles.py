"""Keys with roles through the CLI: an append key backs up (incrementally, deduplicated) and is refused
every read and every deletion with exit 13 naming its role; a restore key reads and never deletes; an
admin key restores everything the append key wrote, exactly."""
import json
import os

from conftest import Lifeboat, tree_digest

FORBIDDEN = 13


def roles(lb, tmp_path):
    """The admin `lb` adds an append key bound to host "backup-1" and a restore key; returns the
    append and restore clients (each with its own writer cache)."""
    lb.run("key", "add", "--role", "append", "--host", "backup-1", "--kdf-memory-kib", "1024", "--kdf-iterations", "1",
           env={"LIFEBOAT_NEW_PASSWORD": "append pw"})
    lb.run("key", "add", "--role", "restore", "--kdf-memory-kib", "1024", "--kdf-iterations", "1",
           env={"LIFEBOAT_NEW_PASSWORD": "restore pw"})
    app = Lifeboat(lb.repo, "append pw")
    app.env["LIFEBOAT_CACHE_DIR"] = str(tmp_path / "append-cache")
    rst = Lifeboat(lb.repo, "restore pw")
    return app, rst


def refused(client, *args, **kw):
    p = client.run(*args, check=False, **kw)
    assert p.returncode == FORBIDDEN, f"{args}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p.stderr


def test_append_key_backs_up_but_never_reads_or_deletes(lb, tmp_path):
    app, rst = roles(lb, tmp_path)
    keys = {k["role"]: k for k in lb.json("key", "list")}
    assert set(keys) == {"admin", "append", "restore"}
    assert keys["append"]["host"] == "backup-1"

    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    for i in range(20):
        (src / f"f{i:02}").write_bytes(os.urandom(50_000))
    (src / "sub" / "big").write_bytes(os.urandom(3 << 20))
    first = app.json("backup", src, "--host", "backup-1")
    assert first["summary"]["files_new"] == 21
    # Its next backup compares with its own cache: unchanged files are not read again.
    (src / "f03").write_bytes(b"changed")
    second = app.json("backup", src, "--host", "backup-1")
    s = second["summary"]
    assert (s["files_new"], s["files_changed"], s["files_unmodified"]) == (0, 1, 20), s

    # Every read and every deletion is refused, naming the role and what to use instead.
    snap = second["snapshot_id"]
    for args in (("restore", "latest", "--target", tmp_path / "nope"), ("ls", snap[:8]), ("check",),
                 ("check", "--read-data"), ("diff", first["snapshot_id"][:8], snap[:8]), ("stats",),
                 ("forget", "--keep-last", "1"), ("forget", snap[:8]), ("prune",), ("repair", "index"),
                 ("unlock", "--remove-all")):
        err = refused(app, *args)
        assert "append key" in err and "admin" in err, (args, err)
    assert not (tmp_path / "nope").exists()
    err = refused(app, "key", "add", env={"LIFEBOAT_NEW_PASSWORD": "x"})
    assert "append key" in err
    # --json carries the code too.
    p = app.run("--json", "restore", "latest", "--target", tmp_path / "nope", check=False)
    assert p.returncode == FORBIDDEN and json.loads(p.stdout)["code"] == "forbidden"
    # It lists only the snapshots it wrote, and says so.
    mine = app.run("snapshots")
    assert "append key" in mine.stderr and snap[:8] in mine.stdout

    # The admin key sees both snapshots and restores the second exactly; check --read-data reads all.
    listed = lb.json("snapshots")
    assert [x["id"] for x in listed] == [first["snapshot_id"], snap]
    assert all(x["trusted"] and x["writer"] == keys["append"]["id"] for x in listed)
    table = lb.run("snapshots").stdout
    assert "Writer" in table and keys["append"]["id"][:8] in table  # who wrote each, in the table too
    target = tmp_path / "restored"
    lb.run("restore", snap[:8], "--target", target, "--verify")
    assert tree_digest(target / str(src).lstrip("/")) == tree_digest(src)
    lb.run("check", "--read-data")

    # The restore key reads and restores, and is refused every deletion.
    target2 = tmp_path / "restored-by-restore-key"
    rst.run("restore", "latest", "--target", target2)
    assert tree_digest(target2 / str(src).lstrip("/")) == tree_digest(src)
    rst.run("check", "--read-data")
    for args in (("forget", snap[:8]), ("prune",), ("repair", "index")):
        err = refused(rst, *args)
        assert "restore key" in err, (args, err)
    assert len(lb.json("snapshots")) == 2


def test_append_key_with_lost_cache_stores_nothing_twice(lb, tmp_path):
    app, _ = roles(lb, tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    (src / "data").write_bytes(os.urandom(2 << 20))
    app.json("backup", src)
    import shutil
    shutil.rmtree(tmp_path / "append-cache")
    again = app.json("backup", src)
    assert again["summary"]["files_new"] == 1  # no parent: read again ...
    # ... but its 2 MiB are not stored twice: what is new is directory metadata (trees) alone.
    assert again["summary"]["data_added_bytes"] < 4096, again["summary"]


def test_init_adds_an_append_key_for_backup_hosts(tmp_path):
    boat = Lifeboat(tmp_path / "repo")
    (tmp_path / "append.pw").write_text("for the backup hosts\n")
    out = boat.json("init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1", "--append-password-file",
                    tmp_path / "append.pw", "--append-host", "db-1")
    assert out["append_key"]
    listed = {k["id"]: k for k in boat.json("key", "list")}
    assert listed[out["append_key"]]["role"] == "append" and listed[out["append_key"]]["host"] == "db-1"
    assert listed[out["key"]]["role"] == "admin"
    app = Lifeboat(tmp_path / "repo", "for the backup hosts")
    app.env["LIFEBOAT_CACHE_DIR"] = str(tmp_path / "cache")
    src = tmp_path / "src"
    src.mkdir()
    (src / "x").write_text("x")
    app.run("backup", src, "--host", "db-1")
    assert len(boat.json("snapshots")) == 1
    # A backup claiming another host than the key is bound to is kept but never offered, and said why.
    app.run("backup", src, "--host", "db-2")
    assert len(boat.json("snapshots")) == 1
    listed = boat.json("snapshots", "--untrusted")
    assert [x["trusted"] for x in listed] == [True, False]
    assert "bound to host db-1" in listed[1]["untrusted"]
    assert "UNTRUSTED" in boat.run("snapshots", "--untrusted").stdout
    restored = tmp_path / "r"
    boat.run("restore", "latest", "--target", restored)  # the trusted one
    assert (restored / str(src).lstrip("/") / "x").read_text() == "x"
    boat.run("forget", listed[1]["id"][:8])  # by ID, an untrusted one can be forgotten
    assert len(boat.json("snapshots", "--untrusted")) == 1


def test_a_repository_written_before_roles_still_opens(tmp_path):
    """tests/fixtures/repo-before-roles was written by lifeboat before key roles (v1 key file, v1 index
    files sealed whole, no capsules): today's lifeboat restores both snapshots exactly, checks every
    byte, backs up into it, and gives it keys with roles."""
    import shutil
    from pathlib import Path
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "repo-before-roles"
    shutil.copytree(fixture / "repo", tmp_path / "repo")
    old = Lifeboat(tmp_path / "repo", "before roles")
    snaps = old.json("snapshots")
    assert [s["id"][:8] for s in snaps] == ["bb8e92a2", "0177d317"]
    old.run("check", "--read-data")
    keys = old.json("key", "list")
    assert [k["role"] for k in keys] == ["admin"]  # a key file of version 1 is an admin key
    second = tmp_path / "second"
    old.run("restore", "0177d317", "--target", second)
    def contents(root):  # the fixture's checkout has its own mtimes: compare names and bytes
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    assert contents(second / "tmp" / "fx" / "src") == contents(fixture / "source")
    first = tmp_path / "first"
    old.run("restore", "bb8e92a2", "--target", first)
    assert (first / "tmp/fx/src/file2.txt").read_text() == "line 2\n" * 600
    # Today's lifeboat writes into it (new index files carry ID lists) and adds keys with roles.
    src = tmp_path / "src"
    src.mkdir()
    (src / "new").write_bytes(os.urandom(100_000))
    old.run("backup", src)
    app, _ = roles(old, tmp_path)
    warned = app.run("backup", fixture / "source", "--host", "backup-1")
    assert "predate key roles" in warned.stderr  # its old index files hold no ID list it can read
    app.run("backup", src, "--host", "backup-1")
    old.run("check", "--read-data")
    assert len(old.json("snapshots")) == 5


def test_append_key_backs_up_with_storage_credentials_that_cannot_delete(tmp_path):
    """The backup host's S3 credentials allow put, get and list only (a versitygw user with a bucket
    policy): backups with an append key succeed again and again, and the server's access log shows
    not one delete from that user. The admin's credentials restore everything."""
    import peers
    with peers.VersityGW(tmp_path / "vgw", iam=True) as gw:
        gw.client().create_bucket(Bucket="backups")
        gw.create_user("backup-host", "backup-host-secret")
        gw.grant("backups", "backup-host", ["s3:PutObject", "s3:GetObject", "s3:ListBucket"])
        url = f"s3:{gw.endpoint}/backups/repo"
        admin = Lifeboat(url, "admin pw")
        admin.env.update(gw.env())
        admin.env["LIFEBOAT_RETRY_BASE_MS"] = "5"
        admin.init()
        admin.run("key", "add", "--role", "append", "--kdf-memory-kib", "1024", "--kdf-iterations", "1",
                  env={"LIFEBOAT_NEW_PASSWORD": "append pw"})
        app = Lifeboat(url, "append pw")
        app.env.update({"AWS_ACCESS_KEY_ID": "backup-host", "AWS_SECRET_ACCESS_KEY": "backup-host-secret",
                        "LIFEBOAT_CACHE_DIR": str(tmp_path / "cache"), "LIFEBOAT_RETRY_BASE_MS": "5"})
        # The credentials really cannot delete: the server refuses the user.
        import boto3
        user = boto3.client("s3", endpoint_url=gw.endpoint, aws_access_key_id="backup-host",
                            aws_secret_access_key="backup-host-secret", region_name="us-east-1")
        try:
            user.delete_object(Bucket="backups", Key="repo/config")
            raise AssertionError("the user could delete")
        except user.exceptions.ClientError as e:
            assert "AccessDenied" in str(e)
        probe = len(gw.requests("backup-host"))  # the refused delete above
        src = tmp_path / "src"
        src.mkdir()
        for round_ in range(3):
            (src / f"f{round_}").write_bytes(os.urandom(300_000))
            app.run("backup", src)
        ops = gw.requests("backup-host")[probe:]
        assert ops, "the access log names the user's requests"
        assert {op for _, op, _ in ops} <= {"s3_PutObject", "s3_GetObject", "s3_ListObjectsV2", "s3_HeadObject",
                                            "s3_ListObjects", "s3_DeleteObject"}, ops
        assert not [o for o in ops if "Delete" in o[1]], [o for o in ops if "Delete" in o[1]]
        # Its finished backups hold nothing up: an admin's exclusive check runs at once, then prune
        # clears the released locks and their markers (three backups: three locks, three markers).
        admin.run("check", "--read-data")
        assert len(admin.json("snapshots")) == 3
        out = tmp_path / "out"
        admin.run("restore", "latest", "--target", out)
        assert tree_digest(out / str(src).lstrip("/")) == tree_digest(src)
        locks = gw.dir / "data" / "backups" / "repo" / "locks"
        assert len(list(locks.glob("*"))) == 6
        assert admin.json("prune")["locks_removed"] == 6
        assert not list((gw.dir / "data" / "backups" / "repo" / "locks").glob("*"))


def test_plan_backups_with_an_append_key_leave_verification_retention_and_copies_to_an_admin(lb, tmp_path):
    """A backup host runs the plan with an append key: its sources are backed up; reading back,
    retention and the second-region copy are not done, and each says so (in the result and as a
    warning); an admin's backup of the same plan then applies them."""
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "model.bin").write_bytes(os.urandom(200_000))
    plan = tmp_path / "lifeboat.yaml"
    plan.write_text(f"""
version: 1
objectives: {{rpo: 1h, rto: 4h}}
repositories:
  main:
    url: {lb.repo}
    password_env: LIFEBOAT_PASSWORD
  region2:
    url: {tmp_path / "region2"}
    copy_of: main
sources:
  assets:
    kind: files
    paths: ["{assets}"]
    schedule: {{full: "30 2 * * *"}}
    retention: {{last: 1}}
""")
    app, _ = roles(lb, tmp_path)
    app.env["LIFEBOAT_PLAN"] = str(plan)
    for _ in range(2):
        out = app.json("backup")
        assert out["failed"] == 0, out
        result = out["backups"][0]["result"]
        for field in ("verified", "retention", "copies"):
            assert "append key" in result[field]["skipped"], result
        assert any("retention" in w for w in result["warnings"]) and any("copies" in w for w in result["warnings"])
    assert not (tmp_path / "region2").exists()
    lb.env["LIFEBOAT_PLAN"] = str(plan)
    assert len(lb.json("snapshots", "--untrusted")) == 2
