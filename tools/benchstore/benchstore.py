#!/usr/bin/env python3
"""lakecache bench object store: an S3-compatible HTTP server for tests and benchmarks.

Objects live as files, so a ranged GET costs O(range) and is served with sendfile. The server can be
shaped to look like remote object storage (first-byte latency, per-connection bandwidth), counts
requests and bytes, and injects faults (500, 503 SlowDown, connection reset, truncated body, delay).

Control API (not S3):
  GET  /_bench/stats            counters as JSON (overall and per bucket)
  POST /_bench/reset            zero the counters
  POST /_bench/faults[?bucket=B] JSON {"rules": [...]} replaces the rules of bucket B (or the unscoped ones)
  DELETE /_bench/faults         clears the fault rules
  GET  /_bench/health           200 once serving
  POST /_bench/issuer?bucket=B   JSON {"lifetime": S, "token": T, "role": R} makes bucket B check SigV4
                                 signatures, and serves short-lived keys for B under /_bench/issuer/B/
  GET  /_bench/issuer?bucket=B   what B's issuer minted and what B's checks refused, as JSON

A credential issuer stands in for the places AWS hands out temporary keys, with a lifetime of a few seconds
so that a test sees them expire: IMDSv2 at /_bench/issuer/B (PUT latest/api/token, then GET
latest/meta-data/iam/security-credentials/[ROLE] with the session token), the container endpoint at
/_bench/issuer/B/container (Authorization must equal T), and STS at /_bench/issuer/B/sts
(AssumeRoleWithWebIdentity with WebIdentityToken T). Requests to bucket B must then be signed with a key
the issuer minted, with its session token, before the key expires: ExpiredToken, InvalidToken,
InvalidAccessKeyId or SignatureDoesNotMatch otherwise (payload hashes are taken as sent).

A fault rule: {"action": "500"|"503"|"403"|"reset"|"truncate"|"garble"|"delay", "bucket": B, "op": "GetObject",
"key_prefix": P, "probability": 0.2, "nth": [1, 3], "times": N, "delay_ms": 200}. Matching requests are
numbered per rule from 1; "nth" fires on those numbers, "probability" fires at random (seeded), "times"
caps how often the rule fires. "truncate" closes a GET body half way; "garble" replaces an XML body with junk. Signatures are not checked except on a bucket with an issuer: this is a speed and fault harness.
"""
import argparse
import hashlib
import hmac
import base64
import json
import os
import random
import socket
import sys
import threading
import time
import urllib.parse
import bisect
import email.utils
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

PROFILES = {
    "unshaped": {"latency_ms": 0.0, "bandwidth_mbps": 0.0},
    "s3-like": {"latency_ms": 15.0, "bandwidth_mbps": 100.0},
}
NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + ".%03dZ" % int((ts % 1) * 1000)


class S3Error(Exception):
    def __init__(self, status, code, message, resource=""):
        super().__init__(message)
        self.status, self.code, self.message, self.resource = status, code, message, resource


class Bucket:
    def __init__(self, name, root):
        self.name = name
        self.dir = os.path.join(root, name)
        self.objdir = os.path.join(self.dir, "objects")
        self.updir = os.path.join(self.dir, "uploads")
        os.makedirs(self.objdir, exist_ok=True)
        os.makedirs(self.updir, exist_ok=True)
        self.lock = threading.Lock()
        self.keys = []  # sorted
        self.meta = {}  # key -> dict(size, etag, mtime, metadata, content_type, file)
        self.uploads = {}  # upload id -> dict(key, metadata, content_type, initiated, parts{n: (etag, size, file)})
        for name in os.listdir(self.objdir):
            if name.endswith(".json"):
                with open(os.path.join(self.objdir, name)) as f:
                    m = json.load(f)
                self.meta[m["key"]] = m
        # Drop segments no index names (left by a crash between the moves and the index write).
        live = {p for m in self.meta.values() for p, _ in m["segments"]}
        for name in os.listdir(self.objdir):
            p = os.path.join(self.objdir, name)
            if not name.endswith(".json") and not name.endswith(".tmp") and p not in live:
                os.unlink(p)
        self.keys = sorted(self.meta)

    def path_for(self, key):
        return os.path.join(self.objdir, hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest())

    def commit(self, key, pieces, etag, metadata, content_type):
        """Publishes an object made of `pieces` [(tmp_path, size)], moved in place without copying.

        A multipart object stays a list of part files, so completing an upload costs O(parts), not O(bytes).
        """
        base = self.path_for(key)
        version = uuid.uuid4().hex[:12]
        segments = []
        for i, (tmp, size) in enumerate(pieces):
            final = "%s.%s.%05d" % (base, version, i)
            os.replace(tmp, final)
            segments.append([final, size])
        m = {"key": key, "size": sum(sz for _, sz in segments), "etag": etag, "mtime": time.time(), "metadata": metadata,
             "content_type": content_type, "segments": segments}
        with self.lock:
            with open(base + ".json.tmp", "w") as f:
                json.dump(m, f)
            os.replace(base + ".json.tmp", base + ".json")
            old = self.meta.get(key)
            if old is None:
                bisect.insort(self.keys, key)
            self.meta[key] = m
        if old:
            self._unlink_segments(old)
        return m

    @staticmethod
    def _unlink_segments(m):
        for path, _ in m["segments"]:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def delete(self, key):
        with self.lock:
            m = self.meta.pop(key, None)
            if m is None:
                return
            i = bisect.bisect_left(self.keys, key)
            if i < len(self.keys) and self.keys[i] == key:
                del self.keys[i]
            try:
                os.unlink(self.path_for(key) + ".json")
            except FileNotFoundError:
                pass
        self._unlink_segments(m)


