"""Where nfslab keeps things on the host: one place for every path and name the lab owns.

Everything lives under NFSLAB_HOME (default /var/lib/nfslab) rather than /root, because QEMU runs as the
libvirt-qemu user and must be able to read the box's kernel and initrd (/root is mode 700 on Debian).
nfslab's own files (the default matrix, the kernel specs, the templates) are installed with the package, so `lab`
works from any directory, checkout or not.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: The network namespace every lab VM network lives in (the network rule: nothing in the host namespace).
NETNS = os.environ.get("NFSLAB_NETNS", "nfslab")
#: Every libvirt object a topology creates starts with this, so `lab clean` can find leftovers by name.
PREFIX = "nfslab"
#: The installed package; its data files are package data (pyproject.toml), found next to the code.
PACKAGE = Path(__file__).resolve().parent
#: The matrix `lab run` uses without --matrix when the working directory has no matrix.yaml.
DEFAULT_MATRIX = PACKAGE / "data" / "matrix.yaml"
#: The kernel specs (with their patches/ and config/) of a matrix that has no kernels/ beside or above it.
KERNELS = PACKAGE / "data" / "kernels"
#: Every Jinja2 template the lab renders: the Vagrantfile, the HTML table, distribution boxes' provisioning.
TEMPLATES = PACKAGE / "templates"
VAGRANTFILE_TEMPLATE = TEMPLATES / "Vagrantfile.j2"
#: The HTML compatibility table (lab/render/html.py renders it).
REPORT_TEMPLATE = TEMPLATES / "report.html.j2"


def matrix_file(given: Path | None = None) -> Path:
    """The matrix a command reads: the one given, else ./matrix.yaml if there is one, else nfslab's own. `lab`
    (lab/cli/common.py, which checks a given one first) and `pytest --matrix` both choose it here."""
    if given is not None:
        return given
    local = Path("matrix.yaml")
    return local if local.exists() else DEFAULT_MATRIX


@dataclass(frozen=True)
class LabHome:
    """The lab's directories under one root; created on demand, never under a mode-700 home."""

    root: Path

    @classmethod
    def default(cls) -> "LabHome":
        return cls(Path(os.environ.get("NFSLAB_HOME", "/var/lib/nfslab")))

    @property
    def vagrant_home(self) -> Path:
        return self.root / "vagrant.d"

    @property
    def boxes(self) -> Path:
        return self.root / "boxes"

    @property
    def kernels(self) -> Path:
        return self.root / "kernels"

    @property
    def pool(self) -> Path:
        return self.root / "pool"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def topologies(self) -> Path:
        return self.root / "topologies"

    @property
    def ssh_key(self) -> Path:
        return self.root / "ssh" / "id_ed25519"

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    def ensure(self) -> "LabHome":
        for d in (self.root, self.vagrant_home, self.boxes, self.kernels, self.pool, self.run, self.state,
                  self.topologies, self.ssh_key.parent, self.bin):
            d.mkdir(parents=True, exist_ok=True)
        # qemu (libvirt-qemu) must traverse to kernels/ and the pool
        for d in (self.root, self.kernels, self.pool, self.boxes, self.vagrant_home, self.bin):
            d.chmod(0o755)
        self.ssh_key.parent.chmod(0o700)
        return self
