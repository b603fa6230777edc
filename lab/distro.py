"""Distribution boxes as clients (CentOS 7, Ubuntu 16.04): the seed's kernels, which exist only as distro packages.

Such a client is not booted from a kernel file: it is the distribution's own Vagrant box, provisioned to install the
pinned kernel package (which the host fetched, lab/boxsource.py, and Vagrant uploads: the VMs have no network),
make it the default boot entry and trust the lab's ssh key; the topology then reloads the VM and the lab checks
`uname -r`. Which commands do that is a registry of families looked up from the package name, so another
distribution is one more family here. Pure: the scripts are rendered, nothing runs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import jinja2

from .paths import TEMPLATES

INSECURE_KEY = Path("/usr/share/rubygems-integration/all/gems/vagrant-2.3.4/keys/vagrant")
#: where Vagrant's file provisioner puts the packages the host fetched, in the guest
GUEST_PACKAGES = "/tmp/nfslab-packages"


@dataclass(frozen=True)
class Family:
    name: str
    package_pattern: str          # a kernel package of this family
    template: str                 # provisioning script template in lab/templates/

    def release(self, package: str) -> str:
        raise NotImplementedError


class RedHat(Family):
    def release(self, package: str) -> str:
        """kernel-3.10.0-862.11.6.el7 → 3.10.0-862.11.6.el7.x86_64 (what uname -r prints)."""
        return package.removeprefix("kernel-") + ".x86_64"


class Debianish(Family):
    def release(self, package: str) -> str:
        """linux-image-4.4.0-130-generic → 4.4.0-130-generic."""
        return package.removeprefix("linux-image-")


FAMILIES = (
    RedHat("redhat", r"^kernel-\d[\w.\-]*\.el\d+$", "provision-redhat.sh.j2"),
    Debianish("debian", r"^linux-image-\d[\w.\-]*$", "provision-debian.sh.j2"),
)


#: the families' package names, as an error lists them
KNOWN_PACKAGES = ("kernel-*.elN", "linux-image-*")


def family_of(kernel_package: str) -> Family:
    """The family whose pattern the whole name matches (ASCII only: the name goes into a shell script)."""
    for family in FAMILIES:
        if re.fullmatch(family.package_pattern, kernel_package, re.ASCII):
            return family
    raise ValueError(f"no distribution family knows kernel package {kernel_package!r} "
                     f"(known: {', '.join(KNOWN_PACKAGES)})")


@dataclass(frozen=True)
class DistroClient:
    """A client kernel that comes as a distribution box + a pinned kernel package."""

    box: str
    box_version: str | None
    kernel_package: str
    release: str
    provision: str                # the shell script Vagrant runs in the box
    packages: Path | None = None  # the host's directory of packages Vagrant uploads to GUEST_PACKAGES first
    nfs_modules: str = ""         # NFS modules load from the package's own tree (as KernelFiles says it)

    @property
    def vmlinuz(self) -> None:    # not booted from a file
        return None


def provision_script(kernel_package: str, ssh_pub: str) -> str:
    family = family_of(kernel_package)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    template = env.from_string((TEMPLATES / family.template).read_text())
    return template.render(package=kernel_package, release=family.release(kernel_package), ssh_pub=ssh_pub.strip(),
                           packages=GUEST_PACKAGES)


def distro_client(box: str, box_version: str | None, kernel_package: str, ssh_pub: str,
                  packages: Path | None = None) -> DistroClient:
    return DistroClient(box=box, box_version=box_version, kernel_package=kernel_package,
                        release=family_of(kernel_package).release(kernel_package),
                        provision=provision_script(kernel_package, ssh_pub), packages=packages)
