"""Where dlabd answers, chosen as the CLI does (src/cli/server_url.cc): the argument, else
$DLAB_URL, else the `url:` key of $XDG_CONFIG_HOME/dlab/config (default ~/.config/dlab/config,
YAML or JSON), else http://127.0.0.1:8080. A trailing '/' is dropped.

The access key that signs requests (docs/auth.md), when there is one, comes the same way: the
arguments, else $DLAB_ACCESS_KEY_ID and $DLAB_SECRET_ACCESS_KEY, else the `access_key_id:` and
`secret_access_key:` keys of the same file.
"""

import json
import os

DEFAULT_URL = "http://127.0.0.1:8080"


def config_file_path(environ=None):
    env = os.environ if environ is None else environ
    if env.get("XDG_CONFIG_HOME"):
        return os.path.join(env["XDG_CONFIG_HOME"], "dlab", "config")
    if env.get("HOME"):
        return os.path.join(env["HOME"], ".config", "dlab", "config")
    return None


def _parse_config(text, path):
    """The config file as a mapping (None when empty). Uses PyYAML (Debian's python3-yaml) when it
    is installed; without it, JSON or flat `key: value` lines."""
    try:
        import yaml  # optional
    except ImportError:
        yaml = None
    if yaml is not None:
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ValueError("%s: %s" % (path, str(e).replace("\n", " "))) from None
    stripped = text.strip()
    if not stripped:
        return None
    if stripped[0] in "{[":
        try:
            return json.loads(stripped)
        except ValueError as e:
            raise ValueError("%s: %s" % (path, e)) from None
    config = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#") or line.strip() == "---":
            continue
        if line[:1].isspace():
            continue  # nested values: not needed for `url`
        key, sep, value = line.partition(":")
        if not sep:
            raise ValueError("%s:%d: expected `key: value`" % (path, number))
        value = value.strip()
        if value and value[0] in "\"'":
            quote = value[0]
            end = value.find(quote, 1)
            value = value[1:end] if end > 0 else value[1:]
        else:
            comment = value.find(" #")
            if comment >= 0:
                value = value[:comment].rstrip()
            if value in ("", "~", "null"):
                value = None
        config[key.strip()] = value
    return config


def read_config_file(path, what="a `url` key"):
    """The config file as a mapping; None when the file is absent or empty."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ValueError("%s: %s" % (path, e.strerror)) from None
    config = _parse_config(text, path)
    if config is None:
        return None
    if not isinstance(config, dict):
        raise ValueError("%s: expected a mapping with %s" % (path, what))
    return config


def url_from_config_file(path):
    """The `url` of the config file, or None when the file or the key is absent."""
    config = read_config_file(path)
    if config is None:
        return None
    url = config.get("url")
    if url is None:
        return None
    if not isinstance(url, str) or not url:
        raise ValueError("%s: url must be a non-empty string" % path)
    return url


def _without_trailing_slash(url):
    while len(url) > 1 and url.endswith("/"):
        url = url[:-1]
    return url


def resolve_server_url(url=None, environ=None):
    """The server URL from the argument, $DLAB_URL, the config file, or the default."""
    env = os.environ if environ is None else environ
    if url:
        return _without_trailing_slash(url)
    if env.get("DLAB_URL"):
        return _without_trailing_slash(env["DLAB_URL"])
    path = config_file_path(env)
    if path is not None:
        found = url_from_config_file(path)
        if found:
            return _without_trailing_slash(found)
    return DEFAULT_URL


KEY_ID_ENV = "DLAB_ACCESS_KEY_ID"
SECRET_ENV = "DLAB_SECRET_ACCESS_KEY"
KEY_ID_KEY = "access_key_id"
SECRET_KEY = "secret_access_key"


def _set(value):
    return value is not None and value != ""


def _credential_pair(key_id, secret, where, key_id_name, secret_name):
    if not _set(key_id) and not _set(secret):
        return None
    if not _set(key_id) or not _set(secret):
        missing, present = ((key_id_name, secret_name) if not _set(key_id)
                            else (secret_name, key_id_name))
        raise ValueError("%s: %s is set but %s is not; an access key needs both"
                         % (where, present, missing))
    for name, value in ((key_id_name, key_id), (secret_name, secret)):
        if not isinstance(value, str):
            raise ValueError("%s: %s must be a string (quote it in the config file)"
                             % (where, name))
    return key_id, secret


def credentials_from_config_file(path):
    """(key id, secret) from the `access_key_id:` and `secret_access_key:` keys of the config
    file; None when the file or both keys are absent."""
    config = read_config_file(path, "`url`, `access_key_id` and `secret_access_key` keys")
    if config is None:
        return None
    pair = _credential_pair(config.get(KEY_ID_KEY), config.get(SECRET_KEY), path,
                            KEY_ID_KEY, SECRET_KEY)
    # As the CLI: a secret that others can read is refused, not used.
    if pair is not None and os.stat(path).st_mode & 0o077:
        raise ValueError("%s holds a secret access key but others can read it: run chmod 600 %s"
                         % (path, path))
    return pair


def resolve_credentials(key_id=None, secret=None, environ=None):
    """The access key that signs requests, (key id, secret), or None (requests go unsigned):
    the arguments, else $DLAB_ACCESS_KEY_ID and $DLAB_SECRET_ACCESS_KEY, else the
    `access_key_id:` and `secret_access_key:` keys of the config file. Each source gives both
    or neither (ValueError for half a key); the first that gives any is used."""
    if key_id is not None and not isinstance(key_id, str):
        raise TypeError("key_id must be a string, got %s" % type(key_id).__name__)
    if secret is not None and not isinstance(secret, str):
        raise TypeError("secret must be a string, got %s" % type(secret).__name__)
    found = _credential_pair(key_id, secret, "dlab.Client", "key_id", "secret")
    if found:
        return found
    env = os.environ if environ is None else environ
    found = _credential_pair(env.get(KEY_ID_ENV), env.get(SECRET_ENV), "environment",
                             KEY_ID_ENV, SECRET_ENV)
    if found:
        return found
    path = config_file_path(env)
    if path is not None:
        return credentials_from_config_file(path)
    return None


def resolve_tenant(environ=None):
    """The tenant to act in: $DLAB_TENANT, else the config file's `tenant`, else None."""
    env = os.environ if environ is None else environ
    if env.get("DLAB_TENANT"):
        return env["DLAB_TENANT"]
    path = config_file_path(env)
    if path is None:
        return None
    config = read_config_file(path, what="a `tenant` key")
    tenant = (config or {}).get("tenant")
    if tenant is not None and (not isinstance(tenant, str) or not tenant):
        raise ValueError("%s: tenant must be a non-empty string" % path)
    return tenant or None
