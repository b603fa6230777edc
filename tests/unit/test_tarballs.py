"""Release tarballs of kernel trees (lab/tarballs.py): the spec names them by sha256, the lab finds one in a mirror
or the kernel cache or downloads it, checks it, and a host with no way to get it skips the row with what to do.
Everything here uses small temporary tarballs and a local HTTP server; nothing reads /work/shared or the network."""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import io
import socket
import tarfile
import threading
import time
from pathlib import Path

import pytest

from lab import kernels, tarballs
from lab.errors import KernelUnavailable, LabError
from lab.paths import DEFAULT_MATRIX, KERNELS, LabHome
from lab.spec import ReleaseTree, SpecError, Tarball, load_kernel, load_matrix

UPSTREAM_SHA = "64d637c65c0b210659ff1719bcc9e34c5576fc3a4df9aa67087fa00bc2e08829"   # kernel.org's linux-4.19.1.tar.xz
PRUNED_SHA = "cd4cf9b5beb25e5d432c5d04054b5fd4fa0a10f9a4e0230dc1f094d7cdba0331"


def make_tarball(path: Path, top: str | None, marker: str = "4.19.1") -> Tarball:
    """A tiny kernel-tree tarball (Makefile + fs/nfs/dir.c), under a top directory or not."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:xz") as tar:
        for name, text in (("Makefile", f"# {marker}\n"), ("fs/nfs/dir.c", "int x;\n")):
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{name}" if top else name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return Tarball(path.name, hashlib.sha256(path.read_bytes()).hexdigest())


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.delenv("NFSLAB_MIRROR", raising=False)
    monkeypatch.delenv("NFSLAB_LINUX_TREE", raising=False)
    return LabHome(tmp_path / "home")


@pytest.fixture
def files(tmp_path):
    """An upstream-like tarball (top directory linux-4.19.1/) and a pruned-like one (none), in a scratch dir."""
    upstream = make_tarball(tmp_path / "made" / "linux-4.19.1.tar.xz", "linux-4.19.1")
    pruned = make_tarball(tmp_path / "made" / "linux-4.19.1-pruned.tar.xz", None, marker="pruned")
    return tmp_path / "made", upstream, pruned


def tree_of(upstream: Tarball, pruned: Tarball, url: str | None = None) -> ReleaseTree:
    return ReleaseTree(dataclasses.replace(upstream, url=url), (pruned,))


# ---- the specs ----------------------------------------------------------------------------------------------------

def test_the_mainline_rows_name_upstream_and_the_pruned_tree_by_sha256():
    matrix = load_matrix(DEFAULT_MATRIX)
    for name in ("mainline-4.19", "mainline-4.19-fix"):
        tree = matrix.kernel(name).source["tree"]
        assert tree.main == Tarball("linux-4.19.1.tar.xz", UPSTREAM_SHA,
                                    "https://cdn.kernel.org/pub/linux/kernel/v4.x/linux-4.19.1.tar.xz")
        assert tree.alternatives == (Tarball("linux-4.19.1-pruned.tar.xz", PRUNED_SHA),)


SPEC = """\
name: k
title: "a release tarball"
source:
  build:
    tree:
      url: https://cdn.kernel.org/pub/linux/kernel/v4.x/linux-4.19.1.tar.xz
      sha256: %s
      alternatives:
        - {file: linux-4.19.1-pruned.tar.xz, sha256: %s}
    scope: full
