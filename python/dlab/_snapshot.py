"""Code snapshots: a folder packed as a deterministic gzip tar, honouring .dlabignore.

This mirrors the CLI (src/cli/snapshot_packer.cc, src/cli/dlabignore.cc) so that `dlab run` and
Client.submit(code_dir=...) give a folder the same snapshot id, and dlabd stores it once:

* .dlabignore uses gitignore's syntax: `#` comments, `!` negation, a trailing `/` for directories
  only, a pattern with a `/` anchored at the folder root (otherwise it matches the last path
  component at any depth), `*`, `?`, `[...]`, `\\x` and `**`. The last matching rule decides;
  nothing inside an excluded directory can be re-included; `.git` is always left out.
* The walk does not follow symbolic links; it keeps directories, regular files and symbolic
  links, and skips sockets, fifos and devices. Entries are sorted by their relative path.
* The archive is what libarchive's "restricted pax" writer produces: ustar headers with mode
  (permission bits), every time, uid and gid zero, no user or group names; a pax header only for
  a path that does not fit ustar or is not ASCII, or a link target over 100 bytes. It is
  gzip-compressed (level 6, no name, no timestamp) and padded with zeros to a multiple of
  10240 bytes, as libarchive pads its last block.

The id is "sha256:" + the SHA-256 of the archive bytes. Deviations from the CLI: bracket ranges
with non-ASCII characters compare code points here, bytes there; paths that need a pax header
follow libarchive 3.6's naming of the ustar fallback name, which other libarchive versions may
change (the CLI's id then changes with them, not this one).
"""

import hashlib
import os
import stat
import zlib

__all__ = ["IgnoreRules", "scan", "pack", "EXCLUDED_ALWAYS"]

EXCLUDED_ALWAYS = ".git"
_BLOCK = 512
_LAST_BLOCK = 10240
_CHUNK = 64 * 1024


# ---- .dlabignore ---------------------------------------------------------------------------

def _match_bracket(pattern, i, c):
    """Matches the bracket expression at pattern[i] == '[' against c. Returns (next index,
    matched), or None when the bracket is not closed (then '[' is a literal)."""
    p = i + 1
    n = len(pattern)
    negated = False
    if p < n and pattern[p] in "!^":
        negated = True
        p += 1
    found = False
    first = True
    while p < n and (first or pattern[p] != "]"):
        first = False
        lo = pattern[p]
        if lo == "\\" and p + 1 < n:
            p += 1
            lo = pattern[p]
        hi = lo
        if p + 2 < n and pattern[p + 1] == "-" and pattern[p + 2] != "]":
            hi = pattern[p + 2]
            if hi == "\\" and p + 3 < n:
                p += 1
                hi = pattern[p + 2]
            p += 2
        if lo <= c <= hi:
            found = True
        p += 1
    if p >= n:
        return None
    return p + 1, found != negated


def _glob_component(pattern, name):
    """fnmatch-style matching of one path component: `*`, `?`, `[...]`, `\\x`."""
    p = n = 0
    star_p = None  # pattern position just after the last '*'
    star_n = 0     # name position that '*' is matched up to
    plen, nlen = len(pattern), len(name)
    while n < nlen:
        if p < plen:
            pc = pattern[p]
            if pc == "*":
                while p < plen and pattern[p] == "*":
                    p += 1
                star_p, star_n = p, n
                continue
            if pc == "?":
                p += 1
                n += 1
                continue
            if pc == "[":
                bracket = _match_bracket(pattern, p, name[n])
                if bracket is not None:
                    if bracket[1]:
                        p = bracket[0]
                        n += 1
                        continue
                elif name[n] == "[":
                    p += 1
                    n += 1
                    continue
            else:
                escaped = pc == "\\" and p + 1 < plen
                if escaped:
                    pc = pattern[p + 1]
                if pc == name[n]:
                    p += 2 if escaped else 1
                    n += 1
                    continue
        if star_p is None:
            return False
        p = star_p
        star_n += 1
        n = star_n
    while p < plen and pattern[p] == "*":
        p += 1
    return p == plen


