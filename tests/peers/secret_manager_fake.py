#!/usr/bin/env python3
"""A FAKE of Google Cloud Secret Manager's REST API (v1), for tests only.

Secret Manager has no emulator (not in the Cloud CLI, PyPI, npm or the Go proxy), so this stands in
for it. It follows the public v1 reference as far as Lifeboat uses it — secrets list/get/create/
patch/delete, versions list/get/access/addVersion/enable/disable/destroy, page tokens, version
aliases, `dataCrc32c` checked on add and sent on access, and error bodies shaped like the real API's
({"error": {"code", "message", "status"}}) — and nothing else. It is not Google's code and proves only
that Lifeboat speaks the documented protocol. Like the real service it refuses to serve the payload
of a version that is not ENABLED (FAILED_PRECONDITION).

Test controls (not part of the real API): a request whose bearer token is "denied" gets
PERMISSION_DENIED; POST /_fake/fail?status=429&count=N makes the next N API requests fail with that
status; POST /_fake/corrupt?count=N makes the next N accesses send a wrong dataCrc32c (a payload
damaged on the way); POST /_fake/set_payload?version=projects/P/secrets/S/versions/N replaces that
version's payload with the request body (damage at rest, which the real service never allows: a
check must still see it); GET /_fake/stats returns counters.

Usage: secret_manager_fake.py --port PORT [--max-page N]
"""
import argparse
import base64
import datetime
import json
import re
import threading
import urllib.parse
from http.server import ThreadingHTTPServer

from http_fake import FakeHandler, crc32c

def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ApiError(Exception):
    CODES = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 409: "ALREADY_EXISTS",
             429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}

    def __init__(self, code, message, status=None):
        super().__init__(message)
        self.code, self.message = code, message
        self.status = status or self.CODES.get(code, "UNKNOWN")


class Store:
    def __init__(self):
        self.lock = threading.Lock()
        self.secrets = {}  # "projects/P/secrets/S" -> {"resource": {...}, "versions": [{...}]}
        self.fail = []     # statuses to answer the next requests with
        self.corrupt = 0   # accesses still to answer with a wrong dataCrc32c
        self.requests = 0


STORE = Store()
MAX_PAGE = 25


def page(items, query, key):
    size = min(int(query.get("pageSize", ["25"])[0] or 25), MAX_PAGE)
    token = query.get("pageToken", [""])[0]
    start = int(base64.urlsafe_b64decode(token.encode()).decode()) if token else 0
    out = {key: items[start:start + size], "totalSize": len(items)}
    if start + size < len(items):
        out["nextPageToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
    return out


def secret_of(name):
    s = STORE.secrets.get(name)
    if s is None:
        raise ApiError(404, f"Secret [{name}] not found.")
    return s


def version_of(secret_name, ref):
    s = secret_of(secret_name)
    live = [v for v in s["versions"]]
    if ref == "latest":
        enabled = [v for v in live if v["state"] == "ENABLED"]
        if not enabled:
            raise ApiError(404, f"Secret [{secret_name}] not found or has no versions.")
        return s, enabled[-1]
    if not ref.isdigit():
        alias = s["resource"].get("versionAliases", {}).get(ref)
        if alias is None:
            raise ApiError(404, f"Alias [{ref}] of secret [{secret_name}] not found.")
        ref = str(alias)
    for v in live:
        if v["number"] == int(ref):
            return s, v
    raise ApiError(404, f"Secret Version [{secret_name}/versions/{ref}] not found.")


def version_resource(secret_name, v):
    r = {"name": f"{secret_name}/versions/{v['number']}", "createTime": v["createTime"], "state": v["state"],
         "replicationStatus": {"automatic": {}}, "etag": f"\"{v['etag']}\"",
         "clientSpecifiedPayloadChecksum": v["checksummed"]}
    if v["state"] == "DESTROYED":
        r["destroyTime"] = v["destroyTime"]
    return r


def handle(method, path, query, body):
    m = re.fullmatch(r"/v1/(projects/[^/]+)/secrets", path)
    if m:
        project = m.group(1)
        if method == "GET":
            names = sorted(n for n in STORE.secrets if n.startswith(project + "/secrets/"))
            return 200, page([STORE.secrets[n]["resource"] for n in names], query, "secrets")
        if method == "POST":
            sid = query.get("secretId", [""])[0]
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,255}", sid):
                raise ApiError(400, "Invalid secret id.")
            if "replication" not in body:
                raise ApiError(400, "Secret.replication is required.")
            name = f"{project}/secrets/{sid}"
            if name in STORE.secrets:
                raise ApiError(409, f"Secret [{name}] already exists.")
            res = {k: v for k, v in body.items() if k in ("replication", "labels", "annotations", "topics", "expireTime",
                                                           "ttl", "rotation", "versionDestroyTtl")}
            res.update({"name": name, "createTime": now(), "etag": "\"1\""})
            STORE.secrets[name] = {"resource": res, "versions": [], "next": 1}
            return 200, res
    m = re.fullmatch(r"/v1/(projects/[^/]+/secrets/[^/:]+)(:addVersion)?", path)
    if m:
        name, verb = m.group(1), m.group(2)
        s = secret_of(name)
        if verb and method == "POST":
            payload = body.get("payload", {})
            data = base64.b64decode(payload.get("data", ""))
            if len(data) > 65536:
                raise ApiError(400, "Secret payload exceeds 64KiB.")
            checksummed = "dataCrc32c" in payload
            if checksummed and int(payload["dataCrc32c"]) != crc32c(data):
                raise ApiError(400, "Checksum mismatch.")
            v = {"number": s["next"], "state": "ENABLED", "payload": data, "createTime": now(), "etag": 1,
                 "checksummed": checksummed}
            s["next"] += 1
            s["versions"].append(v)
            return 200, version_resource(name, v)
        if method == "GET" and not verb:
            return 200, s["resource"]
        if method == "PATCH" and not verb:
            mask = [f.strip() for f in query.get("updateMask", [""])[0].split(",") if f.strip()]
            if not mask:
                raise ApiError(400, "updateMask is required.")
            for field in mask:
                if field not in ("labels", "annotations", "versionAliases", "topics", "expireTime", "ttl", "rotation"):
                    raise ApiError(400, f"Field [{field}] cannot be updated.")
                if field == "versionAliases":
                    aliases = {}
                    for alias, num in body.get("versionAliases", {}).items():
                        _, v = version_of(name, str(num))
                        if v["state"] == "DESTROYED":
                            raise ApiError(400, f"Alias [{alias}] cannot point at a destroyed version.")
                        aliases[alias] = str(num)
                    s["resource"]["versionAliases"] = aliases
                elif field in body:
                    s["resource"][field] = body[field]
                else:
                    s["resource"].pop(field, None)
            return 200, s["resource"]
        if method == "DELETE" and not verb:
            del STORE.secrets[name]
            return 200, {}
    m = re.fullmatch(r"/v1/(projects/[^/]+/secrets/[^/]+)/versions", path)
    if m and method == "GET":
        name = m.group(1)
        s = secret_of(name)
        return 200, page([version_resource(name, v) for v in reversed(s["versions"])], query, "versions")
    m = re.fullmatch(r"/v1/(projects/[^/]+/secrets/[^/]+)/versions/([^/:]+)(:access|:enable|:disable|:destroy)?", path)
    if m:
        name, ref, verb = m.group(1), m.group(2), m.group(3)
        s, v = version_of(name, ref)
        if method == "GET" and not verb:
            return 200, version_resource(name, v)
        if method == "GET" and verb == ":access":
            if v["state"] != "ENABLED":
                raise ApiError(400, f"Secret Version [{name}/versions/{v['number']}] is in {v['state']} state.",
                               "FAILED_PRECONDITION")
            crc = crc32c(v["payload"])
            if STORE.corrupt:
                STORE.corrupt -= 1
                crc ^= 1
            return 200, {"name": f"{name}/versions/{v['number']}",
                         "payload": {"data": base64.b64encode(v["payload"]).decode(), "dataCrc32c": str(crc)}}
        if method == "POST" and verb in (":enable", ":disable", ":destroy"):
            if v["state"] == "DESTROYED":
                raise ApiError(400, f"Secret Version [{name}/versions/{v['number']}] is in DESTROYED state.",
                               "FAILED_PRECONDITION")
            if verb == ":destroy":
                v.update(state="DESTROYED", payload=b"", destroyTime=now())
                aliases = s["resource"].get("versionAliases", {})
                for alias in [a for a, n in aliases.items() if int(n) == v["number"]]:
                    del aliases[alias]
            else:
                v["state"] = "ENABLED" if verb == ":enable" else "DISABLED"
            v["etag"] += 1
            return 200, version_resource(name, v)
    raise ApiError(404, f"Method not found: {method} {path}")


