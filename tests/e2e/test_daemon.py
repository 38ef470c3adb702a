"""lifeboat daemon against real peers: catch-up of missed runs, retries with backoff, the MongoDB
follower in-process, notifications to loopback receivers (JSON webhook, Slack-style webhook, SMTP,
command), /metrics and the status page, and a clean stop on SIGTERM."""
import http.server
import json
import signal
import socketserver
import threading
import time
import urllib.request

import peers


class Receiver(http.server.BaseHTTPRequestHandler):
    got = []

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Receiver.got.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


class SMTP(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) to accept mail from libcurl."""
    mails = []

    def handle(self):
        self.wfile.write(b"220 test ESMTP\r\n")
        data, rcpt, sender = None, [], None
        while True:
            line = self.rfile.readline()
            if not line:
                return
            if data is not None:
                if line == b".\r\n":
                    SMTP.mails.append({"from": sender, "to": rcpt, "data": b"".join(data).decode()})
                    data = None
                    self.wfile.write(b"250 queued\r\n")
                else:
                    data.append(line)
                continue
            cmd = line.decode().strip()
            up = cmd.upper()
            if up.startswith(("EHLO", "HELO")):
                self.wfile.write(b"250 test\r\n")
            elif up.startswith("MAIL FROM:"):
                sender = cmd[10:]
                self.wfile.write(b"250 ok\r\n")
            elif up.startswith("RCPT TO:"):
                rcpt.append(cmd[8:])
                self.wfile.write(b"250 ok\r\n")
            elif up == "DATA":
                data = []
                self.wfile.write(b"354 go\r\n")
            elif up == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


def wait_for(cond, timeout=40, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_daemon_schedules_catches_up_retries_follows_notifies_and_stops(lb, tmp_path):
    Receiver.got, SMTP.mails = [], []
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    smtp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), SMTP)
    for s in (web, smtp):
        threading.Thread(target=s.serve_forever, daemon=True).start()
    with peers.FerretDB(tmp_path / "ferretdb") as mongo:
        c = mongo.client()
        c.eyewear_ml.frames.insert_many([{"_id": i} for i in range(50)])
        assets = tmp_path / "assets"
        assets.mkdir()
        (assets / "a.txt").write_text("asset")
        dead = f"mongodb://127.0.0.1:{peers.free_port()}/?serverSelectionTimeoutMS=500"
        hook = f"http://127.0.0.1:{web.server_port}"
        plan = tmp_path / "lifeboat.yaml"
        plan.write_text(f"""
repositories:
  main: {{url: "{lb.repo}"}}
sources:
  assets:
    kind: files
    paths: ["{assets}"]
    schedule: {{full: "0 2 * * *", incremental: "0 * * * *"}}  # the hourly one was missed
  eyewear-mongo:
    kind: mongodb
    uri: "{mongo.uri}"
    schedule: {{full: "0 3 * * *", continuous: true, interval: 1s}}
  broken:
    kind: mongodb
    uri: "{dead}"
    schedule: {{full: "0 * * * *"}}
notifications:
  - {{type: webhook, url: "{hook}/hook", on: [failure, success]}}
  - {{type: slack, url: "{hook}/slack", on: [failure]}}
  - {{type: smtp, url: "smtp://127.0.0.1:{smtp.server_address[1]}", from: lifeboat@test, to: [oncall@test]}}
  - {{type: command, command: "cat >> {tmp_path / 'events.jsonl'}", on: [success]}}
