"""Code snapshots: deterministic archives that honour .dlabignore, as the CLI packs them."""

import gzip
import io
import os
import shutil
import subprocess
import tarfile

import pytest

from conftest import PYTHON_DIR

from dlab import _snapshot
from dlab._snapshot import IgnoreRules

# The cases of src/cli/dlabignore_test.cc: (rules, path, is_dir, ignored).
CASES = [
    ("# data\n\n", "data", False, False), ("# data\n\ndata\n", "data", False, True),
    ("\\#notes\n", "#notes", False, True),
    ("*.pyc\n", "train.pyc", False, True), ("*.pyc\n", "pkg/sub/mod.pyc", False, True),
    ("*.pyc\n", "train.py", False, False), ("data\n", "a/b/data", True, True),
    ("data\n", "a/data/x.csv", False, True),
    ("*.log\n!keep.log\n", "keep.log", False, False),
    ("*.log\n!keep.log\n", "other.log", False, True),
    ("!keep.log\n*.log\n", "keep.log", False, True),
    ("logs/\n!logs/keep.txt\n", "logs/keep.txt", False, True),
    ("logs/*\n!logs/keep.txt\n", "logs/keep.txt", False, False),
    ("logs/*\n!logs/keep.txt\n", "logs/drop.txt", False, True),
    ("build/\n", "build", True, True), ("build/\n", "build", False, False),
    ("build/\n", "src/build", True, True), ("build/\n", "src/build/out.o", False, True),
    ("/out\n", "out", True, True), ("/out\n", "src/out", True, False),
    ("docs/*.md\n", "docs/a.md", False, True),
    ("docs/*.md\n", "x/docs/a.md", False, False),
    ("docs/*.md\n", "docs/sub/a.md", False, False),
    ("file?.txt\n", "file1.txt", False, True),
    ("file?.txt\n", "file10.txt", False, False), ("run[0-9]\n", "run7", False, True),
    ("run[0-9]\n", "runx", False, False), ("run[!0-9]\n", "runx", False, True),
    ("**/cache\n", "cache", True, True), ("**/cache\n", "a/b/cache", True, True),
    ("a/**/b\n", "a/b", False, True), ("a/**/b\n", "a/x/y/b", False, True),
    ("a/**/b\n", "x/a/b", False, False), ("data/**\n", "data/x/y.bin", False, True),
    ("data/**\n", "data", True, False), ("data/**\n", "other/data/x", False, False),
    ("data/**\n!data/small.csv\n", "data/small.csv", False, False),
    ("", ".git", True, True), ("", "sub/.git/config", False, True),
    ("!.git/\n", ".git/HEAD", False, True), ("", ".gitignore", False, False),
    ("*.tmp \r\n", "x.tmp", False, True),
    # A few more: escapes, unclosed brackets, trailing-space escapes.
    ("\\!important\n", "!important", False, True), ("a[b\n", "a[b", False, True),
    ("name\\ \n", "name ", False, True), ("*\n!*.py\n", "x.py", False, False),
]


@pytest.mark.parametrize("rules,path,is_dir,ignored", CASES)
def test_ignore_rules_decide_like_the_cli(rules, path, is_dir, ignored):
    assert IgnoreRules.parse(rules).is_ignored(path, is_dir) == ignored


def make_tree(root):
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "train.py").write_text("print('train')\n")
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "sub" / "mod.py").write_text("x = 1\n" * 1000)
    (root / "pkg" / "sub" / "mod.pyc").write_bytes(b"\0compiled")
    (root / "keep.pyc").write_bytes(b"kept")
    (root / "build").mkdir()
    (root / "build" / "out.o").write_bytes(os.urandom(1000))
    (root / "data").mkdir()
    (root / "data" / "big.bin").write_bytes(b"\1" * 100000)
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(root / "run.sh", 0o755)
    os.symlink("train.py", root / "link.py")
    (root / ".dlabignore").write_text("# not shipped\nbuild/\n*.pyc\n!keep.pyc\n/data\n")