class Handler(FakeHandler):
    def reply(self, code, obj):
        self.send_body(code, json.dumps(obj).encode(), "application/json; charset=UTF-8")

    def run(self, method):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if url.path.startswith("/_fake/"):
            with STORE.lock:
                if url.path == "/_fake/fail":
                    STORE.fail += [int(query.get("status", ["429"])[0])] * int(query.get("count", ["1"])[0])
                    return self.reply(200, {"queued": len(STORE.fail)})
                if url.path == "/_fake/corrupt":
                    STORE.corrupt += int(query.get("count", ["1"])[0])
                    return self.reply(200, {"corrupt": STORE.corrupt})
                if url.path == "/_fake/set_payload":
                    name = query.get("version", [""])[0]
                    try:
                        _, v = version_of(name.rsplit("/versions/", 1)[0], name.rsplit("/", 1)[1])
                    except ApiError as e:
                        return self.reply(404, {"error": e.message})
                    v["payload"] = raw
                    return self.reply(200, {"replaced": name})
                if url.path == "/_fake/stats":
                    return self.reply(200, {"requests": STORE.requests, "secrets": len(STORE.secrets)})
            return self.reply(404, {})
        try:
            auth = self.headers.get("Authorization", "")
            if not auth.startswith("Bearer "):
                raise ApiError(401, "Request is missing required authentication credential.", "UNAUTHENTICATED")
            if auth == "Bearer denied":
                raise ApiError(403, "Permission 'secretmanager.secrets.list' denied on resource (or it may not exist).")
            with STORE.lock:
                STORE.requests += 1
                if STORE.fail:
                    code = STORE.fail.pop(0)
                    raise ApiError(code, "Quota exceeded for quota metric 'Access requests'." if code == 429 else "Backend error.")
                body = json.loads(raw) if raw else {}
                code, obj = handle(method, urllib.parse.unquote(url.path), query, body)
            self.reply(code, obj)
        except ApiError as e:
            self.reply(e.code, {"error": {"code": e.code, "message": e.message, "status": e.status}})
        except (ValueError, KeyError) as e:
            self.reply(400, {"error": {"code": 400, "message": f"Invalid JSON payload: {e}", "status": "INVALID_ARGUMENT"}})

    def do_GET(self):
        self.run("GET")

    def do_POST(self):
        self.run("POST")

    def do_PATCH(self):
        self.run("PATCH")

    def do_DELETE(self):
        self.run("DELETE")


def main():
    global MAX_PAGE
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--max-page", type=int, default=25)
    a = ap.parse_args()
    MAX_PAGE = a.max_page
    ThreadingHTTPServer(("127.0.0.1", a.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