""")
        state = tmp_path / "state"
        state.mkdir()
        two_hours_ago = int((time.time() - 7200) * 1e9)
        (state / "state.json").write_text(json.dumps({"sources": {"assets": {"last_run_ns": two_hours_ago},
                                                                  "broken": {"last_run_ns": two_hours_ago}}}))
        port = peers.free_port()
        d = lb.popen("--plan", plan, "daemon", "--state-dir", state, "--listen", f"127.0.0.1:{port}",
                     "--retry-base", "1s", "--retries", "2")
        try:
            # Missed runs while "down": assets and broken run at once; broken fails and is retried.
            wait_for(lambda: any(p == "/hook" and b["ok"] and "assets" in b["title"] for p, b in Receiver.got), what="assets run")
            wait_for(lambda: sum(1 for p, b in Receiver.got if p == "/hook" and not b["ok"] and "broken" in b["title"]) >= 3,
                     what="broken retried twice")
            assert any(p == "/slack" and "broken backup failed" in b["text"] for p, b in Receiver.got)
            wait_for(lambda: any("broken backup failed" in m["data"] for m in SMTP.mails), what="mail")
            assert SMTP.mails[0]["to"] == ["<oncall@test>"]
            # The follower runs inside the daemon.
            c.eyewear_ml.frames.insert_one({"_id": "new"})
            wait_for(lambda: any(s["source"] == "mongodb-oplog" and s["metadata"]["entries"] > 0
                                 for s in lb.json("snapshots")), what="an oplog slice")
            metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
            assert 'lifeboat_stored_bytes{source="assets"}' in metrics and "lifeboat_daemon_source_failures" in metrics
            page = urllib.request.urlopen(f"http://127.0.0.1:{port}/").read().decode()
            assert "<h2>Schedule</h2>" in page and "broken" in page
            assert urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz").read() == b"ok\n"
            dom = peers.chromium_screenshot(f"http://127.0.0.1:{port}/", tmp_path / "status.png")
            assert "<h2>Schedule</h2>" in dom and "eyewear-mongo" in dom
            assert peers.png_colours(tmp_path / "status.png") > 5
        finally:
            d.send_signal(signal.SIGTERM)
            try:
                out, err = d.communicate(timeout=60)
            except Exception:
                d.kill()
                out, err = d.communicate()
                raise AssertionError(f"the daemon did not stop on SIGTERM:\n{out}\n{err}")
        assert d.returncode == 0, out + err
        assert "daemon stopped" in out
        st = json.loads((state / "state.json").read_text())["sources"]
        assert st["assets"]["last_ok_ns"] > two_hours_ago and st["broken"]["last_error"]
        events = [json.loads(x) for x in (tmp_path / "events.jsonl").read_text().splitlines()]
        assert any(e["ok"] and e["event"] == "backup" for e in events)
        # Exactly one scheduled assets run happened (the catch-up): never two at once, none doubled.
        assert len([s for s in lb.json("snapshots") if s["source"] == "files"]) == 1
    web.shutdown()
    smtp.shutdown()


def test_report_notification_and_plan_sections(lb, tmp_path):
    Receiver.got = []
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "x").write_text("x")
    plan = tmp_path / "lifeboat.yaml"
    plan.write_text(f"""
repositories: {{main: {{url: "{lb.repo}"}}}}
sources:
  assets: {{kind: files, paths: ["{assets}"], schedule: {{full: "0 2 * * *", incremental: "0 * * * *"}}}}
reports: {{schedule: "0 7 * * *"}}
drills: {{schedule: "0 4 1 * *", environment: test, sources: [assets]}}
notifications:
  - {{type: slack, url: "http://127.0.0.1:{web.server_port}/slack", on: [report]}}
""")
    lb.run("--plan", plan, "backup")
    lb.run("--plan", plan, "report", "--notify")
    reports = [b for p, b in Receiver.got if p == "/slack"]
    assert len(reports) == 1 and "Lifeboat report" in reports[0]["text"] and "assets" in reports[0]["text"]
    plan.write_text(plan.read_text().replace("sources: [assets]", "sources: [nothing]").replace("0 4 1 * *", "0 4 1 * * *"))
    p = lb.run("--plan", plan, "plan", "check", check=False)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "drills.sources: no source named nothing" in p.stderr and "drills.schedule" in p.stderr
    web.shutdown()
