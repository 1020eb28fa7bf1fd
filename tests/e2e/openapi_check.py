"""Check HTTP responses against api/openapi.yaml (OpenAPI 3.0).

For the end-to-end tests; needs only the standard library, PyYAML and jsonschema
(run with /usr/bin/python3).

    spec = load_spec()
    validate_response(spec, "GET", "/api/v1/jobs/12", 200, body)

validate_response raises AssertionError when the path matches no documented path template,
the method or the status is not documented for it, or a JSON body does not match the
documented schema.
"""
import copy
import json
import os
import re

import jsonschema
import yaml

DEFAULT_SPEC = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            "..", "..", "api", "openapi.yaml")

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_MAX_DEPTH = 64


def load_spec(path=None):
    """Load the OpenAPI document (default: the repository's api/openapi.yaml)."""
    path = os.path.normpath(path or DEFAULT_SPEC)
    with open(path, encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    if not isinstance(spec, dict) or "paths" not in spec:
        raise AssertionError("%s: not an OpenAPI document (no 'paths')" % path)
    return spec


# ---------------------------------------------------------------- $ref handling

def resolve_pointer(spec, ref):
    """Return the object a local $ref ('#/components/...') points to."""
    if not isinstance(ref, str) or not ref.startswith("#"):
        raise AssertionError("only local $refs are supported, got %r" % (ref,))
    node = spec
    for part in ref[1:].split("/")[1:] if ref != "#" else []:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise AssertionError("unresolvable $ref %r (no %r)" % (ref, part))
    return node


def iter_refs(node, where="#"):
    """Yield (location, ref) for every $ref in the document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield where, value
            else:
                yield from iter_refs(value, "%s/%s" % (where, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from iter_refs(value, "%s/%d" % (where, i))


def check_refs(spec):
    """Raise AssertionError unless every $ref in the document resolves."""
    bad = []
    for where, ref in iter_refs(spec):
        try:
            resolve_pointer(spec, ref)
        except AssertionError as e:
            bad.append("%s: %s" % (where, e))
    if bad:
        raise AssertionError("unresolvable $refs:\n  " + "\n  ".join(bad))


def _deref(spec, node):
    """Follow $ref chains of an object that is itself a reference (responses, parameters)."""
    seen = set()
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if ref in seen:
            raise AssertionError("cyclic $ref %r" % ref)
        seen.add(ref)
        node = resolve_pointer(spec, ref)
    return node


def to_json_schema(spec, schema, _stack=()):
    """Turn an OpenAPI 3.0 schema object into plain JSON Schema.

    Inlines local $refs (cycles are refused) and turns `nullable: true` into a type list
    with "null" (or an anyOf with {"type": "null"} where the schema has no `type`).
    """
    if len(_stack) > _MAX_DEPTH:
        raise AssertionError("schema nested too deeply: %s" % " -> ".join(_stack))
    if isinstance(schema, list):
        return [to_json_schema(spec, s, _stack) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:  # siblings of $ref are ignored in OpenAPI 3.0
        ref = schema["$ref"]
        if ref in _stack:
            raise AssertionError("cyclic $ref: %s" % " -> ".join(_stack + (ref,)))
        return to_json_schema(spec, resolve_pointer(spec, ref), _stack + (ref,))

    out = {}
    for key, value in schema.items():
        if key in ("properties", "patternProperties", "definitions"):
            out[key] = {k: to_json_schema(spec, v, _stack) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            out[key] = to_json_schema(spec, value, _stack)
        elif key == "nullable":
            continue
        else:
            out[key] = copy.deepcopy(value)

    if schema.get("nullable") is True:
        if "type" in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            if "null" not in types:
                out["type"] = types + ["null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = list(out["enum"]) + [None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


# ---------------------------------------------------------------- matching

def _template_regex(template):
    parts = re.split(r"(\{[^/{}]+\})", template)
    rx = "".join("[^/]+" if p.startswith("{") and p.endswith("}") else re.escape(p)
                 for p in parts)
    return re.compile("^" + rx + "$")


def find_path_template(spec, path):
    """Return the documented path template matching a concrete path (query string ignored).

    A template without parameters wins over one with them, then the one with fewer parameters.
    """
    path = path.split("?", 1)[0].split("#", 1)[0]
    matches = [t for t in spec.get("paths", {}) if _template_regex(t).match(path)]
    if not matches:
        raise AssertionError("path %r matches no documented path template (documented: %s)"
                             % (path, ", ".join(sorted(spec.get("paths", {})))))
    matches.sort(key=lambda t: (t.count("{"), -len(t)))
    return matches[0]


def find_operation(spec, method, path):
    """Return (template, operation object) for a method and a concrete path."""
    template = find_path_template(spec, path)
    item = _deref(spec, spec["paths"][template])
    op = item.get(method.lower()) if isinstance(item, dict) else None
    if op is None:
        documented = [m.upper() for m in HTTP_METHODS if m in item]
        raise AssertionError("%s %s: method not documented for %s (documented: %s)"
                             % (method.upper(), path, template, ", ".join(documented)))
    return template, op


def find_response(spec, op, status, label):
    responses = op.get("responses") or {}
    status = str(status)
    for key in (status, status[0] + "XX", status[0] + "xx", "default"):
        if key in responses:
            return _deref(spec, responses[key])
    raise AssertionError("%s: status %s is not documented (documented: %s)"
                         % (label, status, ", ".join(sorted(map(str, responses)))))


def _json_schema_for(response):
    """The schema of the response's JSON media type, or None when it has no JSON body."""
    for media, obj in (response.get("content") or {}).items():
        base = media.split(";", 1)[0].strip().lower()
        if base == "application/json" or base.endswith("+json"):
            return (obj or {}).get("schema", {})
    return None


def validate_response(spec, method, path, status, body):
    """Check one response against the spec; raise AssertionError on any mismatch.

    body: the parsed JSON (dict/list/...), or raw str/bytes (parsed as JSON when the
    documented response is JSON), or None to check the status only (e.g. HEAD).
    Returns the operation's path template.
    """
    template, op = find_operation(spec, method, path)
    label = "%s %s (%s) -> %s" % (method.upper(), path, template, status)
    response = find_response(spec, op, status, label)
    schema = _json_schema_for(response)
    if body is None:
        return template
    if method.upper() == "HEAD":  # HEAD answers never carry a body
        if body not in (b"", ""):
            raise AssertionError("%s: HEAD response with a body: %r" % (label, _short(body)))
        return template
    if schema is None:
        if response.get("content"):
            return template  # documented as non-JSON (text/plain, event-stream): not checked
        if body in (b"", ""):
            return template
        raise AssertionError("%s: documented without a body, but got %r"
                             % (label, _short(body)))
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError as e:
            raise AssertionError("%s: body is not JSON (%s): %r" % (label, e, _short(body)))

    js = to_json_schema(spec, schema)
    validator = jsonschema.Draft4Validator(js)
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    if errors:
        lines = ["%s: %s" % ("/".join(map(str, e.absolute_path)) or "(body)", e.message)
                 for e in errors[:10]]
        raise AssertionError("%s: body does not match the documented schema:\n  %s\nbody: %s"
                             % (label, "\n  ".join(lines), _short(body)))
    return template


def _short(body, limit=500):
    text = body if isinstance(body, str) else (
        body.decode("utf-8", "replace") if isinstance(body, (bytes, bytearray))
        else json.dumps(body, default=str))
    return text if len(text) <= limit else text[:limit] + "..."
