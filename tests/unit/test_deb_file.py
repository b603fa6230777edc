"""`source.deb.file` (lab run --kernel ./linux-image-….deb): the package is unpacked into a directory of its own.

Seen on real VMs: the first `lab run --kernel x.deb` was an ERROR, `dpkg-deb (subprocess): failed to create
directory`, because dpkg-deb -x makes only the last directory of its target and the cache directory was new."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from lab import prebuilt
from lab.errors import KernelUnavailable

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is Debian's (lab setup)")


def make_deb(tmp_path, files: dict[str, str]):
    pkg = tmp_path / "pkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN" / "control").write_text("Package: linux-image-test\nVersion: 1\nArchitecture: amd64\n"
                                           "Maintainer: nfslab <nfslab@localhost>\nDescription: test\n")
    for name, text in files.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(text)
    deb = tmp_path / "linux-image-test.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(pkg), str(deb)], check=True,
                   capture_output=True)
    return deb


def test_a_deb_unpacks_into_a_directory_that_does_not_exist_yet(tmp_path):
    """The package holds no kernel, so unpacking must get as far as looking for one: the error names that, not
    dpkg-deb's missing directory."""
    deb = make_deb(tmp_path, {"usr/share/doc/linux-image-test/README": "no kernel here\n"})
    out = tmp_path / "cache" / "debfile-0123"          # neither cache/ nor debfile-0123/ exists
    with pytest.raises(KernelUnavailable, match="holds no kernel"):
        prebuilt.unpack_deb(deb, out, tmp_path / "fetch.log")
