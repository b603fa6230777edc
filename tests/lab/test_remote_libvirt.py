"""`--libvirt-uri qemu+ssh://…` against a real second libvirtd, reached over ssh: a lab host that lab/remotehost.py
starts in namespaces of its own on this machine (docs/remote-libvirt.md).

The first test boots no VM (about 30 s): the remote libvirt answers over ssh, a pool and a volume go there and come
back, the lab's RemoteLibvirtHost stages a kernel and lab/cleanup.py removes it all, and nothing is left on either
side. The second runs one real cell on the remote libvirt with `lab run` (several minutes under TCG) and checks that
its VMs ran there, gave a kernel result, and were all removed from it; the remote side's logs are kept in
tmp_path/remote-logs/ (libvirtd, sshd, the VMs' QEMU logs), the run's in tmp_path/runs/.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from lab.cleanup import clean_remote
from lab.host import Host
from lab.libvirt import LibvirtTarget
from lab.paths import DEFAULT_MATRIX, LabHome
from lab.remotehost import RemoteLabHost, prove
from lab.remotelibvirt import RemoteLibvirtHost, recorded_targets
from lab.results import RunDir

from .conftest import leftovers

KERNEL = "debian-6.1"
CELL = "vers=4.0,leases=on"


def test_remote_libvirt_over_ssh_without_vms(tmp_path):
    said = []
    left = prove(tmp_path / "remote", say=said.append)
    text = "\n".join(said)
    print(text)
    assert "Running hypervisor: QEMU" in text, text
    assert "uploaded and downloaded 3 MiB: identical" in text, text
    assert "10.254.19.2/30" in text, "the lab's ssh through the libvirt host did not land there:\n" + text
    assert "clean_remote removed: ['volume nfslab-kernel-" in text and "'pool nfslab on 10.254.19.2']" in text, text
    assert left == [], f"the remote lab host left: {left}"


def capture_off_matrix(tmp_path: Path) -> Path:
    """nfslab's default matrix without the capture (a remote libvirt has the VMs' tap devices; the lab refuses)."""
    text = DEFAULT_MATRIX.read_text()
    assert "capture: on" in text
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(text.replace("capture: on", "capture: off"))
    return matrix


def remote_virsh(remote: RemoteLabHost, *args: str) -> str:
    cp = subprocess.run(remote.client("virsh", "-q", "-c", remote.uri, *args), capture_output=True, text=True,
                        timeout=120)
    assert cp.returncode == 0, f"virsh {' '.join(args)} on the remote libvirt: {cp.stderr}"
    return cp.stdout


def test_a_cell_on_a_remote_libvirt(tmp_path):
    remote = RemoteLabHost(tmp_path / "remote")
    try:
        remote.up()
        runs = tmp_path / "runs"
        argv = [sys.executable, "-m", "lab", "run", "-m", str(capture_off_matrix(tmp_path)), "-k", KERNEL,
                "--cell", CELL, "--runs", str(runs), "--libvirt-uri", remote.uri,
                "--libvirt-netns", remote.client_netns]
        proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=2400)
        print(proc.stdout[-6000:], proc.stderr[-6000:])
        assert proc.returncode in (0, 1), (f"lab run exited {proc.returncode} (3 = lab error, 2 = refused): "
                                           f"{proc.stderr[-2000:]}")
        run_dir = RunDir(next(runs.iterdir()))
        records = run_dir.records()
        assert [r.cell_id for r in records] == [f"{KERNEL}/vers=4.0/leases=on"]
        record = records[0]
        assert record.status in ("pass", "fail"), f"not a kernel result: {record.verdict}"
        assert record.kernel_release.startswith("6.1."), record.kernel_release
        assert any(r["t"] > 0 for r in record.observation["reads"]), "no read after the rename"
        assert json.loads((run_dir.path / "run.json").read_text())["libvirt"] == remote.uri
        # the VMs ran on the remote libvirtd: its QEMU logs (virtlogd, in its own /var/log/libvirt) name them
        qemu_logs = sorted(p.name for p in (remote.private.root / "log" / "qemu").glob("nfslab-*.log"))
        assert {name.rsplit("-", 1)[-1] for name in qemu_logs} == {"server.log", "alice.log", "bob.log"}, qemu_logs
        # and took its VMs, their disks and networks away with it
        assert remote_virsh(remote, "list", "--all", "--name").split() == []
        assert remote_virsh(remote, "net-list", "--all", "--name").split() == []
        pools = remote_virsh(remote, "pool-list", "--all", "--name").split()
        volumes = remote_virsh(remote, "vol-list", "nfslab").split()[::2] if pools else []
        assert not [v for v in volumes if not v.startswith(("nfslab-bookworm-", "nfslab-kernel-"))], volumes
        # the pool with the box and kernels goes with the host at the end of a run, unless another run of this lab
        # home still uses it (then `lab clean` removes it); what lab clean does there, done now, leaves nothing
        home = LabHome.default()
        users = Host(home).other_users()
        assert not pools or users, f"the run left {pools} on the remote libvirt ({volumes}) and no other run uses it"
        clean_remote(RemoteLibvirtHost(home, LibvirtTarget.parse(remote.uri, remote.client_netns)))
        assert remote_virsh(remote, "pool-list", "--all", "--name").split() == []
        assert not [t for t in recorded_targets(home) if t.uri == remote.uri]
    finally:
        # the remote side's logs (libvirtd, virtlogd, sshd, the VMs' QEMU logs) outlive it, for a failure's reader
        for part in ("daemons", "sshd", "libvirt/log"):
            if (remote.root / part).is_dir():
                shutil.copytree(remote.root / part, tmp_path / "remote-logs" / part,
                                ignore=shutil.ignore_patterns("*.pid", "*key*", "kvm-masked"), dirs_exist_ok=True)
        remote.down()
    assert remote.leftovers() == []
    assert [x for x in leftovers() if "qemu" in x] == [], "a lab QEMU is still running"


def test_lab_clean_with_a_uri_removes_the_lab_s_leftovers_there(tmp_path):
    """What a killed run on a remote libvirt leaves (a network, a disk volume, the pool), and a lab home that has no
    record of it: `lab clean --libvirt-uri` finds them by name, removes them, and nothing else. No VM boots; the lab
    home and namespace name are the test's own, so no lab of this machine is touched."""
    remote = RemoteLabHost(tmp_path / "remote")
    try:
        remote.up()
        xml = tmp_path / "net.xml"
        xml.write_text("<network><name>nfslab-dead01-nfs</name><bridge name='nfldead0' stp='off'/></network>")
        for args in (("net-define", str(xml)), ("net-start", "nfslab-dead01-nfs"),
                     ("pool-define-as", "nfslab", "dir", "--target", "/var/lib/libvirt/images/nfslab"),
                     ("pool-build", "nfslab"), ("pool-start", "nfslab"),
                     ("vol-create-as", "nfslab", "nfslab-dead01-server.img", "1M"),
                     ("vol-create-as", "nfslab", "not-the-lab-s.img", "1M")):
            remote_virsh(remote, *args)
        env = {**os.environ, "NFSLAB_HOME": str(tmp_path / "home"), "NFSLAB_NETNS": f"{remote.client_netns}-none"}
        proc = subprocess.run([sys.executable, "-m", "lab", "clean", "--libvirt-uri", remote.uri, "--libvirt-netns",
                               remote.client_netns], env=env, capture_output=True, text=True, timeout=300)
        print(proc.stdout, proc.stderr)
        assert proc.returncode == 0, proc.stderr
        assert "removed network nfslab-dead01-nfs on 10.254.19.2" in proc.stderr
        assert "removed volume nfslab-dead01-server.img on 10.254.19.2" in proc.stderr
        assert remote_virsh(remote, "net-list", "--all", "--name").split() == []
        # a pool the lab did not make stays, with what is not the lab's in it
        assert remote_virsh(remote, "vol-list", "nfslab").split()[::2] == ["not-the-lab-s.img"]
    finally:
        remote.down()
    assert remote.leftovers() == []