""" % (UPSTREAM_SHA, PRUNED_SHA)


@pytest.mark.parametrize("old, new, message", [
    (UPSTREAM_SHA, "abc", "k.yaml:7: bad sha256 'abc' (allowed: 64 hex digits, as sha256sum prints them)"),
    ("      url:", "      uri:", "k.yaml:6: unknown key 'uri', did you mean 'url'? (allowed: url, file, sha256, "
                                 "alternatives)"),
    ("https://cdn", "ftp://cdn", "k.yaml:6: bad url 'ftp://cdn.kernel.org/pub/linux/kernel/v4.x/linux-4.19.1.tar.xz' "
                                 "(allowed: http:// or https:// and a file)"),
    (f", sha256: {PRUNED_SHA}", "", "k.yaml:9: an alternative needs 'sha256' (required: file, sha256)"),
    ("file: linux-4.19.1-pruned", "file: ../linux-4.19.1-pruned", "k.yaml:9: bad file '../linux-4.19.1-pruned"
                                                                 ".tar.xz' (allowed: a file name, looked up in mirrors "
                                                                 "and the kernel cache)"),
    ("    scope: full", "    scope: module:fs/nfs", "k.yaml:5: a module build takes its fs/nfs from linux-source-6.1 "
                                                   "or a git checkout, not from a release tarball (or use scope: "
                                                   "full)"),
])
def test_a_bad_tree_is_a_file_line_error(tmp_path, old, new, message):
    path = tmp_path / "k.yaml"
    path.write_text(SPEC.replace(old, new, 1))
    with pytest.raises(SpecError) as e:
        load_kernel(path)
    assert str(e.value).endswith(message)


def test_a_tree_given_by_path_is_still_a_path(tmp_path):
    path = tmp_path / "k.yaml"
    path.write_text(SPEC.split("    tree:")[0] + "    tree: linux\n    scope: full\n")
    assert load_kernel(path).source["tree"] == "linux"


# ---- finding one ------------------------------------------------------------------------------------------------

def test_mirror_directories_are_searched_first_and_by_name(home, files, tmp_path, monkeypatch):
    made, upstream, pruned = files
    empty, mirror = tmp_path / "empty", tmp_path / "mirror"
    empty.mkdir()
    mirror.mkdir()
    (mirror / pruned.file).write_bytes((made / pruned.file).read_bytes())
    monkeypatch.setenv("NFSLAB_MIRROR", f"{empty}:{mirror}")
    found = tarballs.find(tree_of(upstream, pruned), home)
    assert (found.path, found.tarball) == (mirror / pruned.file, pruned)       # the accepted alternative
    (empty / upstream.file).write_bytes((made / upstream.file).read_bytes())
    assert tarballs.find(tree_of(upstream, pruned), home).tarball == upstream   # upstream first, where both are


def test_a_file_with_another_sha256_is_an_error_naming_both(home, files, tmp_path, monkeypatch):
    made, upstream, pruned = files
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / pruned.file).write_bytes(b"not the pruned tree")
    monkeypatch.setenv("NFSLAB_MIRROR", str(mirror))
    with pytest.raises(LabError) as e:
        tarballs.find(tree_of(upstream, pruned), home)
    assert pruned.sha256 in str(e.value) and hashlib.sha256(b"not the pruned tree").hexdigest() in str(e.value)


def test_the_config_file_names_mirrors_too(home, files, tmp_path):
    made, upstream, pruned = files
    home.root.mkdir(parents=True)
    (home.root / "config.yaml").write_text("mirror: [../made]   # relative to this file\n")
    assert tarballs.find(tree_of(upstream, pruned), home).path == tmp_path / "made" / upstream.file
    (home.root / "config.yaml").write_text("mirrors: /srv\n")
    with pytest.raises(SpecError, match=r"config.yaml:1: unknown key 'mirrors', did you mean 'mirror'\?"):
        tarballs.find(tree_of(upstream, pruned), home)


def test_the_kernel_cache_is_used_when_no_mirror_has_it(home, files):
    made, upstream, pruned = files
    cache = tarballs.sources_dir(home)
    cache.mkdir(parents=True)
    (cache / upstream.file).write_bytes((made / upstream.file).read_bytes())
    assert tarballs.find(tree_of(upstream, pruned), home).path == cache / upstream.file


@pytest.fixture
def server(files):
    """A local HTTP server of the scratch tarballs: url(name) → its URL."""
    made = files[0]
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(made))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield lambda name: f"http://127.0.0.1:{httpd.server_address[1]}/{name}"
    httpd.shutdown()
    httpd.server_close()


def test_a_download_lands_in_the_cache_checked_and_is_reused(home, files, server):
    made, upstream, pruned = files
    tree = tree_of(upstream, pruned, url=server(upstream.file))
    said = []
    found = tarballs.find(tree, home, said.append)
    assert found.path == tarballs.sources_dir(home) / upstream.file and found.tarball.sha256 == upstream.sha256
    assert said == [f"downloading {tree.main.url} into {tarballs.sources_dir(home)}"]
    assert sorted(p.name for p in tarballs.sources_dir(home).iterdir()) == [upstream.file]   # no part file left
    gone = tree_of(upstream, pruned, url="http://127.0.0.1:9/gone.tar.xz")
    assert tarballs.find(gone, home).path == found.path                        # the cache, no network


def test_a_download_with_the_wrong_sha256_is_not_kept(home, files, server):
    made, upstream, pruned = files
    wrong = ReleaseTree(Tarball(upstream.file, "0" * 64, server(upstream.file)))
    with pytest.raises(LabError, match=f"gave sha256 {upstream.sha256}, the spec says {'0' * 64}"):
        tarballs.find(wrong, home)
    assert list(tarballs.sources_dir(home).iterdir()) == []


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_offline_without_a_mirror_is_a_quick_skip_saying_what_to_get_and_where(home, files):
    made, upstream, pruned = files
    url = f"http://127.0.0.1:{closed_port()}/linux-4.19.1.tar.xz"
    started = time.monotonic()
    with pytest.raises(KernelUnavailable) as e:
        tarballs.find(tree_of(upstream, pruned, url=url), home)
    assert time.monotonic() - started < 5
    message = str(e.value)
    assert message.startswith(f"linux-4.19.1.tar.xz (sha256 {upstream.sha256}) not in the kernel cache or any mirror "
                              f"and 127.0.0.1 unreachable (")
    assert f"download it from {url} into {tarballs.sources_dir(home)}/ or a directory named by NFSLAB_MIRROR" in message
    assert f"linux-4.19.1-pruned.tar.xz (sha256 {pruned.sha256}) is accepted instead" in message


def test_an_http_error_is_unreachable_too(home, files, server):
    made, upstream, pruned = files
    with pytest.raises(KernelUnavailable, match=r"127.0.0.1 unreachable \(HTTP 404\)"):
        tarballs.find(tree_of(upstream, pruned, url=server("missing.tar.xz")), home)


# ---- building from one -------------------------------------------------------------------------------------------

class StopAtMake(Exception):
    pass


def test_a_full_build_is_keyed_by_the_sha256_and_unpacks_either_layout(home, files, tmp_path, monkeypatch):
    """The same tree found in two places gets the same build directory; the upstream tarball's top directory
    and the pruned one's flat layout both unpack to src/Makefile; make gets ARCH=x86_64 CROSS_COMPILE=."""
    made, upstream, pruned = files
    row = load_kernel(KERNELS / "mainline-4.19.yaml")
    makes = []
    real_run = kernels.run

    def run(argv, **kw):
        if argv[0] == "make":
            makes.append(argv)
            raise StopAtMake
        return real_run(argv, **kw)
    monkeypatch.setattr(kernels, "run", run)

    def build_dir(mirror: Path, tree: ReleaseTree) -> Path:
        monkeypatch.setenv("NFSLAB_MIRROR", str(mirror))
        with pytest.raises(StopAtMake):
            kernels.full_build(dataclasses.replace(row, source={**row.source, "tree": tree}), home)
        built = sorted(home.kernels.glob("build-mainline-4.19-*"))
        assert len(built) == 1
        return built[0]

    for tarball in (upstream, pruned):
        dirs = []
        for place in ("a", "b"):
            mirror = tmp_path / place / tarball.file.split(".tar")[0]
            mirror.mkdir(parents=True)
            (mirror / tarball.file).write_bytes((made / tarball.file).read_bytes())
            d = build_dir(mirror, ReleaseTree(tarball))
            assert (d / "src" / "Makefile").exists() and (d / "src" / "fs/nfs/dir.c").exists()
            dirs.append(d.name)
            d.rename(tmp_path / place / f"{tarball.file}.built")
        key = kernels.build_key(kernels.FULL_RECIPE, tarball.sha256, (KERNELS / "config/lab-4.19.config").read_bytes())
        assert dirs[0] == dirs[1] == f"build-mainline-4.19-{key}"
    assert all(argv[:6] == ["make", "-C", argv[2], argv[3], "ARCH=x86_64", "CROSS_COMPILE="] for argv in makes)
