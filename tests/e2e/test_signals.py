"""SIGINT/SIGTERM are honoured wherever a command waits: a network transfer that hangs, the sleep between
retries, a command whose output is being backed up, and (with a second signal) a driver call that does
not return. Each case exits 130 within a bound far below what the wait would have lasted."""
import os
import signal
import socket
import threading
import time
from contextlib import contextmanager

import pytest

from conftest import Lifeboat


def wait_until(what, cond, timeout=20.0):
    """Waits for an event the test can observe (polled), never for a fixed time."""
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.01)


def children(pid):
    """Names of the live processes whose parent is pid."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = open(f"/proc/{entry}/stat").read()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        if int(rest[1]) == pid:
            out.append(name)
    return out


def signal_handled(pid, sig):
    """True once `sig` is no longer pending for the process: its handler has run."""
    bit = 1 << (sig - 1)
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    return not (int(fields["SigPnd"], 16) & bit or int(fields["ShdPnd"], 16) & bit)


class Server:
    def __init__(self, port):
        self.port = port
        self.received = threading.Event()  # a client sent bytes (a request, or a driver's hello)
        self.answered = threading.Event()  # a request got the answer


@contextmanager
def silent_server(answer: bytes = b""):
    """Accepts connections on 127.0.0.1 and reads them; sends `answer` to each request (nothing: it
    hangs, as a server that stopped responding does). Yields a Server whose events say what happened."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    stop = threading.Event()
    conns = []

    def serve():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except OSError:
                continue
            conns.append(c)
            threading.Thread(target=talk, args=(c,), daemon=True).start()

    def talk(c):
        c.settimeout(0.2)
        while not stop.is_set():
            try:
                data = c.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            server.received.set()
            if answer and b"\r\n\r\n" in data:
                try:
                    c.sendall(answer)
                except OSError:
                    return
                server.answered.set()

    t = threading.Thread(target=serve, daemon=True)
    server = Server(srv.getsockname()[1])
    t.start()
    try:
        yield server
    finally:
        stop.set()
        t.join()
        for c in conns:
            c.close()
        srv.close()


def signal_and_time(p, ready, sig=signal.SIGTERM, bound=5.0):
    """Signals p once `ready()` holds (the wait under test has begun) and times its exit."""
    wait_until("the command to reach the wait", lambda: ready() or p.poll() is not None)
    assert p.poll() is None, f"the command ended before the signal: {p.communicate()}"
    sent = time.monotonic()
    p.send_signal(sig)
    try:
        p.wait(timeout=bound)
    except Exception:
        p.kill()
        raise AssertionError(f"no exit within {bound} s of the signal: {p.communicate()}")
    return time.monotonic() - sent


def s3_boat(tmp_path, port, env=None):
    b = Lifeboat(f"s3:http://127.0.0.1:{port}/bucket/repo")
    b.env.update({"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}, **(env or {}))
    return b


def test_sigterm_ends_a_transfer_the_server_never_answers(tmp_path):
    # libcurl alone would wait 30 s (its stall limit), then retry: the signal must end the transfer
    # (one that has moved nothing for a second).
    with silent_server() as server:
        p = s3_boat(tmp_path, server.port).popen("snapshots")
        took = signal_and_time(p, server.received.is_set, bound=4)
        out, err = p.communicate()
    assert p.returncode == 130, err
    assert took < 4 and "interrupted" in err


def test_sigterm_ends_the_wait_between_retries(tmp_path):
    unavailable = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
    with silent_server(unavailable) as server:
        # The wait after the first failure is drawn from [2.5 s, 10 s] (the cap): as after a few failures
        # in production. Signalled once the first answer is sent, the command must not sleep the rest.
        p = s3_boat(tmp_path, server.port, {"LIFEBOAT_RETRY_BASE_MS": "20000"}).popen("snapshots")
        took = signal_and_time(p, server.answered.is_set, bound=1.5)
        out, err = p.communicate()
    assert p.returncode == 130, err
    assert took < 1.5


def test_sigterm_stops_backing_up_a_command_that_runs_on(lb, tmp_path):
    p = lb.popen("backup", "--stdin-from-command", "--", "sleep", "60")
    took = signal_and_time(p, lambda: "sleep" in children(p.pid), bound=4)
    out, err = p.communicate()
    assert p.returncode == 130, err
    assert took < 4
    assert lb.json("snapshots") == [], "an interrupted backup saves no snapshot"
    lb.run("check")


def test_a_second_signal_ends_a_call_that_does_not_return(lb, tmp_path):
    # The MongoDB driver waits for a server that accepted the connection but never answers; the first
    # signal is noted (the driver is not interrupted), the second ends the process at once.
    with silent_server() as server:
        p = lb.popen("backup", "mongodb", "--uri",
                     f"mongodb://127.0.0.1:{server.port}/?connectTimeoutMS=60000&serverSelectionTimeoutMS=60000")
        wait_until("the driver's hello", lambda: server.received.is_set() or p.poll() is not None)
        assert p.poll() is None, p.communicate()
        p.send_signal(signal.SIGTERM)
        wait_until("the first signal to be handled", lambda: signal_handled(p.pid, signal.SIGTERM))
        took = signal_and_time(p, lambda: True, sig=signal.SIGINT, bound=2)
        out, err = p.communicate()
    assert p.returncode == 130, err
    assert took < 2 and "interrupted again" in err
    # Ended without running destructors: nothing may be left behind (libmongoc's counters file was).
    assert not os.path.exists(f"/dev/shm/mongoc-{p.pid}")
    assert lb.json("snapshots") == []
    lb.run("check")  # the lock it left names a process that is gone: not in the way
