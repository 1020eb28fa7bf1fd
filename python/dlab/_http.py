"""One HTTP exchange with dlabd over urllib, signed when credentials are given, and the error
it raises.

dlabd answers errors as {"error": {"code": "NOT_FOUND", "message": "..."}}; ApiError carries the
status, the code and the message. A server that cannot be reached raises ServerUnreachable, an
ApiError whose status is None, so that `except dlab.ApiError` catches both.
"""

import http.client
import json
import socket
import urllib.error
import urllib.request

from . import _auth

__all__ = ["ApiError", "ServerUnreachable", "Response", "send", "sign_request"]


class ApiError(Exception):
    """dlabd answered with a non-2xx status (or, as ServerUnreachable, not at all).

    Attributes: status (int, or None when unreachable), code (e.g. "NOT_FOUND"), message.
    """

    def __init__(self, status, code, message):
        self.status = status
        self.code = code
        self.message = message
        super().__init__(status, code, message)

    def __str__(self):
        if self.status is None:
            return "%s: %s" % (self.code, self.message)
        return "%d %s: %s" % (self.status, self.code, self.message)


class ServerUnreachable(ApiError):
    """No answer: connection refused, a timeout, a name that does not resolve."""

    def __init__(self, message):
        super().__init__(None, "UNAVAILABLE", message)


_CODES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
          404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 408: "DEADLINE_EXCEEDED",
          409: "FAILED_PRECONDITION", 413: "PAYLOAD_TOO_LARGE", 429: "RESOURCE_EXHAUSTED",
          500: "INTERNAL", 503: "UNAVAILABLE"}


def error_from_body(status, body, reason=""):
    """The ApiError for a non-2xx answer, from the standard error body when there is one."""
    code = _CODES.get(status, "UNKNOWN")
    message = reason or ("HTTP %d" % status)
    try:
        parsed = json.loads(body.decode("utf-8", "replace")) if body else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        err = parsed["error"]
        code = str(err.get("code") or code)
        message = str(err.get("message") or message)
    elif body:
        text = body.decode("utf-8", "replace").strip()
        if text:
            message = text[:500]
    return ApiError(status, code, message)


class Response:
    """A 2xx answer: status, headers (an email.message.Message) and the body bytes."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8")) if self.body else None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A POST must not silently turn into a GET; dlabd does not redirect anyway.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


# Signed besides host, x-dlab-content-sha256 and x-dlab-date, when the request has them.
_ALSO_SIGNED = ("content-type", "idempotency-key", "x-dlab-nonce", "x-dlab-tenant")


def sign_request(request, body, key_id, secret, now=None):
    """Signs a urllib Request (docs/auth.md) in place, with what urllib will send: the Host
    header (set here explicitly, so that urllib adds no other), the path and query of its
    selector decoded as dlabd decodes them, the body, and a fresh X-Dlab-Nonce (two identical
    requests in the same second would otherwise be refused as a replay)."""
    request.add_header("Host", request.host)
    request.add_header("X-Dlab-Nonce", _auth.new_nonce())
    path, query = _auth.parse_target(request.selector or "/")
    headers = {}
    for name, value in request.header_items():
        lower = name.lower()
        if lower in _ALSO_SIGNED and isinstance(value, str) and not value.isascii():
            # http.client would send it as Latin-1; send the UTF-8 bytes that are signed.
            value = value.encode("utf-8")
            request.add_header(name, value)
        headers[lower] = value
    also = [name for name in _ALSO_SIGNED if name in headers]
    for name, value in _auth.sign(request.get_method(), path or "/", query, headers, body,
                                  key_id, secret, now=now, also_sign=also).items():
        request.add_header(name, value)


def send(method, url, body=None, headers=None, timeout=30.0, content_type=None,
         credentials=None):
    """Sends one request; returns a Response for 2xx, raises ApiError otherwise.

    `body` is bytes, a binary file object (sent with its Content-Length, which the caller puts
    in `headers`; signing reads it once and rewinds it), a dict/list (sent as JSON) or None.
    credentials: None (unsigned) or (key_id, secret) to sign the request (docs/auth.md).
    """
    headers = dict(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body, allow_nan=False).encode("utf-8")
        content_type = content_type or "application/json"
    if content_type:
        headers["Content-Type"] = content_type
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    if credentials is not None:
        sign_request(request, body, credentials[0], credentials[1])
    try:
        with _opener.open(request, timeout=timeout) as answer:
            return Response(answer.status, answer.headers, answer.read())
    except urllib.error.HTTPError as e:
        try:
            data = e.read()
        except Exception:  # the connection broke while reading the error body
            data = b""
        finally:
            e.close()
        error = error_from_body(e.code, data, e.reason if isinstance(e.reason, str) else "")
        error.retry_after = e.headers.get("Retry-After") if e.headers else None
        raise error from None
    except urllib.error.URLError as e:
        raise ServerUnreachable("cannot reach %s: %s" % (url, e.reason)) from None
    except (socket.timeout, TimeoutError):
        raise ServerUnreachable("no answer from %s within %gs" % (url, timeout)) from None
    except (ConnectionError, OSError) as e:
        # A connection reset while reading the answer, or the like.
        raise ServerUnreachable("connection to %s failed: %s" % (url, e)) from None
    except http.client.HTTPException as e:  # a malformed or truncated answer
        raise ServerUnreachable("bad answer from %s: %r" % (url, e)) from None
