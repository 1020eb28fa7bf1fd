"""Signed requests (docs/auth.md): the canonical request, the string to sign and the headers of
a request signed with an access key (key id + secret), HMAC-SHA256, as src/auth/signing.cc
computes them. tests/vectors/signing.json pins them (python/tests/test_auth.py).

Text is str; a decoded path or query value that is not valid UTF-8 is carried in a str with
surrogate escapes (errors="surrogateescape"), so that every byte signs as itself.
"""

import datetime
import hashlib
import hmac
import os
import re
import time

__all__ = ["SCHEME", "EMPTY_SHA256", "uri_encode", "canonical_request", "string_to_sign",
           "signature", "format_date", "body_sha256", "sign", "parse_target", "new_nonce"]

SCHEME = "DLAB-HMAC-SHA256"
DATE_HEADER = "x-dlab-date"
BODY_HASH_HEADER = "x-dlab-content-sha256"
REQUIRED_HEADERS = ("host", BODY_HASH_HEADER, DATE_HEADER)
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_SPACES = re.compile(r"[ \t]+")
# What the server strips around a header value (absl::StripAsciiWhitespace); inside a value
# only runs of spaces and tabs are collapsed.
_EDGE_WHITESPACE = " \t\n\v\f\r"


def _bytes(text):
    if isinstance(text, (bytes, bytearray)):
        return bytes(text)
    return str(text).encode("utf-8", "surrogateescape")


def uri_encode(text):
    """Every byte of the UTF-8 of `text` except A-Z a-z 0-9 - . _ ~ as %XY (upper-case hex)."""
    return "".join(chr(b) if b in _UNRESERVED else "%%%02X" % b for b in _bytes(text))


def _text(value):
    if isinstance(value, (bytes, bytearray)):  # a header value as the bytes on the wire
        return bytes(value).decode("utf-8", "surrogateescape")
    return str(value)


def _header_value(value):
    return _SPACES.sub(" ", _text(value).strip(_EDGE_WHITESPACE))


def _signed_names(signed_headers):
    if isinstance(signed_headers, str):
        signed_headers = signed_headers.split(";")
    return [str(name).lower() for name in signed_headers]


def canonical_request(method, path, query, headers, signed_headers):
    """The six-part canonical request of docs/auth.md.

    path: the decoded path ("/api/v1/snapshots/sha256:ab cd"). query: the decoded (name, value)
    pairs, in any order, names may repeat (a dict is taken as its items). headers: a mapping of
    header names (any case) to values; the body hash is its X-Dlab-Content-Sha256 value.
    signed_headers: the SignedHeaders names in their order (a list, or "a;b;c"); a signed
    header missing from `headers` signs as an empty value, as on the server.
    """
    names = _signed_names(signed_headers)
    lowered = {str(k).lower(): v for k, v in headers.items()}
    cpath = "/".join(uri_encode(segment) for segment in _bytes(path).split(b"/"))
    if isinstance(query, dict):
        query = query.items()
    pairs = sorted((uri_encode(k), uri_encode(v)) for k, v in (query or ()))
    cquery = "&".join("%s=%s" % pair for pair in pairs)
    cheaders = "\n".join("%s:%s" % (name, _header_value(lowered.get(name, "")))
                         for name in names)
    return "\n".join([str(method).upper(), cpath, cquery, cheaders, ";".join(names),
                      _text(lowered.get(BODY_HASH_HEADER, ""))])


def string_to_sign(date, canonical):
    """"DLAB-HMAC-SHA256\\n<date>\\n<hex SHA-256 of the canonical request>"."""
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogateescape")).hexdigest()
    return "%s\n%s\n%s" % (SCHEME, date, digest)


def signature(secret, date, canonical):
    """Hex HMAC-SHA256 of the string to sign, keyed with the secret's UTF-8 bytes."""
    message = string_to_sign(date, canonical).encode("utf-8")
    return hmac.new(_bytes(secret), message, hashlib.sha256).hexdigest()