def iter_segments(m, offset, count):
    """Yields (path, file_offset, length) covering [offset, offset+count) of an object."""
    pos = 0
    for path, size in m["segments"]:
        if count <= 0:
            break
        if offset < pos + size:
            start = offset - pos
            n = min(size - start, count)
            yield path, start, n
            offset += n
            count -= n
        pos += size


def copy_range(m, offset, count, dst_path):
    """Copies bytes of an object into a new file; returns their MD5 hex digest."""
    md5 = hashlib.md5()
    with open(dst_path, "wb") as dst:
        for path, start, n in iter_segments(m, offset, count):
            with open(path, "rb") as src:
                src.seek(start)
                while n > 0:
                    chunk = src.read(min(n, 1 << 20))
                    if not chunk:
                        raise IOError("object segment shorter than recorded")
                    md5.update(chunk)
                    dst.write(chunk)
                    n -= len(chunk)
    return md5.hexdigest()


class Store:
    def __init__(self, root):
        self.root = root
        os.makedirs(root, exist_ok=True)
        self.buckets = {}
        self.lock = threading.Lock()
        for name in os.listdir(root):
            if os.path.isdir(os.path.join(root, name)):
                self.buckets[name] = Bucket(name, root)
        self.tmpdir = os.path.join(root, ".tmp")
        os.makedirs(self.tmpdir, exist_ok=True)

    def bucket(self, name):
        b = self.buckets.get(name)
        if b is None:
            raise S3Error(404, "NoSuchBucket", "The specified bucket does not exist", name)
        return b

    def create_bucket(self, name):
        with self.lock:
            if name not in self.buckets:
                self.buckets[name] = Bucket(name, self.root)

    def tmp_path(self):
        return os.path.join(self.tmpdir, uuid.uuid4().hex)


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock if hasattr(self, "data") else _nolock():
            self.data = {"requests": {}, "bytes_in": 0, "bytes_out": 0, "faults": 0, "buckets": {}}

    def add(self, bucket, op, bytes_in=0, bytes_out=0):
        with self.lock:
            for d in (self.data, self.data["buckets"].setdefault(bucket or "", {"requests": {}, "bytes_in": 0, "bytes_out": 0})):
                if op:
                    d["requests"][op] = d["requests"].get(op, 0) + 1
                d["bytes_in"] += bytes_in
                d["bytes_out"] += bytes_out

    def fault(self):
        with self.lock:
            self.data["faults"] += 1

    def snapshot(self):
        with self.lock:
            return json.loads(json.dumps(self.data))