def _glob_components(pattern, i, path, j):
    """Pattern components against path components; `**` is any number of directories, and a
    trailing `**` at least one component (everything inside)."""
    if i == len(pattern):
        return j == len(path)
    if pattern[i] == "**":
        if i + 1 == len(pattern):
            return j < len(path)
        return any(_glob_components(pattern, i + 1, path, k) for k in range(j, len(path) + 1))
    return (j < len(path) and _glob_component(pattern[i], path[j])
            and _glob_components(pattern, i + 1, path, j + 1))


class IgnoreRules:
    """The rules of a .dlabignore file. `IgnoreRules.parse(text).is_ignored("a/b.pyc")`."""

    def __init__(self, rules=()):
        # Each rule: (segments, negated, directory_only, anchored).
        self._rules = list(rules)

    @classmethod
    def parse(cls, text):
        rules = []
        for line in text.split("\n"):
            if line.endswith("\r"):
                line = line[:-1]
            while line.endswith(" ") and not (len(line) >= 2 and line[-2] == "\\"):
                line = line[:-1]
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            if negated:
                line = line[1:]
            directory_only = line.endswith("/")
            line = line.rstrip("/") if directory_only else line
            anchored = "/" in line
            segments = [s for s in line.split("/") if s]
            if segments:
                rules.append((segments, negated, directory_only, anchored))
        return cls(rules)

    @classmethod
    def from_folder(cls, root):
        """The rules of root/.dlabignore (only the built-in `.git` rule when there is none)."""
        path = os.path.join(root, ".dlabignore")
        try:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8", "surrogateescape")
        except FileNotFoundError:
            text = ""
        return cls.parse(text)

    def is_ignored(self, path, is_dir=False):
        """Whether `path` (relative, '/'-separated) is left out: it matches a rule itself, or a
        parent directory is left out."""
        slash = path.find("/")
        while slash != -1:
            if slash > 0 and self._matches_itself(path[:slash], True):
                return True
            slash = path.find("/", slash + 1)
        return self._matches_itself(path, is_dir)

    def _matches_itself(self, path, is_dir):
        components = [c for c in path.split("/") if c]
        if not components:
            return False
        if components[-1] == EXCLUDED_ALWAYS:
            return True
        for segments, negated, directory_only, anchored in reversed(self._rules):
            if directory_only and not is_dir:
                continue
            if anchored:
                matches = _glob_components(segments, 0, components, 0)
            else:
                matches = _glob_component(segments[0], components[-1])
            if matches:
                return not negated
        return False


# ---- the walk ------------------------------------------------------------------------------

def scan(root):
    """The entries a snapshot of `root` holds: sorted relative paths ('/'-separated) of the
    directories, regular files and symbolic links that .dlabignore keeps."""
    if not os.path.exists(root):
        raise FileNotFoundError("code folder %s does not exist" % root)
    if not os.path.isdir(root):
        raise NotADirectoryError("code folder %s is not a directory" % root)
    rules = IgnoreRules.from_folder(root)
    entries = []

    def walk(prefix):
        with os.scandir(os.path.join(root, prefix) if prefix else root) as it:
            children = list(it)
        for child in children:
            rel = prefix + "/" + child.name if prefix else child.name
            is_dir = child.is_dir(follow_symlinks=False)
            if rules.is_ignored(rel, is_dir):
                continue
            if is_dir:
                entries.append(rel)
                walk(rel)
            elif child.is_file(follow_symlinks=False) or child.is_symlink():
                entries.append(rel)

    walk("")
    entries.sort(key=os.fsencode)  # byte order, as the CLI sorts std::string
    return entries


# ---- the archive ---------------------------------------------------------------------------