def format_date(now=None):
    """The X-Dlab-Date of `now` (a datetime, naive ones taken as UTC, or a Unix time; default
    the current time): "20261122T101500Z"."""
    if now is None:
        now = time.time()
    if isinstance(now, datetime.datetime):
        if now.tzinfo is not None:
            now = now.astimezone(datetime.timezone.utc)
        return now.strftime("%Y%m%dT%H%M%SZ")
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(int(now)))


def body_sha256(body):
    """Lower-case hex SHA-256 of a body: bytes, str (as UTF-8), None (empty), or a binary file
    object, read from its current position to the end and put back there."""
    if body is None:
        return EMPTY_SHA256
    if isinstance(body, str):
        body = body.encode("utf-8")
    if isinstance(body, (bytes, bytearray, memoryview)):
        return hashlib.sha256(body).hexdigest()
    if hasattr(body, "read") and hasattr(body, "seek"):
        start = body.tell()
        digest = hashlib.sha256()
        while True:
            chunk = body.read(1 << 20)
            if not chunk:
                break
            digest.update(chunk)
        body.seek(start)
        return digest.hexdigest()
    raise TypeError("cannot sign a body of type %s: give bytes, str, None or a seekable "
                    "binary file" % type(body).__name__)


def sign(method, path, query, headers, body, key_id, secret, now=None, also_sign=()):
    """The headers to add to a request to sign it: X-Dlab-Date, X-Dlab-Content-Sha256 and
    Authorization (a dict).

    path and query are decoded (see canonical_request). headers must hold Host, exactly as it
    is sent ("127.0.0.1:8080"); host, x-dlab-content-sha256 and x-dlab-date are always signed,
    plus the headers named in also_sign (taken from `headers`). body: bytes, str, None or a
    seekable binary file (see body_sha256). now: the signing time (see format_date).
    """
    if not key_id or not isinstance(key_id, str) or any(c in key_id for c in ", \t\r\n"):
        raise ValueError("an access key id is a non-empty string without spaces or commas")
    if not secret:
        raise ValueError("the secret access key is empty")
    lowered = {str(k).lower(): v for k, v in headers.items()}
    if not lowered.get("host"):
        raise ValueError("a signed request needs its Host header")
    extra = [name.strip().lower() for name in also_sign]
    if "authorization" in extra or "" in extra:
        raise ValueError("cannot sign the header names %r" % (list(also_sign),))
    names = sorted(set(REQUIRED_HEADERS).union(extra))
    date = format_date(now)
    added = {"X-Dlab-Date": date, "X-Dlab-Content-Sha256": body_sha256(body)}
    lowered[DATE_HEADER] = added["X-Dlab-Date"]
    lowered[BODY_HASH_HEADER] = added["X-Dlab-Content-Sha256"]
    canonical = canonical_request(method, path, query, lowered, names)
    added["Authorization"] = "%s Credential=%s, SignedHeaders=%s, Signature=%s" % (
        SCHEME, key_id, ";".join(names), signature(secret, date, canonical))
    return added


def _percent_decode(text, plus_is_space):
    data = text.encode("utf-8", "surrogateescape")
    out = bytearray()
    i = 0
    while i < len(data):
        c = data[i]
        if c == 0x25:  # '%'
            escape = data[i + 1:i + 3]
            if len(escape) != 2 or not all(b in _HEX for b in escape):
                raise ValueError("bad percent-escape in %r" % text)
            out.append(int(escape, 16))
            i += 3
            continue
        out.append(0x20 if plus_is_space and c == 0x2B else c)
        i += 1
    return bytes(out).decode("utf-8", "surrogateescape")


def parse_target(target):
    """The decoded path and query pairs of a request target ("/a%20b?x=1&y"), decoded as dlabd
    does (src/api/http_server.cc): '+' is a space in the query only, empty pairs are skipped,
    a parameter without '=' has the value ""."""
    path, question, query = target.partition("?")
    pairs = []
    if question:
        for pair in query.split("&"):
            if not pair:
                continue
            name, _, value = pair.partition("=")
            pairs.append((_percent_decode(name, True), _percent_decode(value, True)))
    return _percent_decode(path, False), pairs


def new_nonce():
    """A random X-Dlab-Nonce value: two otherwise identical requests in the same second (a
    fast poll, a retry) must not have the same signature, or the second is a replay."""
    return os.urandom(12).hex()