class Issuer:
    """Short-lived keys for one bucket, and the SigV4 check of that bucket's requests."""

    def __init__(self, bucket, lifetime, token, role):
        self.bucket, self.lifetime, self.token, self.role = bucket, float(lifetime), token, role or "lakecache-node"
        self.lock = threading.Lock()
        self.keys = {}  # access key -> (secret, session token, expiry)
        self.imds_tokens = {}  # IMDSv2 session token -> expiry
        self.stats = {"minted": 0, "imds_tokens": 0, "accepted": 0, "refused": {}, "keys_used": []}

    def mint(self):
        key = "ASIA" + uuid.uuid4().hex[:16].upper()
        secret, token = uuid.uuid4().hex + uuid.uuid4().hex, uuid.uuid4().hex * 3
        expiry = time.time() + self.lifetime
        with self.lock:
            self.keys[key] = (secret, token, expiry)
            self.stats["minted"] += 1
        return {"AccessKeyId": key, "SecretAccessKey": secret, "Token": token,
                "Expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expiry))}

    def new_imds_token(self, ttl):
        t = uuid.uuid4().hex
        with self.lock:
            self.imds_tokens[t] = time.time() + ttl
            self.stats["imds_tokens"] += 1
        return t

    def imds_token_valid(self, t):
        with self.lock:
            return t is not None and self.imds_tokens.get(t, 0) > time.time()

    def refuse(self, code):
        with self.lock:
            self.stats["refused"][code] = self.stats["refused"].get(code, 0) + 1
        status = 400 if code in ("ExpiredToken", "InvalidToken") else 403
        raise S3Error(status, code, {"ExpiredToken": "The provided token has expired.",
                                     "InvalidToken": "The provided token is malformed or otherwise invalid.",
                                     "InvalidAccessKeyId": "The AWS Access Key Id you provided does not exist in our records.",
                                     "SignatureDoesNotMatch": "The request signature we calculated does not match the signature you provided.",
                                     "AccessDenied": "Access Denied"}.get(code, code))

    def check(self, handler):
        auth = handler.headers.get("Authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            self.refuse("AccessDenied")
        fields = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(",") if "=" in p)
        scope = fields.get("Credential", "").split("/")
        key = scope[0]
        with self.lock:
            entry = self.keys.get(key)
        if entry is None or len(scope) != 5:
            self.refuse("InvalidAccessKeyId")
        secret, token, expiry = entry
        if handler.headers.get("x-amz-security-token") != token:
            self.refuse("InvalidToken")
        if time.time() > expiry:
            self.refuse("ExpiredToken")
        signed = fields.get("SignedHeaders", "").split(";")
        u = urllib.parse.urlsplit(handler.path)
        pairs = [q.split("=", 1) if "=" in q else [q, ""] for q in u.query.split("&") if q]
        enc = lambda v: urllib.parse.quote(urllib.parse.unquote(v), safe="-_.~")
        query = "&".join("%s=%s" % kv for kv in sorted((enc(k), enc(v)) for k, v in pairs))
        headers = "".join("%s:%s\n" % (h, " ".join(" ".join(handler.headers.get_all(h, [])).split())) for h in signed)
        canonical = "\n".join([handler.command, u.path or "/", query, headers, ";".join(signed),
                               handler.headers.get("x-amz-content-sha256", "UNSIGNED-PAYLOAD")])
        date = handler.headers.get("x-amz-date", "")
        to_sign = "\n".join(["AWS4-HMAC-SHA256", date, "/".join(scope[1:]), hashlib.sha256(canonical.encode()).hexdigest()])
        k = ("AWS4" + secret).encode()
        for part in scope[1:]:
            k = hmac.new(k, part.encode(), hashlib.sha256).digest()
        if hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest() != fields.get("Signature"):
            self.refuse("SignatureDoesNotMatch")
        with self.lock:
            self.stats["accepted"] += 1
            if key not in self.stats["keys_used"]:
                self.stats["keys_used"].append(key)

    def snapshot(self):
        with self.lock:
            return json.loads(json.dumps(self.stats))


class _nolock:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


class Faults:
    def __init__(self, seed=1):
        self.lock = threading.Lock()
        self.rules = []
        self.rng = random.Random(seed)

    def set(self, rules, scope=None):
        """Replaces the rules of one bucket scope (None: the rules that name no scope)."""
        with self.lock:
            fresh = [dict(r, _seen=0, _fired=0, _scope=scope) for r in rules]
            if scope is not None:
                for r in fresh:
                    r["bucket"] = scope
            self.rules = [r for r in self.rules if r["_scope"] != scope] + fresh

    def clear(self):
        with self.lock:
            self.rules = []

    def pick(self, bucket, op, key):
        """Numbers the request for every matching rule; the first rule that fires decides."""
        chosen = None
        with self.lock:
            for r in self.rules:
                if r.get("bucket") not in (None, bucket) or r.get("op") not in (None, op):
                    continue
                if key is not None and not key.startswith(r.get("key_prefix", "")):
                    continue
                if key is None and r.get("key_prefix"):
                    continue
                r["_seen"] += 1
                if chosen is not None or ("times" in r and r["_fired"] >= r["times"]):
                    continue
                if "nth" in r:
                    fire = r["_seen"] in r["nth"]
                elif "every" in r:
                    fire = r["_seen"] % r["every"] == 0
                elif "probability" in r:
                    fire = self.rng.random() < r["probability"]
                else:
                    fire = True
                if fire:
                    r["_fired"] += 1
                    chosen = r
        return chosen


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lakecache-benchstore/1"
    sys_version = ""

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("benchstore: " + (fmt % args) + "\n")

    # ---- plumbing -------------------------------------------------------------------------
    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _parse(self):
        u = urllib.parse.urlsplit(self.path)
        self.query = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
        raw = u.path
        parts = raw.lstrip("/").split("/", 1)
        self.bucket_name = urllib.parse.unquote(parts[0]) if parts[0] else None
        self.key = urllib.parse.unquote(parts[1], errors="surrogateescape") if len(parts) > 1 and parts[1] != "" else None
        if len(parts) > 1 and parts[1] == "" and raw.endswith("/") and raw.count("/") == 1:
            self.key = None

    def _read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            data = bytearray()
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
            body = bytes(data)
        else:
            n = int(self.headers.get("Content-Length", "0") or 0)
            body = self.rfile.read(n) if n else b""
        if "aws-chunked" in self.headers.get("Content-Encoding", "") or \
                self.headers.get("x-amz-content-sha256", "").startswith("STREAMING-"):
            body = self._decode_aws_chunked(body)
        return body

    @staticmethod
    def _decode_aws_chunked(body):
        out = bytearray()
        pos = 0
        while pos < len(body):
            end = body.index(b"\r\n", pos)
            size = int(body[pos:end].split(b";")[0], 16)
            pos = end + 2
            if size == 0:
                break
            out += body[pos:pos + size]
            pos += size + 2
        return bytes(out)

    def _body_to_file(self, path):
        """Streams a plain Content-Length body to `path`; returns (size, md5 hexdigest)."""
        te = self.headers.get("Transfer-Encoding", "")
        streaming = "aws-chunked" in self.headers.get("Content-Encoding", "") or \
            self.headers.get("x-amz-content-sha256", "").startswith("STREAMING-") or "chunked" in te.lower()
        md5 = hashlib.md5()
        if streaming:
            data = self._read_body()
            with open(path, "wb") as f:
                f.write(data)
            md5.update(data)
            return len(data), md5.hexdigest()
        n = int(self.headers.get("Content-Length", "0") or 0)
        left = n
        with open(path, "wb") as f:
            while left > 0:
                chunk = self.rfile.read(min(left, 1 << 20))
                if not chunk:
                    raise ConnectionError("client closed mid-body")
                md5.update(chunk)
                f.write(chunk)
                left -= len(chunk)
        return n, md5.hexdigest()

    def _send(self, status, body=b"", headers=None, content_type="application/xml"):
        self._first_byte_delay()
        self.send_response(status)
        hdrs = dict(headers or {})
        if body is not None:
            hdrs.setdefault("Content-Length", str(len(body)))
        if body:
            hdrs.setdefault("Content-Type", content_type)
        hdrs.setdefault("x-amz-request-id", uuid.uuid4().hex[:16].upper())
        for k, v in hdrs.items():
            self.send_header(k, v)
        self.end_headers()
        if body and self.command != "HEAD":
            if getattr(self, "garble_next", False):
                # Same length, not XML: the client must notice and never act on it.
                body = (b"<Garbled><<&&" + bytes(random.getrandbits(8) for _ in range(len(body))))[:len(body)]
            self._paced_write(body)
        self.server.counters.add(self.bucket_name, None, bytes_out=len(body) if body and self.command != "HEAD" else 0)

    def _first_byte_delay(self):
        lat = self.server.latency_ms
        if lat > 0:
            time.sleep(lat / 1000.0)

    def _paced_write(self, data):
        bw = self.server.bandwidth_bps
        if bw <= 0:
            self.wfile.write(data)
            return
        start = time.monotonic()
        sent = 0
        view = memoryview(data)
        while sent < len(view):
            chunk = view[sent:sent + 256 * 1024]
            self.wfile.write(chunk)
            sent += len(chunk)
            ahead = sent / bw - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)

    def _sendfile(self, m, offset, count):
        self.wfile.flush()
        sock = self.connection
        bw = self.server.bandwidth_bps
        start = time.monotonic()
        sent = 0
        for path, file_offset, length in iter_segments(m, offset, count):
            with open(path, "rb") as f:
                done = 0
                while done < length:
                    step = length - done if bw <= 0 else min(length - done, 256 * 1024)
                    n = os.sendfile(sock.fileno(), f.fileno(), file_offset + done, step)
                    if n == 0:
                        raise ConnectionError("sendfile reached end of file early")
                    done += n
                    sent += n
                    if bw > 0:
                        ahead = sent / bw - (time.monotonic() - start)
                        if ahead > 0:
                            time.sleep(ahead)

    def _error(self, e):
        body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message>"
                "<Resource>%s</Resource><RequestId>%s</RequestId></Error>" % (
                    e.code, escape(e.message), escape(e.resource), uuid.uuid4().hex[:16].upper())).encode()
        self._send(e.status, body if self.command != "HEAD" else b"", {"Content-Length": str(len(body))} if self.command == "HEAD" else None)

    # ---- dispatch -------------------------------------------------------------------------
    def do_GET(self):
        self._dispatch()

    def do_HEAD(self):
        self._dispatch()

    def do_PUT(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_DELETE(self):
        self._dispatch()

    def _op_name(self):
        m, q, k = self.command, self.query, self.key
        if self.bucket_name is None:
            return "ListBuckets"
        if k is None:
            if m == "GET" and "uploads" in q:
                return "ListMultipartUploads"
            if m == "GET" and "location" in q:
                return "GetBucketLocation"
            if m == "GET":
                return "ListObjectsV2" if q.get("list-type") == "2" else "ListObjects"
            if m == "POST" and "delete" in q:
                return "DeleteObjects"
            return {"HEAD": "HeadBucket", "PUT": "CreateBucket", "DELETE": "DeleteBucket"}.get(m, "Unknown")
        if m == "GET":
            return "ListParts" if "uploadId" in q else "GetObject"
        if m == "HEAD":
            return "HeadObject"
        if m == "PUT":
            if "partNumber" in q:
                return "UploadPartCopy" if "x-amz-copy-source" in self.headers else "UploadPart"
            return "CopyObject" if "x-amz-copy-source" in self.headers else "PutObject"
        if m == "POST":
            return "CreateMultipartUpload" if "uploads" in q else "CompleteMultipartUpload"
        if m == "DELETE":
            return "AbortMultipartUpload" if "uploadId" in q else "DeleteObject"
        return "Unknown"

    def _dispatch(self):
        # One handler serves every request of a keep-alive connection: reset per-request state.
        self._body_consumed = False
        self.truncate_next = False
        self.garble_next = False
        self._parse()
        if self.bucket_name == "_bench":
            return self._control()
        op = self._op_name()
        bytes_in = int(self.headers.get("Content-Length", "0") or 0)
        self.server.counters.add(self.bucket_name, op, bytes_in=bytes_in)
        issuer = self.server.issuers.get(self.bucket_name)
        if issuer is not None:
            try:
                issuer.check(self)
            except S3Error as e:
                self._discard_body()
                return self._error(e)
        rule = self.server.faults.pick(self.bucket_name, op, self.key)
        if rule is not None:
            self.server.counters.fault()
            action = str(rule.get("action"))
            if action == "delay":
                time.sleep(rule.get("delay_ms", 100) / 1000.0)
            elif action in ("500", "503"):
                self._discard_body()
                code, msg = ("SlowDown", "Please reduce your request rate.") if action == "503" else \
                    ("InternalError", "We encountered an internal error. Please try again.")
                return self._error(S3Error(int(action), code, msg))
            elif action == "403":
                self._discard_body()
                return self._error(S3Error(403, "AccessDenied", "Access Denied"))
            elif action == "reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                self.close_connection = True
                self.connection.close()
                return
            elif action == "truncate":
                self.truncate_next = True
            elif action == "garble":
                self.garble_next = True
        try:
            getattr(self, "op_" + op, self.op_Unknown)()
        except S3Error as e:
            self._discard_body()
            self._error(e)
        except (ConnectionError, BrokenPipeError):
            self.close_connection = True

    def _discard_body(self):
        if getattr(self, "_body_consumed", False):
            return
        self._body_consumed = True
        n = int(self.headers.get("Content-Length", "0") or 0)
        while n > 0:
            chunk = self.rfile.read(min(n, 1 << 20))
            if not chunk:
                break
            n -= len(chunk)

    def _control(self):
        path = urllib.parse.urlsplit(self.path).path
        if path == "/_bench/stats" and self.command == "GET":
            return self._send(200, json.dumps(self.server.counters.snapshot()).encode(), content_type="application/json")
        if path == "/_bench/reset" and self.command == "POST":
            self._read_body()
            self.server.counters.reset()
            return self._send(204, b"")
        if path == "/_bench/faults" and self.command == "POST":
            rules = json.loads(self._read_body() or b"{}").get("rules", [])
            self.server.faults.set(rules, self.query.get("bucket"))
            return self._send(204, b"")
        if path == "/_bench/faults" and self.command == "DELETE":
            self.server.faults.clear()
            return self._send(204, b"")
        if path == "/_bench/health":
            return self._send(200, b"ok", content_type="text/plain")
        if path == "/_bench/issuer" and self.command == "POST":
            spec = json.loads(self._read_body() or b"{}")
            b = self.query.get("bucket", "")
            self.server.issuers[b] = Issuer(b, spec.get("lifetime", 5), spec.get("token"), spec.get("role"))
            return self._send(204, b"")
        if path == "/_bench/issuer" and self.command == "GET":
            issuer = self.server.issuers.get(self.query.get("bucket", ""))
            if issuer is None:
                return self._send(404, b"no issuer for that bucket", content_type="text/plain")
            return self._send(200, json.dumps(issuer.snapshot()).encode(), content_type="application/json")
        if path.startswith("/_bench/issuer/"):
            return self._issue(path[len("/_bench/issuer/"):])
        self._send(404, b"unknown control path", content_type="text/plain")

    def _issue(self, rest):
        """The IMDSv2, container and STS stand-ins of one bucket's issuer."""
        b, _, sub = rest.partition("/")
        issuer = self.server.issuers.get(urllib.parse.unquote(b))
        body = self._read_body()
        if issuer is None:
            return self._send(404, b"no issuer for that bucket", content_type="text/plain")
        text = lambda status, t: self._send(status, t.encode(), content_type="text/plain")
        if sub == "latest/api/token":
            if self.command != "PUT":
                return text(405, "IMDSv2 tokens are PUT")
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            if ttl is None or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return text(400, "X-aws-ec2-metadata-token-ttl-seconds is missing or out of range")
            return text(200, issuer.new_imds_token(int(ttl)))
        if sub.startswith("latest/meta-data/iam/security-credentials/"):
            if not issuer.imds_token_valid(self.headers.get("X-aws-ec2-metadata-token")):
                return text(401, "")
            role = sub[len("latest/meta-data/iam/security-credentials/"):]
            if role == "":
                return text(200, issuer.role)
            if role != issuer.role:
                return text(404, "")
            c = issuer.mint()
            c.update({"Code": "Success", "Type": "AWS-HMAC", "LastUpdated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
            return self._send(200, json.dumps(c).encode(), content_type="text/plain")
        if sub == "container":
            if issuer.token is not None and self.headers.get("Authorization") != issuer.token:
                return self._send(401, json.dumps({"code": "AccessDenied", "message": "bad authorization token"}).encode(),
                                  content_type="application/json")
            c = issuer.mint()
            c["RoleArn"] = "arn:aws:iam::123456789012:role/" + issuer.role
            return self._send(200, json.dumps(c).encode(), content_type="application/json")
        if sub.rstrip("/") == "sts":
            form = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
            if form.get("Action") != "AssumeRoleWithWebIdentity" or form.get("WebIdentityToken") != issuer.token:
                err = "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>the web identity token is not valid</Message></Error></ErrorResponse>"
                return self._send(400, err.encode(), content_type="text/xml")
            c = issuer.mint()
            xml = ("<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
                   "<AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey><SessionToken>%s</SessionToken>"
                   "<Expiration>%s</Expiration></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"
                   % (c["AccessKeyId"], c["SecretAccessKey"], c["Token"], c["Expiration"]))
            return self._send(200, xml.encode(), content_type="text/xml")
        return text(404, "unknown issuer path")

    # ---- bucket operations ----------------------------------------------------------------
    def op_Unknown(self):
        raise S3Error(501, "NotImplemented", "This operation is not implemented by the bench store")

    def op_ListBuckets(self):
        items = "".join("<Bucket><Name>%s</Name><CreationDate>%s</CreationDate></Bucket>" % (escape(n), iso(0))
                        for n in sorted(self.server.store.buckets))
        self._send(200, ("<ListAllMyBucketsResult xmlns=\"%s\"><Buckets>%s</Buckets></ListAllMyBucketsResult>" % (NS, items)).encode())

    def op_CreateBucket(self):
        self._read_body()
        self.server.store.create_bucket(self.bucket_name)
        self._send(200, b"", {"Location": "/" + self.bucket_name})

    def op_GetBucketLocation(self):
        self.server.store.bucket(self.bucket_name)
        self._send(200, ("<LocationConstraint xmlns=\"%s\"></LocationConstraint>" % NS).encode())

    def op_HeadBucket(self):
        self.server.store.bucket(self.bucket_name)
        self._send(200, b"")

    def op_DeleteBucket(self):
        b = self.server.store.bucket(self.bucket_name)
        if b.keys:
            raise S3Error(409, "BucketNotEmpty", "The bucket you tried to delete is not empty")
        with self.server.store.lock:
            del self.server.store.buckets[self.bucket_name]
        self._send(204, b"")

    def op_ListObjects(self):
        self.op_ListObjectsV2(v1=True)

    def op_ListObjectsV2(self, v1=False):
        b = self.server.store.bucket(self.bucket_name)
        q = self.query
        prefix = q.get("prefix", "")
        delim = q.get("delimiter", "")
        max_keys = int(q.get("max-keys", "1000"))
        enc = q.get("encoding-type") == "url"
        if v1:
            start = q.get("marker", "")
        else:
            token = q.get("continuation-token")
            start = base64.urlsafe_b64decode(token.encode()).decode("utf-8", "surrogateescape") if token else q.get("start-after", "")
        contents, prefixes = [], []
        truncated = False
        last = None
        with b.lock:
            keys = b.keys
            i = bisect.bisect_right(keys, start) if start else bisect.bisect_left(keys, prefix)
            while i < len(keys):
                k = keys[i]
                if not k.startswith(prefix):
                    break
                if len(contents) + len(prefixes) >= max_keys:
                    truncated = True
                    break
                if delim:
                    j = k.find(delim, len(prefix))
                    if j >= 0:
                        cp = k[:j + len(delim)]
                        prefixes.append(cp)
                        last = cp
                        # skip every key under this common prefix
                        i = bisect.bisect_left(keys, cp[:-1] + chr(ord(cp[-1]) + 1))
                        continue
                contents.append(b.meta[k])
                last = k
                i += 1

        def e(s):
            return urllib.parse.quote(s, safe="/") if enc else escape(s)
        parts = ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"%s\">" % NS,
                 "<Name>%s</Name><Prefix>%s</Prefix><MaxKeys>%d</MaxKeys><IsTruncated>%s</IsTruncated>" % (
                     escape(self.bucket_name), e(prefix), max_keys, "true" if truncated else "false")]
        if delim:
            parts.append("<Delimiter>%s</Delimiter>" % e(delim))
        if enc:
            parts.append("<EncodingType>url</EncodingType>")
        if not v1:
            parts.append("<KeyCount>%d</KeyCount>" % (len(contents) + len(prefixes)))
        if truncated and last is not None:
            if v1:
                parts.append("<NextMarker>%s</NextMarker>" % e(last))
            else:
                parts.append("<NextContinuationToken>%s</NextContinuationToken>" %
                             base64.urlsafe_b64encode(last.encode("utf-8", "surrogateescape")).decode())
        for m in contents:
            parts.append("<Contents><Key>%s</Key><LastModified>%s</LastModified><ETag>&quot;%s&quot;</ETag>"
                         "<Size>%d</Size><StorageClass>STANDARD</StorageClass></Contents>" % (
                             e(m["key"]), iso(m["mtime"]), m["etag"], m["size"]))
        for p in prefixes:
            parts.append("<CommonPrefixes><Prefix>%s</Prefix></CommonPrefixes>" % e(p))
        parts.append("</ListBucketResult>")
        self._send(200, "".join(parts).encode("utf-8", "surrogateescape"))

    def op_DeleteObjects(self):
        import xml.etree.ElementTree as ET
        b = self.server.store.bucket(self.bucket_name)
        body = self._read_body()
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            raise S3Error(400, "MalformedXML", "The XML you provided was not well-formed")
        quiet = any(el.tag.endswith("Quiet") and (el.text or "").strip() == "true" for el in root)
        done = []
        for obj in root:
            if obj.tag.endswith("Object"):
                for kel in obj:
                    if kel.tag.endswith("Key"):
                        b.delete(kel.text or "")
                        done.append(kel.text or "")
        items = "" if quiet else "".join("<Deleted><Key>%s</Key></Deleted>" % escape(k) for k in done)
        self._send(200, ("<DeleteResult xmlns=\"%s\">%s</DeleteResult>" % (NS, items)).encode())

    def op_ListMultipartUploads(self):
        b = self.server.store.bucket(self.bucket_name)
        prefix = self.query.get("prefix", "")
        with b.lock:
            ups = sorted(((u["key"], uid, u["initiated"]) for uid, u in b.uploads.items() if u["key"].startswith(prefix)))
        items = "".join("<Upload><Key>%s</Key><UploadId>%s</UploadId><Initiated>%s</Initiated></Upload>" % (escape(k), uid, iso(t))
                        for k, uid, t in ups)
        self._send(200, ("<ListMultipartUploadsResult xmlns=\"%s\"><Bucket>%s</Bucket><IsTruncated>false</IsTruncated>%s"
                         "</ListMultipartUploadsResult>" % (NS, escape(self.bucket_name), items)).encode())

    # ---- object operations ----------------------------------------------------------------
    def _meta_headers(self, m):
        h = {"ETag": "\"%s\"" % m["etag"], "Last-Modified": email.utils.formatdate(m["mtime"], usegmt=True),
             "Accept-Ranges": "bytes"}
        if m.get("content_type"):
            h["Content-Type"] = m["content_type"]
        for k, v in (m.get("metadata") or {}).items():
            h["x-amz-meta-" + k] = v
        return h

    def _lookup(self):
        b = self.server.store.bucket(self.bucket_name)
        m = b.meta.get(self.key)
        if m is None:
            raise S3Error(404, "NoSuchKey", "The specified key does not exist.", self.key)
        return b, m

    def _check_conditions(self, m):
        im = self.headers.get("If-Match")
        if im is not None and im.strip() not in ("*", "\"%s\"" % m["etag"], m["etag"]):
            raise S3Error(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
        inm = self.headers.get("If-None-Match")
        if inm is not None and inm.strip() in ("*", "\"%s\"" % m["etag"]):
            self._send(304, None, {"ETag": "\"%s\"" % m["etag"]})
            return False
        return True

    def op_HeadObject(self):
        b, m = self._lookup()
        if not self._check_conditions(m):
            return
        h = self._meta_headers(m)
        h["Content-Length"] = str(m["size"])
        self._first_byte_delay()
        self.send_response(200)
        for k, v in h.items():
            self.send_header(k, v)
        self.end_headers()

    def op_GetObject(self):
        b, m = self._lookup()
        if not self._check_conditions(m):
            return
        size = m["size"]
        h = self._meta_headers(m)
        status, first, count = 200, 0, size
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            spec = rng[6:].split(",")[0].strip()
            a, _, z = spec.partition("-")
            if a == "":
                n = int(z)
                first, last = max(0, size - n), size - 1
            else:
                first = int(a)
                last = int(z) if z else size - 1
                last = min(last, size - 1)
            if first >= size or last < first:
                h = {"Content-Range": "bytes */%d" % size}
                raise S3Error(416, "InvalidRange", "The requested range is not satisfiable")
            status, count = 206, last - first + 1
            h["Content-Range"] = "bytes %d-%d/%d" % (first, last, size)
        h["Content-Length"] = str(count)
        truncate = getattr(self, "truncate_next", False)
        self._first_byte_delay()
        self.send_response(status)
        for k, v in h.items():
            self.send_header(k, v)
        self.end_headers()
        send = count // 2 if truncate else count
        try:
            if send > 0:
                self._sendfile(m, first, send)
        except FileNotFoundError:
            pass
        self.server.counters.add(self.bucket_name, None, bytes_out=send)
        if truncate:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

    def _user_metadata(self):
        return {k[11:].lower(): v for k, v in self.headers.items() if k.lower().startswith("x-amz-meta-")}

    def _check_md5(self, md5hex):
        want = self.headers.get("Content-MD5")
        if want is not None:
            try:
                ok = base64.b64decode(want).hex() == md5hex
            except Exception:
                ok = False
            if not ok:
                raise S3Error(400, "BadDigest", "The Content-MD5 you specified did not match what we received.")

    def op_PutObject(self):
        b = self.server.store.bucket(self.bucket_name)
        tmp = self.server.store.tmp_path()
        self._body_consumed = True
        try:
            size, md5hex = self._body_to_file(tmp)
            self._check_md5(md5hex)
            m = b.commit(self.key, [(tmp, size)], md5hex, self._user_metadata(), self.headers.get("Content-Type"))
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        self._send(200, b"", {"ETag": "\"%s\"" % m["etag"]})

    def _copy_source(self):
        src = urllib.parse.unquote(self.headers["x-amz-copy-source"]).lstrip("/")
        sb, _, sk = src.partition("/")
        sk = sk.split("?versionId=")[0]
        b = self.server.store.bucket(sb)
        m = b.meta.get(sk)
        if m is None:
            raise S3Error(404, "NoSuchKey", "The specified key does not exist.", sk)
        im = self.headers.get("x-amz-copy-source-if-match")
        if im is not None and im.strip().strip('"') != m["etag"]:
            raise S3Error(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
        return m

    def op_CopyObject(self):
        self._read_body()
        b = self.server.store.bucket(self.bucket_name)
        m = self._copy_source()
        tmp = self.server.store.tmp_path()
        copy_range(m, 0, m["size"], tmp)
        if self.headers.get("x-amz-metadata-directive", "COPY").upper() == "REPLACE":
            meta, ctype = self._user_metadata(), self.headers.get("Content-Type")
        else:
            meta, ctype = m.get("metadata") or {}, m.get("content_type")
        nm = b.commit(self.key, [(tmp, m["size"])], m["etag"], meta, ctype)
        self._send(200, ("<CopyObjectResult><LastModified>%s</LastModified><ETag>&quot;%s&quot;</ETag></CopyObjectResult>" % (
            iso(nm["mtime"]), nm["etag"])).encode())

    def op_DeleteObject(self):
        self._read_body()
        b = self.server.store.bucket(self.bucket_name)
        b.delete(self.key)
        self._send(204, b"")

    # ---- multipart -------------------------------------------------------------------------
    def _upload(self, b):
        uid = self.query.get("uploadId")
        u = b.uploads.get(uid)
        if u is None or u["key"] != self.key:
            raise S3Error(404, "NoSuchUpload", "The specified upload does not exist.", uid or "")
        return uid, u

    def op_CreateMultipartUpload(self):
        self._read_body()
        b = self.server.store.bucket(self.bucket_name)
        uid = uuid.uuid4().hex
        os.makedirs(os.path.join(b.updir, uid), exist_ok=True)
        with b.lock:
            b.uploads[uid] = {"key": self.key, "metadata": self._user_metadata(), "content_type": self.headers.get("Content-Type"),
                              "initiated": time.time(), "parts": {}}
        self._send(200, ("<InitiateMultipartUploadResult xmlns=\"%s\"><Bucket>%s</Bucket><Key>%s</Key><UploadId>%s</UploadId>"
                         "</InitiateMultipartUploadResult>" % (NS, escape(self.bucket_name), escape(self.key), uid)).encode())

    def op_UploadPart(self):
        b = self.server.store.bucket(self.bucket_name)
        uid, u = self._upload(b)
        n = int(self.query.get("partNumber", "0"))
        if not 1 <= n <= 10000:
            raise S3Error(400, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive")
        path = os.path.join(b.updir, uid, "%05d.%s" % (n, uuid.uuid4().hex[:8]))
        self._body_consumed = True
        size, md5hex = self._body_to_file(path)
        try:
            self._check_md5(md5hex)
        except S3Error:
            os.unlink(path)
            raise
        with b.lock:
            old = u["parts"].get(n)
            u["parts"][n] = (md5hex, size, path)
        if old and old[2] != path and os.path.exists(old[2]):
            os.unlink(old[2])
        self._send(200, b"", {"ETag": "\"%s\"" % md5hex})

    def op_UploadPartCopy(self):
        self._read_body()
        b = self.server.store.bucket(self.bucket_name)
        uid, u = self._upload(b)
        n = int(self.query.get("partNumber", "0"))
        m = self._copy_source()
        first, last = 0, m["size"] - 1
        rng = self.headers.get("x-amz-copy-source-range")
        if rng:
            a, _, z = rng[6:].partition("-")
            first, last = int(a), int(z)
            if last >= m["size"]:
                raise S3Error(400, "InvalidArgument", "Range specified is not valid for source object")
        path = os.path.join(b.updir, uid, "%05d.%s" % (n, uuid.uuid4().hex[:8]))
        md5hex = copy_range(m, first, last - first + 1, path)
        with b.lock:
            u["parts"][n] = (md5hex, last - first + 1, path)
        self._send(200, ("<CopyPartResult><LastModified>%s</LastModified><ETag>&quot;%s&quot;</ETag></CopyPartResult>" % (
            iso(time.time()), md5hex)).encode())

    def op_ListParts(self):
        b = self.server.store.bucket(self.bucket_name)
        uid, u = self._upload(b)
        items = "".join("<Part><PartNumber>%d</PartNumber><ETag>&quot;%s&quot;</ETag><Size>%d</Size></Part>" % (n, e, s)
                        for n, (e, s, _) in sorted(u["parts"].items()))
        self._send(200, ("<ListPartsResult xmlns=\"%s\"><Bucket>%s</Bucket><Key>%s</Key><UploadId>%s</UploadId>"
                         "<IsTruncated>false</IsTruncated>%s</ListPartsResult>" % (
                             NS, escape(self.bucket_name), escape(self.key), uid, items)).encode())

    def op_CompleteMultipartUpload(self):
        import xml.etree.ElementTree as ET
        b = self.server.store.bucket(self.bucket_name)
        uid, u = self._upload(b)
        body = self._read_body()
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            raise S3Error(400, "MalformedXML", "The XML you provided was not well-formed")
        wanted = []
        for p in root:
            if p.tag.endswith("Part"):
                n = e = None
                for el in p:
                    if el.tag.endswith("PartNumber"):
                        n = int(el.text)
                    elif el.tag.endswith("ETag"):
                        e = (el.text or "").strip().strip('"')
                wanted.append((n, e))
        if not wanted or [n for n, _ in wanted] != sorted(n for n, _ in wanted):
            raise S3Error(400, "InvalidPartOrder", "The list of parts was not in ascending order.")
        md5s = b""
        pieces = []
        with b.lock:
            for i, (n, e) in enumerate(wanted):
                part = u["parts"].get(n)
                if part is None or part[0] != e:
                    raise S3Error(400, "InvalidPart", "One or more of the specified parts could not be found.")
                if i < len(wanted) - 1 and part[1] < self.server.min_part_size:
                    raise S3Error(400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size.")
                md5s += bytes.fromhex(part[0])
                pieces.append((part[2], part[1]))
            # The parts now belong to the object; the upload must not delete them.
            used = {p for p, _ in pieces}
            u["parts"] = {k: v for k, v in u["parts"].items() if v[2] not in used}
        etag = "%s-%d" % (hashlib.md5(md5s).hexdigest(), len(wanted))
        b.commit(self.key, pieces, etag, u["metadata"], u["content_type"])
        self._drop_upload(b, uid)
        self._send(200, ("<CompleteMultipartUploadResult xmlns=\"%s\"><Bucket>%s</Bucket><Key>%s</Key>"
                         "<ETag>&quot;%s&quot;</ETag></CompleteMultipartUploadResult>" % (
                             NS, escape(self.bucket_name), escape(self.key), etag)).encode())

    def _drop_upload(self, b, uid):
        with b.lock:
            u = b.uploads.pop(uid, None)
        if u:
            for _, _, path in u["parts"].values():
                if os.path.exists(path):
                    os.unlink(path)
            try:
                os.rmdir(os.path.join(b.updir, uid))
            except OSError:
                pass

    def op_AbortMultipartUpload(self):
        self._read_body()
        b = self.server.store.bucket(self.bucket_name)
        uid, _ = self._upload(b)
        self._drop_upload(b, uid)
        self._send(204, b"")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--port-file", help="write the chosen port here once listening")
    ap.add_argument("--root", required=True, help="directory that holds the objects")
    ap.add_argument("--profile", choices=sorted(PROFILES), default="unshaped")
    ap.add_argument("--latency-ms", type=float, help="first-byte latency (overrides the profile)")
    ap.add_argument("--bandwidth-mbps", type=float, help="per-connection MB/s cap, 0 = none (overrides the profile)")
    ap.add_argument("--bucket", action="append", default=[], help="create this bucket at start (repeatable)")
    ap.add_argument("--min-part-size", type=int, default=5 * 1024 * 1024)
    ap.add_argument("--seed", type=int, default=1, help="seed for probabilistic faults")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    prof = PROFILES[args.profile]
    srv = Server((args.host, args.port), Handler)
    srv.store = Store(args.root)
    for name in args.bucket:
        srv.store.create_bucket(name)
    srv.counters = Counters()
    srv.faults = Faults(args.seed)
    srv.issuers = {}
    srv.latency_ms = args.latency_ms if args.latency_ms is not None else prof["latency_ms"]
    mbps = args.bandwidth_mbps if args.bandwidth_mbps is not None else prof["bandwidth_mbps"]
    srv.bandwidth_bps = mbps * 1e6
    srv.min_part_size = args.min_part_size
    srv.verbose = args.verbose
    port = srv.server_address[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(port))
        os.replace(args.port_file + ".tmp", args.port_file)
    sys.stderr.write("benchstore: serving %s on http://%s:%d (profile %s)\n" % (args.root, args.host, port, args.profile))
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
