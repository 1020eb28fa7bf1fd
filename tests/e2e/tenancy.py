"""Helpers for the tenancy tests: tenants, users and their access keys made through the API as
the bootstrap superadmin."""


def create_tenant(server, name):
    status, body = server.request("POST", "/api/v1/tenants", {"name": name})
    assert status == 201, body
    return body


def create_user(server, name, tenant=None, role=None, password=None):
    """A user (with a membership when tenant is given) and an access key of theirs; returns
    the key as (id, secret)."""
    body = {"name": name}
    if password:
        body["password"] = password
    status, user = server.request("POST", "/api/v1/users", body)
    assert status == 201, user
    if tenant:
        status, member = server.request("PUT", f"/api/v1/tenants/{tenant}/members/{name}",
                                        {"role": role})
        assert status == 200, member
    return create_key(server, name, password)


def create_key(server, user, password):
    """A key for `user`, made with a password login as that user (the way `dlab login` does)."""
    if password is None:
        password = f"{user}-password-123"
        status, body = server.request("PUT", f"/api/v1/users/{user}/password",
                                      {"password": password})
        assert status == 204, body
    session = login(server, user, password)
    status, key = server.request("POST", "/api/v1/keys", {"name": "test"}, credentials=None,
                                 headers=session)
    assert status == 201, key
    return key["id"], key["secret"]


def login(server, user, password):
    """The headers of a logged-in session: the cookie and the CSRF token."""
    status, body, headers = login_response(server, user, password)
    assert status == 200, body
    cookie = headers["Set-Cookie"].split(";")[0]
    return {"Cookie": cookie, "X-CSRF-Token": body["csrf_token"]}


def login_response(server, user, password):
    import json
    import urllib.error
    import urllib.request
    req = urllib.request.Request(server.url + "/api/v1/login", method="POST",
                                 data=json.dumps({"user": user, "password": password}).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read()), resp.headers
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null"), err.headers


def submit(server, spec, credentials="default", tenant=None, snapshot=None):
    body = {"spec": spec}
    if snapshot:
        body["snapshot"] = snapshot
    return server.request("POST", "/api/v1/jobs", body, credentials=credentials, tenant=tenant)
