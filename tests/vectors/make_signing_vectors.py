#!/usr/bin/env python3
"""Writes signing.json: requests signed per docs/auth.md by this independent implementation
(hashlib/hmac only), for the C++ and Python clients' tests. Re-run only to add vectors."""
import hashlib
import hmac
import json
import re
import urllib.parse

UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"


def enc(s):
    return "".join(c if c in UNRESERVED else "%%%02X" % b
                   for ch in s for b, c in ((b, chr(b)) for b in ch.encode()))


def canonical(method, path, query, headers, signed, body_hash):
    cpath = "/".join(enc(seg) for seg in path.split("/"))
    pairs = sorted((enc(k), enc(v)) for k, v in query)
    cquery = "&".join("%s=%s" % kv for kv in pairs)
    lines = []
    for name in signed:
        value = re.sub(r"[ \t]+", " ", headers[name].strip(" \t"))
        lines.append("%s:%s" % (name, value))
    return "\n".join([method, cpath, cquery, "\n".join(lines), ";".join(signed), body_hash])


def vector(name, secret, method, path, query, headers, body):
    body_hash = hashlib.sha256(body.encode()).hexdigest()
    headers = {k.lower(): v for k, v in headers.items()}
    headers["x-dlab-content-sha256"] = body_hash
    signed = sorted(headers)
    creq = canonical(method, path, query, headers, signed, body_hash)
    sts = "DLAB-HMAC-SHA256\n%s\n%s" % (headers["x-dlab-date"],
                                        hashlib.sha256(creq.encode()).hexdigest())
    sig = hmac.new(secret.encode(), sts.encode(), hashlib.sha256).hexdigest()
    return {"name": name, "secret": secret, "method": method, "path": path,
            "query": [list(q) for q in query], "headers": headers, "body": body,
            "canonical_request": creq, "string_to_sign": sts, "signature": sig,
            "authorization": "DLAB-HMAC-SHA256 Credential=AKTEST, SignedHeaders=%s, Signature=%s"
                             % (";".join(signed), sig)}


SECRET = "dlab-test-secret-0123456789abcdef"
vectors = [
    vector("get a job", SECRET, "GET", "/api/v1/jobs/12", [],
           {"Host": "127.0.0.1:8080", "X-Dlab-Date": "20261122T101500Z"}, ""),
    vector("list with query", SECRET, "GET", "/api/v1/jobs",
           [("state", "RUNNING"), ("label", "team=vision"), ("label", "a b"), ("limit", "5")],
           {"Host": "dlab.example:443", "X-Dlab-Date": "20261122T101500Z"}, ""),
    vector("submit with body and extra headers", SECRET, "POST", "/api/v1/jobs", [],
           {"Host": "127.0.0.1:8080", "X-Dlab-Date": "20261122T235959Z",
            "Content-Type": "application/json", "Idempotency-Key": "  run  42\t7 "},
           '{"spec": {"name": "ü", "command": "true"}}'),
    vector("path needing encoding", "другой-secret", "GET", "/api/v1/snapshots/sha256:ab cd/ü",
           [("x", "")], {"Host": "h", "X-Dlab-Date": "20260101T000000Z"}, ""),
]
with open("signing.json", "w") as f:
    json.dump(vectors, f, indent=2, ensure_ascii=False)
    f.write("\n")