def _octal(value, digits):
    """libarchive's ustar number: `digits` octal digits, zero-padded."""
    text = b"%o" % value
    if len(text) > digits:
        raise ValueError("%d does not fit %d octal digits" % (value, digits))
    return text.rjust(digits, b"0")


def _ustar_entry_name(src, insert=None):
    """libarchive's build_ustar_entry_name(): a name that fits ustar for a path that does not.
    (libarchive 3.6 keeps at most 98 bytes in the name part and 154 in the prefix.)"""
    suffix_length = 98
    insert_length = len(insert) + 2 if insert is not None else 0
    if len(src) < 100 and insert is None:
        return src
    filename_end = len(src)
    need_slash = False
    while True:
        if filename_end > 0 and src[filename_end - 1:filename_end] == b"/":
            filename_end -= 1
            need_slash = True
            continue
        if filename_end > 1 and src[filename_end - 2:filename_end] == b"/.":
            filename_end -= 2
            need_slash = True
            continue
        break
    if need_slash:
        suffix_length -= 1
    filename = filename_end - 1
    while filename > 0 and src[filename:filename + 1] != b"/":
        filename -= 1
    if src[filename:filename + 1] == b"/" and filename < filename_end - 1:
        filename += 1
    suffix_length -= insert_length
    if filename_end > filename + suffix_length:
        filename_end = filename + suffix_length
    suffix_length -= filename_end - filename

    prefix_end = min(154, filename)
    while prefix_end > 0 and src[prefix_end:prefix_end + 1] != b"/":
        prefix_end -= 1
    if prefix_end < filename and src[prefix_end:prefix_end + 1] == b"/":
        prefix_end += 1

    suffix = prefix_end
    suffix_end = min(suffix + suffix_length, filename)
    if suffix_end < suffix:
        suffix_end = suffix
    while suffix_end > suffix and src[suffix_end:suffix_end + 1] != b"/":
        suffix_end -= 1
    if suffix_end < filename and src[suffix_end:suffix_end + 1] == b"/":
        suffix_end += 1

    out = src[:prefix_end] + src[suffix:suffix_end]
    if insert is not None:
        out += insert + b"/"
    out += src[filename:filename_end]
    if need_slash:
        out += b"/"
    return out


def _pax_attribute_name(src):
    """libarchive's build_pax_attribute_name(): dir/PaxHeader/name."""
    end = len(src)
    while True:
        if end > 0 and src[end - 1:end] == b"/":
            end -= 1
            continue
        if end > 1 and src[end - 2:end] == b"/.":
            end -= 1
            continue
        break
    if end == 0:
        return b"/PaxHeader/rootdir"
    if src[:1] == b"." and end == 1:
        return b"PaxHeader/currentdir"
    return _ustar_entry_name(src[:end], b"PaxHeader")


def _pax_record(key, value):
    body = b" " + key + b"=" + value + b"\n"
    length = len(body)
    digits = len(str(length))
    if length + digits >= 10 ** digits:
        digits += 1
    return str(length + digits).encode() + body


def _split_ustar(path):
    """(prefix, name) when `path` fits the ustar name and prefix fields, else None."""
    if len(path) <= 100:
        return b"", path
    slash = path.find(b"/", len(path) - 101)
    if slash == 0:
        slash = path.find(b"/", 1)
    if slash == -1 or slash == len(path) - 1 or slash > 155:
        return None
    return path[:slash], path[slash + 1:]


