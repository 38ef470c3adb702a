"""A FAKE: a MongoDB wire-protocol server that acknowledges every write and stores nothing (issue 39).

What it is for: measuring a restore tool's client path alone. Against FerretDB on SQLite both
Lifeboat and mongorestore wait on the server's single writer; against this server the time left is
the tool's own (reading its backup, decoding, batching, sending), so the share of the server in a
real restore is 1 - (time here / time against FerretDB).

It speaks what drivers need (OP_QUERY for the legacy handshake, OP_MSG for everything else, with
document sequences), answers hello/isMaster like a MongoDB 7.0 standalone, counts the documents of
every insert/update/delete and acknowledges them, answers queries and listings with empty cursors,
and {ok: 1} to anything else. Plain TCP on 127.0.0.1, no TLS, no compression, no telemetry.
Usage: ack_mongo.py --port P
"""
import argparse
import datetime
import socket
import socketserver
import struct
import sys
import time

import bson

OP_REPLY, OP_QUERY, OP_MSG = 1, 2004, 2013


def hello_reply():
    return {"ismaster": True, "isWritablePrimary": True, "helloOk": True, "maxBsonObjectSize": 16 * 1024 * 1024,
            "maxMessageSizeBytes": 48_000_000, "maxWriteBatchSize": 100_000, "localTime": datetime.datetime.now(datetime.timezone.utc),
            "logicalSessionTimeoutMinutes": 30, "connectionId": 1, "minWireVersion": 0, "maxWireVersion": 21,
            "readOnly": False, "ok": 1.0}


def count_sequence(data: memoryview):
    """How many BSON documents a document sequence holds (each starts with its int32 length)."""
    n, pos = 0, 0
    while pos < len(data):
        pos += struct.unpack_from("<i", data, pos)[0]
        n += 1
    return n


def answer(cmd: dict, sequences: dict, stats: dict):
    name = next(iter(cmd)).lower() if cmd else ""
    db = cmd.get("$db", "admin")
    if name in ("hello", "ismaster"):
        return hello_reply()
    if name == "buildinfo":
        return {"version": "7.0.0", "versionArray": [7, 0, 0, 0], "maxBsonObjectSize": 16 * 1024 * 1024, "ok": 1.0}
    if name in ("insert", "update", "delete"):
        key = {"insert": "documents", "update": "updates", "delete": "deletes"}[name]
        n = sequences.get(key, len(cmd.get(key, [])))
        stats[name] = stats.get(name, 0) + n
        reply = {"n": n, "ok": 1.0}
        if name == "update":
            reply["nModified"] = n
        return reply
    if name in ("find", "aggregate", "listcollections", "listindexes", "listdatabases"):
        if name == "listdatabases":
            return {"databases": [], "totalSize": 0, "ok": 1.0}
        coll = cmd[next(iter(cmd))]
        return {"cursor": {"id": bson.int64.Int64(0), "ns": f"{db}.{coll if isinstance(coll, str) else '$cmd'}",
                           "firstBatch": []}, "ok": 1.0}
    if name == "count":
        return {"n": 0, "ok": 1.0}
    if name == "getparameter":
        return {"featureCompatibilityVersion": {"version": "7.0"}, "ok": 1.0}
    return {"ok": 1.0}


class Handler(socketserver.BaseRequestHandler):
    def setup(self):
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def read_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.request.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def send(self, request_id, op, payload: bytes):
        self.request.sendall(struct.pack("<iiii", 16 + len(payload), 0, request_id, op) + payload)

    def handle(self):
        stats = self.server.stats
        while True:
            header = self.read_exact(16)
            if not header:
                return
            length, request_id, _, op = struct.unpack("<iiii", header)
            body = self.read_exact(length - 16)
            if body is None:
                return
            if op == OP_QUERY:
                pos = body.index(b"\0", 4) + 1 + 8  # flags, the collection name, skip and limit
                doc_len = struct.unpack_from("<i", body, pos)[0]
                cmd = bson.decode(body[pos:pos + doc_len])
                reply = bson.encode(answer(cmd, {}, stats))
                self.send(request_id, OP_REPLY, struct.pack("<iqii", 8, 0, 0, 1) + reply)
            elif op == OP_MSG:
                flags = struct.unpack_from("<I", body, 0)[0]
                end = len(body) - (4 if flags & 1 else 0)
                pos, cmd, sequences = 4, {}, {}
                view = memoryview(body)
                while pos < end:
                    kind = body[pos]
                    pos += 1
                    size = struct.unpack_from("<i", body, pos)[0]
                    if kind == 0:
                        cmd = bson.decode(body[pos:pos + size])
                    else:
                        nul = body.index(b"\0", pos + 4)
                        ident = body[pos + 4:nul].decode()
                        sequences[ident] = count_sequence(view[nul + 1:pos + size])
                    pos += size
                reply = answer(cmd, sequences, stats)
                if not flags & 2:  # moreToCome: an unacknowledged write wants no answer
                    self.send(request_id, OP_MSG, struct.pack("<I", 0) + b"\0" + bson.encode(reply))
            else:
                return


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    a = ap.parse_args()
    server = Server(("127.0.0.1", a.port), Handler)
    server.stats = {}
    print(f"acknowledging MongoDB on 127.0.0.1:{a.port} ({time.strftime('%H:%M:%S')})", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
