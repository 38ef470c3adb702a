"""A FAKE: a synthetic Google Cloud Storage JSON API that holds no data (issue 39's scale benchmark).

fake-gcs-server keeps every object in memory, so it cannot hold ten million of them; this server
makes them up as they are asked for. Bucket `synthetic` holds --objects objects named
`d00000/o00000` … in folders of --per-folder, listed in name order a page (maxResults, at most 1000)
at a time. Each object's resource has the fields a real listing gives (kind, id, selfLink, mediaLink,
name, bucket, generation, metageneration, contentType, storageClass, size, md5Hash, crc32c, etag,
timeCreated, updated, timeStorageClassUpdated). With --empty every object is zero bytes (a listing
with no downloads: the listing path alone); otherwise object i holds "synthetic object i\\n".

Read-only: listing, a bucket's and an object's resource, and alt=media downloads. Plain HTTP on
127.0.0.1; no telemetry. Usage: synthetic_gcs.py --port P --objects N [--per-folder K] [--empty]
"""
import argparse
import base64
import hashlib
import json
import re
import struct
import sys
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

from http_fake import FakeHandler, crc32c

BUCKET = "synthetic"
GENERATION = 1733500000000000
TIME = "2026-12-01T00:00:00.000Z"


class Objects:
    def __init__(self, count, per_folder, empty):
        self.count, self.per_folder, self.empty = count, per_folder, empty

    def name(self, i):
        return f"d{i // self.per_folder:05}/o{i % self.per_folder:05}"

    def index(self, name):
        m = re.fullmatch(r"d(\d{5})/o(\d{5})", name)
        if not m or int(m.group(2)) >= self.per_folder:
            return None
        i = int(m.group(1)) * self.per_folder + int(m.group(2))
        return i if i < self.count else None

    def content(self, i):
        return b"" if self.empty else f"synthetic object {i}\n".encode()

    def resource(self, i, base):
        data = self.content(i)
        name = self.name(i)
        quoted = name.replace("/", "%2F")
        return {"kind": "storage#object", "id": f"{BUCKET}/{name}/{GENERATION}",
                "selfLink": f"{base}/storage/v1/b/{BUCKET}/o/{quoted}",
                "mediaLink": f"{base}/download/storage/v1/b/{BUCKET}/o/{quoted}?generation={GENERATION}&alt=media",
                "name": name, "bucket": BUCKET, "generation": str(GENERATION), "metageneration": "1",
                "contentType": "application/octet-stream", "storageClass": "STANDARD", "size": str(len(data)),
                "md5Hash": base64.b64encode(hashlib.md5(data).digest()).decode(),
                "crc32c": base64.b64encode(struct.pack(">I", crc32c(data))).decode(),
                "etag": "CICAgICAgICAAQ==", "timeCreated": TIME, "updated": TIME, "timeStorageClassUpdated": TIME}

    def first_at_or_after(self, name):
        """The index of the first object whose name is >= name (names are fixed-width: index order)."""
        lo, hi = 0, self.count
        while lo < hi:
            mid = (lo + hi) // 2
            if self.name(mid) < name:
                lo = mid + 1
            else:
                hi = mid
        return lo


def handler(objects: Objects):
    class Handler(FakeHandler):
        def reply(self, status, body: bytes, content_type="application/json"):
            self.send_body(status, body, content_type)

        def not_found(self):
            self.reply(404, json.dumps({"error": {"code": 404, "message": "Not Found"}}).encode())

        def do_GET(self):
            url = urlparse(self.path)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            base = f"http://{self.headers.get('Host', '127.0.0.1')}"
            path = url.path.removeprefix("/download")
            if path == f"/storage/v1/b/{BUCKET}":
                return self.reply(200, json.dumps({"kind": "storage#bucket", "name": BUCKET, "id": BUCKET,
                                                   "versioning": {"enabled": False}}).encode())
            if path == f"/storage/v1/b/{BUCKET}/o":
                prefix = q.get("prefix", "")
                size = min(1000, int(q.get("maxResults", "1000")))
                start = int(q["pageToken"]) if "pageToken" in q else objects.first_at_or_after(prefix)
                items, i = [], start
                while i < objects.count and len(items) < size:
                    name = objects.name(i)
                    if not name.startswith(prefix):
                        break
                    items.append(objects.resource(i, base))
                    i += 1
                page = {"kind": "storage#objects", "items": items}
                if i < objects.count and objects.name(i).startswith(prefix) and len(items) == size:
                    page["nextPageToken"] = str(i)
                return self.reply(200, json.dumps(page).encode())
            m = re.fullmatch(rf"/storage/v1/b/{BUCKET}/o/(.+)", path)
            if m:
                i = objects.index(unquote(m.group(1)))
                if i is None:
                    return self.not_found()
                if q.get("alt") == "media":
                    return self.reply(200, objects.content(i), "application/octet-stream")
                return self.reply(200, json.dumps(objects.resource(i, base)).encode())
            return self.not_found()

    return Handler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--objects", type=int, required=True)
    ap.add_argument("--per-folder", type=int, default=1000)
    ap.add_argument("--empty", action="store_true")
    a = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", a.port), handler(Objects(a.objects, a.per_folder, a.empty)))
    server.daemon_threads = True
    print(f"synthetic GCS on 127.0.0.1:{a.port}: {a.objects} objects", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