def _ustar_header(path, typeflag, mode, size, linkname=b""):
    split = _split_ustar(path)
    if split is None:  # cannot happen for the names _entry_headers passes
        raise ValueError("path too long for ustar: %r" % path)
    prefix, name = split
    header = bytearray(_BLOCK)
    header[0:len(name)] = name
    header[100:108] = _octal(mode & 0o7777, 6) + b" \0"
    header[108:116] = b"000000 \0"
    header[116:124] = b"000000 \0"
    header[124:136] = _octal(size, 11) + b" "
    header[136:148] = b"00000000000 "
    header[148:156] = b"        "
    header[156:157] = typeflag
    header[157:157 + len(linkname)] = linkname
    header[257:265] = b"ustar\x0000"
    header[329:345] = b"000000 \x00" * 2  # rdevmajor, rdevminor
    header[345:345 + len(prefix)] = prefix
    checksum = sum(header)
    header[148:156] = _octal(checksum, 6) + b"\0 "
    return bytes(header)


def _entry_headers(rel, kind, mode, size, target=b""):
    """The bytes before an entry's content: an optional pax header, then its ustar header."""
    path = os.fsencode(rel) + (b"/" if kind == b"5" else b"")
    records = []
    try:
        path.decode("utf-8")
        target.decode("utf-8")
    except UnicodeDecodeError:
        records.append(_pax_record(b"hdrcharset", b"BINARY"))
    if not path.isascii() or _split_ustar(path) is None:
        records.append(_pax_record(b"path", path))
        path = _ustar_entry_name(path)
    if target and (len(target) > 100 or not target.isascii()):
        records.append(_pax_record(b"linkpath", target))
        if len(target) > 100:
            target = b"././@LongSymLink"
    main = _ustar_header(path, kind, mode, size, target)
    if not records:
        return main
    data = b"".join(records)
    pax = _ustar_header(_pax_attribute_name(path), b"x", mode & 0o777, len(data))
    return pax + data + b"\0" * (-len(data) % _BLOCK) + main


class _GzipSink:
    """Compresses what is written to it, like libarchive's gzip filter, into `out`, hashing the
    compressed bytes."""

    def __init__(self, out):
        self._out = out
        self._deflate = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS, 8,
                                         zlib.Z_DEFAULT_STRATEGY)
        self._crc = 0
        self._raw_size = 0
        self.size = 0
        self.sha256 = hashlib.sha256()
        self._emit(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03")

    def _emit(self, data):
        if data:
            self._out.write(data)
            self.sha256.update(data)
            self.size += len(data)

    def write(self, data):
        self._crc = zlib.crc32(data, self._crc)
        self._raw_size += len(data)
        self._emit(self._deflate.compress(data))

    def close(self):
        self._emit(self._deflate.flush(zlib.Z_FINISH))
        self._emit(self._crc.to_bytes(4, "little")
                   + (self._raw_size & 0xFFFFFFFF).to_bytes(4, "little"))
        self._emit(b"\0" * (-self.size % _LAST_BLOCK))


def pack(root, out, entries=None):
    """Writes the snapshot of folder `root` to the binary file `out`. Returns (id, size)."""
    if entries is None:
        entries = scan(root)
    sink = _GzipSink(out)
    for rel in entries:
        path = os.path.join(root, rel)
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode):
            sink.write(_entry_headers(rel, b"5", st.st_mode, 0))
        elif stat.S_ISLNK(st.st_mode):
            target = os.fsencode(os.readlink(path))
            sink.write(_entry_headers(rel, b"2", st.st_mode, 0, target))
        elif stat.S_ISREG(st.st_mode):
            with open(path, "rb") as f:
                sink.write(_entry_headers(rel, b"0", st.st_mode, st.st_size))
                left = st.st_size
                while left > 0:
                    chunk = f.read(min(left, _CHUNK))
                    if not chunk:
                        break
                    sink.write(chunk)
                    left -= len(chunk)
                if left != 0 or f.read(1):
                    raise RuntimeError("%s changed while it was being packed; try again" % rel)
            sink.write(b"\0" * (-st.st_size % _BLOCK))
        # Anything else vanished and came back as something we do not pack.
    sink.write(b"\0" * (2 * _BLOCK))
    sink.close()
    return "sha256:" + sink.sha256.hexdigest(), sink.size
