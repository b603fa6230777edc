"""Fetching packages from Debian suites without touching the host's apt sources.

Each suite gets its own apt configuration and state under NFSLAB_HOME/apt/<suite>/ (sources, lists, cache), signed
by the host's debian-archive-keyring. Only Debian's archive is reachable here, so this is how kernels of other
suites (bullseye 5.10, trixie 6.12, …) and linux-source/headers packages are had.
"""
from __future__ import annotations

import re
from pathlib import Path

from .boxes import mirror
from .errors import KernelUnavailable
from .proc import run

KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


class Suite:
    """One Debian suite as a private apt universe."""

    def __init__(self, root: Path, suite: str, log: Path):
        self.root = root / suite
        self.suite = suite
        self.log = log

    def _options(self) -> list[str]:
        r = self.root
        return ["-o", f"Dir::Etc={r / 'etc'}", "-o", f"Dir::State::Lists={r / 'lists'}",
                "-o", f"Dir::Cache={r / 'cache'}", "-o", "Dir::State::Status=/dev/null",
                "-o", "APT::Architecture=amd64", "-o", "Debug::NoLocking=1", "-o", "APT::Sandbox::User=root"]

    def update(self) -> None:
        for d in ("etc/apt.conf.d", "etc/preferences.d", "etc/sources.list.d", "lists/partial",
                  "cache/archives/partial"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        (self.root / "etc/sources.list").write_text(f"deb [signed-by={KEYRING}] {mirror()} {self.suite} main\n")
        cp = run(["apt-get", *self._options(), "update", "-q"], step=f"apt update {self.suite}", timeout=300,
                 log=self.log, check=False)
        if cp.returncode != 0:
            raise KernelUnavailable(f"apt-get update for {self.suite} failed (log: {self.log})")

    def depends(self, package: str) -> list[str]:
        out = run(["apt-cache", *self._options(), "depends", package], step=f"apt-cache {self.suite}",
                  timeout=60, log=self.log, check=False).stdout
        return re.findall(r"^\s+Depends: (\S+)", out, re.M)

    def version(self, package: str) -> str:
        out = run(["apt-cache", *self._options(), "show", "--no-all-versions", package], step="apt-cache show",
                  timeout=60, log=self.log, check=False).stdout
        m = re.search(r"^Version: (\S+)", out, re.M)
        if not m:
            raise KernelUnavailable(f"package {package} not found in Debian {self.suite}")
        return m.group(1)

    def download(self, package: str, dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        run(["apt-get", *self._options(), "download", "-q", package], step=f"apt download {package}",
            timeout=1200, log=self.log, cwd=dest)
        found = sorted(dest.glob(f"{package.split('=')[0]}_*.deb"))
        if not found:
            raise KernelUnavailable(f"apt-get download {package} gave no .deb (log: {self.log})")
        return found[-1]


def image_package(suite: Suite, package: str) -> str:
    """A meta package (linux-image-cloud-amd64) stands for the concrete image it depends on."""
    if re.match(r"linux-image-\d", package):
        return package
    for dep in suite.depends(package):
        if re.match(r"linux-image-\d", dep):
            return dep
    raise KernelUnavailable(f"{package} in Debian {suite.suite} names no linux-image package")
