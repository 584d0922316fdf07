#!/usr/bin/env python3
"""Generates SigV4 test vectors with botocore's S3SigV4Auth, for the Swift signer tests.

Each case is a raw S3 request (bucket, unencoded key, unencoded query parameters, headers, body) plus the
URL and Authorization header botocore produces for it. The Swift test builds the same request through
S3RequestBuilder and must match both. Deterministic: the same seed gives the same file.

Usage: scripts/gen_sigv4_vectors.py [--count 240] [--seed 7] > Tests/ObjectStoreTests/Fixtures/sigv4-botocore.json
"""
import argparse
import datetime
import hashlib
import json
import random
import sys
from unittest import mock
from urllib.parse import quote

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

KEY_PIECES = ["data", "shard-0001.tar", "a b", "x+y", "tilde~", "per%cent", "q?mark", "hash#", "amp&", "eq=",
              "star*", "paren(1)", "bang!", "dollar$", "comma,", "semi;", "colon:", "at@", "quote'", "caf\u00e9",
              "\u65e5\u672c\u8a9e", "\U0001F600", "dots..", ".", "..", "", "UPPER", "under_score", "long" * 20,
              "sp  ace", "tab\tx", "back\\slash", "brace{}", "pipe|", "caret^", "grave`", "lt<gt>", "\"dq\""]
QUERY_NAMES = ["prefix", "delimiter", "continuation-token", "start-after", "max-keys", "uploadId", "partNumber",
               "list-type", "encoding-type", "versionId", "uploads", "delete", "x-id", "response-content-type"]
QUERY_VALUES = ["", "/", "a/b", "a b", "x+y", "~tilde", "100", "2", "url", "tok/en==", "caf\u00e9", "\u00fc/\u00e4",
                "1&2", "k=v", "%41", "*", "\U0001F600"]
HEADER_CHOICES = [
    ("Range", lambda r: "bytes=%d-%d" % (r.randrange(0, 1000), r.randrange(1000, 1 << 30))),
    ("If-Match", lambda r: '"%032x"' % r.getrandbits(128)),
    ("Content-Type", lambda r: r.choice(["application/octet-stream", "text/plain; charset=utf-8", "image/png"])),
    ("x-amz-meta-mode", lambda r: str(r.choice([0o100644, 0o100600, 0o40755]))),
    ("x-amz-meta-note", lambda r: r.choice(["a  b   c", " leading", "trailing  ", "x\ty"])),
    ("X-Amz-Meta-Uid", lambda r: str(r.randrange(0, 65536))),
    ("x-amz-copy-source", lambda r: "src-bucket/" + quote("k\u00e9y with space/x", safe="/~")),
    ("Content-MD5", lambda r: "1B2M2Y8AsgTpgAmY7PhCfg=="),
]


def random_key(r):
    n = r.randint(1, 5)
    parts = [r.choice(KEY_PIECES) for _ in range(n)]
    key = "/".join(parts)
    if r.random() < 0.15:
        key = key + "//" + r.choice(KEY_PIECES)
    if r.random() < 0.1:
        key = "/" + key
    return key or "k"


class S3Cfg:
    def __init__(self, sign):
        self.s3 = {"payload_signing_enabled": sign}


def make_case(r, i):
    region = r.choice(["us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2"])
    scheme = r.choice(["http", "https"])
    sign_payload = scheme == "http" or r.random() < 0.3
    host = r.choice(["127.0.0.1:9000", "localhost:4566", "s3.%s.amazonaws.com" % region, "minio.example.internal"])
    virtual = host.endswith("amazonaws.com") and r.random() < 0.5
    bucket = r.choice(["bucket", "my-data-lake", "ckpt-01", "b.with.dots", "a" * 63])
    if virtual:
        bucket = r.choice(["bucket", "my-data-lake", "ckpt-01"])
    key = None if r.random() < 0.15 else random_key(r)
    method = r.choice(["GET", "HEAD", "PUT", "POST", "DELETE"] if key else ["GET", "HEAD", "POST", "PUT", "DELETE"])
    query = []
    for _ in range(r.choice([0, 0, 1, 2, 3, 4])):
        query.append([r.choice(QUERY_NAMES), r.choice(QUERY_VALUES)])
    headers = []
    for name, gen in r.sample(HEADER_CHOICES, r.randint(0, 4)):
        headers.append([name, gen(r)])
    body = b""
    if method in ("PUT", "POST") and r.random() < 0.7:
        body = bytes(r.getrandbits(8) for _ in range(r.randint(0, 300)))
    token = "FwoGZXIvYXdzE" + "%030x" % r.getrandbits(120) + "/+=" if r.random() < 0.3 else None
    access = "AKIA" + "".join(r.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
    secret = "".join(r.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/+") for _ in range(40))
    when = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(seconds=r.randrange(0, 200_000_000))

    epath = quote(key, safe="/~") if key is not None else ""
    if virtual:
        path, req_host = "/" + epath, bucket + "." + host
    else:
        path = "/" + quote(bucket, safe="~") + ("/" + epath if key is not None else "")
        req_host = host
    enc_query = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in query)
    qs = "&".join("%s=%s" % kv for kv in enc_query)
    url = "%s://%s%s%s" % (scheme, req_host, path, "?" + qs if qs else "")

    req = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
    req.headers["host"] = req_host
    req.context["client_config"] = S3Cfg(sign_payload)
    auth = botocore.auth.S3SigV4Auth(Credentials(access, secret, token), "s3", region)
    with mock.patch("botocore.auth.get_current_datetime", return_value=when.replace(tzinfo=None)):
        auth.add_auth(req)
    return {
        "name": "case-%03d" % i, "method": method, "scheme": scheme, "host": host, "virtual": virtual,
        "bucket": bucket, "key": key, "query": query, "headers": headers, "body_hex": body.hex(),
        "sign_payload": sign_payload, "time": int(when.timestamp()), "region": region,
        "access_key": access, "secret_key": secret, "session_token": token,
        "expected_url": url, "expected_authorization": req.headers["Authorization"],
        "expected_content_sha256": req.headers["X-Amz-Content-SHA256"], "expected_amz_date": req.headers["X-Amz-Date"],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=240)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    r = random.Random(args.seed)
    cases = [make_case(r, i) for i in range(args.count)]
    json.dump({"generator": "botocore %s S3SigV4Auth" % botocore.__version__, "cases": cases}, sys.stdout, indent=1, ensure_ascii=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
