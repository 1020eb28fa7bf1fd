"""Where dlabd answers, chosen as the CLI does (src/cli/server_url.cc): the argument, else
$DLAB_URL, else the `url:` key of $XDG_CONFIG_HOME/dlab/config (default ~/.config/dlab/config,
YAML or JSON), else http://127.0.0.1:8080. A trailing '/' is dropped.
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


def url_from_config_file(path):
    """The `url` of the config file, or None when the file or the key is absent."""
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
        raise ValueError("%s: expected a mapping with a `url` key" % path)
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