def pack_bytes(root):
    buf = io.BytesIO()
    snapshot_id, size = _snapshot.pack(str(root), buf)
    assert size == len(buf.getvalue())
    return snapshot_id, buf.getvalue()


def test_the_same_folder_always_gives_the_same_id(tmp_path):
    root = tmp_path / "code"
    root.mkdir()
    make_tree(root)
    first, data = pack_bytes(root)
    second, _ = pack_bytes(root)
    assert first == second and first.startswith("sha256:") and len(first) == 7 + 64
    os.utime(root / "train.py", (1, 1))  # times and owners are not recorded
    assert pack_bytes(root)[0] == first
    copy = tmp_path / "copy"
    shutil.copytree(root, copy, symlinks=True)
    assert pack_bytes(copy)[0] == first  # a copy elsewhere has the same id
    (root / "train.py").write_text("print('changed')\n")
    assert pack_bytes(root)[0] != first
    (root / "train.py").write_text("print('train')\n")
    os.chmod(root / "train.py", 0o600)  # permissions are recorded
    assert pack_bytes(root)[0] != first


def test_the_archive_holds_the_code_and_not_the_ignored_files(tmp_path):
    make_tree(tmp_path)
    _, data = pack_bytes(tmp_path)
    assert len(data) % 10240 == 0
    assert data[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"  # no name, no timestamp
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        assert names == [".dlabignore", "keep.pyc", "link.py", "pkg", "pkg/__init__.py",
                         "pkg/sub", "pkg/sub/mod.py", "run.sh", "train.py"]
        by_name = {m.name: m for m in members}
        assert by_name["link.py"].issym() and by_name["link.py"].linkname == "train.py"
        assert by_name["pkg"].isdir()
        assert by_name["run.sh"].mode == 0o755
        assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 and m.uname == "" for m in members)
        assert tar.extractfile("pkg/sub/mod.py").read() == b"x = 1\n" * 1000


def test_long_and_non_ascii_names_round_trip(tmp_path):
    deep = tmp_path / ("d" * 120) / ("e" * 90)
    deep.mkdir(parents=True)
    (deep / ("f" * 150)).write_text("deep")
    (tmp_path / "café.py").write_text("accent")
    os.symlink("a/" * 70 + "target", tmp_path / "far")
    _, data = pack_bytes(tmp_path)
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
        names = tar.getnames()
        assert "café.py" in names
        assert "%s/%s/%s" % ("d" * 120, "e" * 90, "f" * 150) in names
        assert tar.getmember("far").linkname == "a/" * 70 + "target"


def test_scan_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        _snapshot.scan(str(tmp_path / "missing"))
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError):
        _snapshot.scan(str(tmp_path / "file"))


def _find_cli():
    candidates = [os.environ.get("DLAB_CLI", "")]
    repo = os.path.dirname(PYTHON_DIR)
    candidates += [os.path.join(repo, d, "bin", "dlab") for d in ("build", "build-cli")]
    for path in candidates:
        if path and os.access(path, os.X_OK):
            return path
    return None


def test_the_id_is_the_one_dlab_run_gives(server, tmp_path):
    """Cross-check with the CLI when it has been built: it uploads to the fake dlabd."""
    cli = _find_cli()
    if cli is None:
        pytest.skip("the dlab CLI is not built (set DLAB_CLI to check against it)")
    make_tree(tmp_path)
    deep = tmp_path / ("d" * 120) / ("e" * 40)
    deep.mkdir(parents=True)
    (deep / ("f" * 150)).write_text("long path: a pax header")
    (tmp_path / "job.yaml").write_text("name: x\ncommand: ['true']\n")
    proc = subprocess.run([cli, "--url", server.url, "run", str(tmp_path / "job.yaml")],
                          capture_output=True, text=True, timeout=60)
    uploads = server.find("POST", "/api/v1/snapshots")
    if not uploads:
        pytest.skip("the CLI uploaded nothing (exit %d: %s)" % (proc.returncode, proc.stderr))
    cli_id = "sha256:" + __import__("hashlib").sha256(uploads[0].body).hexdigest()
    assert pack_bytes(tmp_path)[0] == cli_id
