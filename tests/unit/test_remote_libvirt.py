"""A remote libvirt (`--libvirt-uri qemu+ssh://…`) without a remote host: the URI's checks, what the topology and its
Vagrantfile get (golden), the kernel files staged as volumes, and what `lab clean` removes there. The real thing,
against a second libvirtd over ssh, is tests/lab/test_remote_libvirt.py."""
from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from lab import cleanup, topology
from lab.errors import LabError
from lab.host import Host
from lab.kernellab import boot_lab
from lab.libvirt import BadLibvirtURI, LibvirtTarget, given_target
from lab.paths import DEFAULT_MATRIX, LabHome
from lab.remotehost import PrivateLibvirt
from lab.remotelibvirt import RemoteLibvirtHost, lab_host, recorded_targets, target_of
from lab.topology.plan import ruby_string

URI = "qemu+ssh://root@lab2.example/system?keyfile=/etc/nfslab/pool_key"
KERNEL = topology.KernelFiles(Path("/var/lib/nfslab/boxes/b/vmlinuz"), Path("/var/lib/nfslab/boxes/b/initrd"),
                              "6.1.0-50-cloud-amd64")


# ---- the URI ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("uri, host, user, keyfile, no_verify, command", [
    (None, None, None, None, False, "ssh"),
    ("qemu:///system", None, None, None, False, "ssh"),
    (URI, "lab2.example", "root", "/etc/nfslab/pool_key", False, "ssh"),
    ("qemu+ssh://lab2/system?no_verify=1", "lab2", None, None, True, "ssh"),
    ("qemu+ssh://ci@10.0.0.7/system?keyfile=/k&command=/opt/ssh&socket=/run/libvirt/libvirt-sock", "10.0.0.7", "ci",
     "/k", False, "/opt/ssh"),
])
def test_uris_the_lab_can_drive(uri, host, user, keyfile, no_verify, command):
    t = LibvirtTarget.parse(uri)
    assert (t.host, t.user, t.keyfile, t.no_verify, t.ssh_command) == (host, user, keyfile, no_verify, command)
    assert t.remote == (host is not None)
    assert t.uri == (uri or "qemu:///system")


@pytest.mark.parametrize("uri, why", [
    ("qemu+tls://lab2/system", "transport 'qemu+tls' is not ssh"),
    ("qemu+tcp://lab2/system", "transport 'qemu+tcp' is not ssh"),
    ("lab2", "transport '(none)' is not ssh"),
    ("qemu:///session", "a local URI must be exactly qemu:///system"),
    ("qemu+ssh://lab2/session", "path '/session': the lab needs the system instance"),
    ("qemu+ssh://lab2", "path '(none)'"),
    ("qemu+ssh:///system", "no host"),
    ("qemu+ssh://lab2:2222/system", "a port (2222): vagrant-libvirt 0.11.2 cannot proxy ssh"),
    ("qemu+ssh://lab2:x/system", "the port is not a number"),
    ("qemu+ssh://u:pw@lab2/system", "a password"),
    ("qemu+ssh://lab2/system?keyfle=/k", "unknown parameter 'keyfle'"),
    ("qemu+ssh://lab2/system?keyfile=/a&keyfile=/b", "parameter 'keyfile' twice"),
    ("qemu+ssh://lab2/system?no_verify=yes", "no_verify=yes: 0 or 1"),
    ("qemu+ssh://lab2/system?keyfile=id_rsa", "keyfile=id_rsa: an absolute path"),
    ("qemu+ssh://-oProxyCommand=x/system", "starts with '-'"),
    # what a Vagrantfile (Ruby) or a shell would interpret never reaches either
    ('qemu+ssh://lab2/system"; system("x")', "has a character"),
    ("qemu+ssh://lab2/system?keyfile=/k#{x}", "has a character"),
    ("qemu+ssh://lab2/system?command=/bin/sh -c x", "has a character"),
    ("qemu+ssh://lab2/system?keyfile=/k'x", "has a character"),
    ("qemu+ssh://lab2/system\nx", "has a character"),
])
def test_a_bad_uri_is_one_line_naming_what_is_allowed(uri, why):
    with pytest.raises(BadLibvirtURI) as e:
        LibvirtTarget.parse(uri)
    message = str(e.value)
    assert message.startswith(f"--libvirt-uri {uri}: ") and why in message
    assert message.endswith("(allowed: qemu:///system, or qemu+ssh://[USER@]HOST/system[?keyfile=KEY&no_verify=1&"
                            "command=SSH])")


def test_a_netns_only_goes_with_a_remote_uri():
    assert LibvirtTarget.parse(URI, "nfslabr-x-lab").netns == "nfslabr-x-lab"
    with pytest.raises(BadLibvirtURI, match="--libvirt-netns ns: only for a qemu\\+ssh:// URI"):
        LibvirtTarget.parse("qemu:///system", "ns")


def test_given_target_checks_files_and_the_capture(tmp_path):
    with pytest.raises(BadLibvirtURI, match="no such file: keyfile=/etc/nfslab/pool_key"):
        given_target(URI)
    key = tmp_path / "key"
    key.write_text("")
    uri = f"qemu+ssh://lab2/system?keyfile={key}"
    assert given_target(uri).keyfile == str(key)
    with pytest.raises(BadLibvirtURI, match="capture: on.*not here \\(fix: a matrix with `capture: off`\\)"):
        given_target(uri, capture=True)
    assert given_target(None, capture=True).uri == "qemu:///system"   # the lab's own captures as ever


def test_the_ssh_to_the_vms_goes_through_the_libvirt_host():
    t = LibvirtTarget.parse(URI)
    assert t.proxy_argv("192.168.103.10", 22) == [
        "ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=15", "-l", "root", "-i", "/etc/nfslab/pool_key",
        "-o", "IdentitiesOnly=yes", "-W", "192.168.103.10:22", "lab2.example"]
    assert t.proxy_command == ("ssh -o BatchMode=yes -o ConnectTimeout=15 -l root -i /etc/nfslab/pool_key "
                               "-o IdentitiesOnly=yes -W %h:%p lab2.example")
    loose = LibvirtTarget.parse("qemu+ssh://lab2/system?no_verify=1&command=/opt/ssh")
    assert shlex.split(loose.proxy_command) == [
        "/opt/ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=15", "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-W", "%h:%p", "lab2"]
    assert LibvirtTarget().proxy_command is None


# ---- the topology and its Vagrantfile ------------------------------------------------------------------------------
def remote_sample(netns: str = "") -> topology.Topology:
    staged = topology.KernelFiles(Path("/var/lib/libvirt/images/nfslab/nfslab-kernel-0123456789abcdef-vmlinuz"),
                                  Path("/var/lib/libvirt/images/nfslab/nfslab-kernel-fedcba9876543210-initrd"),
                                  KERNEL.release)
    return topology.plan(lab_id="abc123", slot=3, kernel_name="debian-6.1", box="nfslab-bookworm-000000000000",
                         server_kernel=staged, client_kernel=staged, ssh_key=Path("/var/lib/nfslab/ssh/id_ed25519"),
                         driver="qemu", emulator=None, netns=netns, libvirt=LibvirtTarget.parse(URI, netns or None))


def test_remote_vagrantfile_matches_golden(golden):
    golden.check("Vagrantfile.remote", topology.render_vagrantfile(remote_sample()))


def test_remote_vagrantfile_names_the_uri_the_proxy_and_no_local_file():
    text = topology.render_vagrantfile(remote_sample("nfslabr-x-lab"))
    assert f'lv.uri = "{URI}"' in text
    assert "lv.proxy_command = 'ssh -o BatchMode=yes" in text and "-W %h:%p lab2.example'" in text
    assert "emulator_path" not in text                 # the TCG wrapper is a file on this machine
    assert "/var/lib/nfslab/boxes" not in text         # the kernels are paths on the libvirt host
    assert "ip netns exec nfslabr-x-lab vagrant" in text


def test_the_local_vagrantfile_has_no_proxy():
    local = topology.plan(lab_id="abc123", slot=3, kernel_name="debian-6.1", box="b", server_kernel=KERNEL,
                          client_kernel=KERNEL, ssh_key=Path("/k"))
    assert local.proxy_command is None and "proxy_command" not in topology.render_vagrantfile(local)


def test_ruby_string_interpolates_nothing():
    assert ruby_string("a'b\\c #{x} %h") == "'a\\'b\\\\c #{x} %h'"


def test_the_uri_goes_from_the_lab_host_into_the_topology_state_and_vagrantfile(tmp_path, monkeypatch):
    """lab_host → boot_lab → reserve (state file) → plan → Vagrantfile: the one target all the way."""
    home = LabHome(tmp_path / "home")
    host = lab_host(home, LibvirtTarget.parse(URI))
    assert isinstance(host, RemoteLibvirtHost) and isinstance(lab_host(home, LibvirtTarget()), Host)
    monkeypatch.setattr(RemoteLibvirtHost, "upload", lambda self, path: f"/remote/pool/{path.name}")
    seen = {}

    def create(live, progress=None):
        seen["vagrantfile"] = live.vagrantfile()
        seen["state"] = live.state.load()
        raise LabError("topology: vagrant up", "stopped by the test")

    monkeypatch.setattr(topology.LiveTopology, "create", create)
    monkeypatch.setattr(topology.LiveTopology, "destroy", lambda live: None)
    with pytest.raises(LabError, match="stopped by the test"):
        boot_lab(host, box="b", kernel_name="debian-6.1", server=KERNEL, client=KERNEL, run=tmp_path / "run")
    assert seen["state"]["libvirt"] == {"uri": URI, "netns": None}
    assert f'lv.uri = "{URI}"' in seen["vagrantfile"] and "lv.proxy_command = " in seen["vagrantfile"]
    assert 'lv.kernel = "/remote/pool/vmlinuz"' in seen["vagrantfile"]
    assert 'lv.initrd = "/remote/pool/initrd"' in seen["vagrantfile"]


# ---- a fake remote libvirt: kernel volumes, and what lab clean removes -------------------------------------------
class FakeLibvirt:
    """Enough of virsh for the lab's calls on a remote libvirt; records every call."""

    def __init__(self):
        self.calls: list[tuple[str, ...]] = []
        self.domains = {"nfslab-abc123-server": ["booted"], "someone-elses-vm": []}
        self.networks = {"nfslab-abc123-mgmt", "nfslab-abc123-nfs", "default"}
        self.pools = {"nfslab", "default"}
        self.volumes = {"nfslab-abc123-server.img", "nfslab-bookworm-1_vagrant_box_image_0_box.img",
                        "nfslab-kernel-aa-vmlinuz", "someone-elses.qcow2"}

    def __call__(self, host, *args, check=True, **kw) -> str:
        self.calls.append(args)
        cmd, rest = args[0], args[1:]
        if cmd == "list":
            return "\n".join(self.domains)
        if cmd == "domstate":
            return "running" if rest[0] in self.domains else ""
        if cmd == "snapshot-list":
            return "\n".join(self.domains.get(rest[0], []))
        if cmd == "undefine":
            self.domains.pop(rest[0], None)
        if cmd == "net-list":
            return "\n".join(sorted(self.networks))
        if cmd == "net-undefine":
            self.networks.discard(rest[0])
        if cmd == "vol-list":
            return "\n".join(f"{v} /var/lib/libvirt/images/nfslab/{v}" for v in sorted(self.volumes))
        if cmd == "vol-delete":
            self.volumes.discard(rest[-1])
        if cmd == "vol-create-as":
            self.volumes.add(rest[1])
        if cmd == "vol-path":
            return f"/var/lib/libvirt/images/nfslab/{rest[-1]}\n"
        if cmd == "pool-list":
            return "\n".join(sorted(self.pools))
        if cmd == "pool-undefine":
            self.pools.discard(rest[0])
        return ""


@pytest.fixture
def fake(monkeypatch):
    f = FakeLibvirt()
    monkeypatch.setattr(RemoteLibvirtHost, "virsh", lambda host, *args, **kw: f(host, *args, **kw))
    monkeypatch.setattr(RemoteLibvirtHost, "libvirtd_running", lambda self: True)
    return f


def test_kernel_files_are_uploaded_once_named_by_their_content(tmp_path, fake):
    vmlinuz, initrd = tmp_path / "vmlinuz", tmp_path / "initrd"
    vmlinuz.write_bytes(b"kernel")
    initrd.write_bytes(b"initrd")
    host = RemoteLibvirtHost(LabHome(tmp_path / "home"), LibvirtTarget.parse(URI))
    staged = host.stage(topology.KernelFiles(vmlinuz, initrd, "6.1", cmdline="x"))
    assert staged.vmlinuz.parent == Path("/var/lib/libvirt/images/nfslab") and staged.cmdline == "x"
    assert staged.vmlinuz.name.startswith("nfslab-kernel-") and staged.vmlinuz.name.endswith("-vmlinuz")
    uploads = [c for c in fake.calls if c[0] == "vol-upload"]
    assert [c[-1] for c in uploads] == [str(vmlinuz), str(initrd)]
    assert host.stage(topology.KernelFiles(vmlinuz, initrd, "6.1")) == topology.KernelFiles(
        staged.vmlinuz, staged.initrd, "6.1")
    assert len([c for c in fake.calls if c[0] == "vol-upload"]) == 2       # there already: not again
    assert {r["name"] for r in host.state.resources("volume")} == {staged.vmlinuz.name, staged.initrd.name}
    distro = object()
    assert host.stage(distro) is distro                                   # a distribution box boots its own disk


def test_lab_clean_removes_the_lab_s_things_on_the_remote_libvirt_and_nothing_else(tmp_path, fake, monkeypatch):
    home = LabHome(tmp_path / "home")
    target = LibvirtTarget.parse(URI)
    remote = RemoteLibvirtHost(home, target)
    remote.state.record("target", URI, netns=None)
    remote.state.record("pool", "nfslab", target="/var/lib/libvirt/images/nfslab")
    reserved = topology.reserve(home, tmp_path / "run", target)
    topology.state_file(reserved.dir).record("domain", "nfslab-abc123-server")
    topology.state_file(reserved.dir).record("network", "nfslab-abc123-mgmt")
    # the lab's own host is not up: nothing to do here, and nothing may be done to this machine's namespaces
    monkeypatch.setattr(Host, "libvirtd_running", lambda self: False)
    monkeypatch.setattr(Host, "down", lambda self: [])
    assert [t.uri for t in recorded_targets(home)] == [URI]
    assert isinstance(cleanup.host_for(Host(home), reserved.dir), RemoteLibvirtHost)
    assert target_of(topology.read_state(reserved.dir)) == target
    removed = cleanup.clean_everything(home)
    assert "domain nfslab-abc123-server" in removed and "network nfslab-abc123-mgmt" in removed
    assert "network nfslab-abc123-nfs on lab2.example" in removed            # a stray, by its prefix
    assert fake.domains == {"someone-elses-vm": []}
    assert fake.networks == {"default"}
    assert fake.volumes == {"someone-elses.qcow2"}
    assert fake.pools == {"default"}
    assert ("pool-delete", "nfslab") in fake.calls                          # its directory too: the lab made it
    assert not remote.state.path.exists() and not reserved.dir.exists()
    assert recorded_targets(home) == []


def test_a_pool_the_remote_host_had_stays(tmp_path, fake, monkeypatch):
    home = LabHome(tmp_path / "home")
    remote = RemoteLibvirtHost(home, LibvirtTarget.parse(URI))
    monkeypatch.setattr(Host, "libvirtd_running", lambda self: False)
    monkeypatch.setattr(Host, "down", lambda self: [])
    removed = cleanup.clean_remote(remote)
    assert "nfslab" in fake.pools and not any(c[0] == "pool-undefine" for c in fake.calls)
    assert "volume nfslab-kernel-aa-vmlinuz on lab2.example" in removed


def test_lab_clean_given_a_uri_cleans_a_remote_it_has_no_record_of(tmp_path, fake, monkeypatch):
    monkeypatch.setattr(Host, "libvirtd_running", lambda self: False)
    monkeypatch.setattr(Host, "down", lambda self: [])
    removed = cleanup.clean_everything(LabHome(tmp_path / "home"), libvirt=LibvirtTarget.parse(URI))
    assert "domain nfslab-abc123-server on lab2.example" in removed and fake.pools == {"nfslab", "default"}


def test_a_remote_that_does_not_answer_keeps_its_record(tmp_path, monkeypatch):
    home = LabHome(tmp_path / "home")
    remote = RemoteLibvirtHost(home, LibvirtTarget.parse(URI))
    remote.state.record("target", URI, netns=None)
    monkeypatch.setattr(RemoteLibvirtHost, "libvirtd_running", lambda self: False)
    assert cleanup.clean_remote(remote) == [] and remote.down() == []
    assert recorded_targets(home) == [LibvirtTarget.parse(URI)]


# ---- the harness's private libvirt directories ---------------------------------------------------------------------
def test_a_second_libvirtd_sees_libvirt_directories_of_its_own(tmp_path):
    private = PrivateLibvirt(tmp_path / "lv")
    argv = private.wrap(["/usr/sbin/libvirtd", "-d"], mask_kvm=tmp_path / "kvm-masked", extra_dirs=("/run/sshd",))
    assert argv[:5] == ["unshare", "-m", "--propagation", "private", "sh"]
    script = argv[-1]
    for name, target in PrivateLibvirt.DIRS.items():
        assert f"mount --bind {tmp_path / 'lv' / name} {target}" in script
    assert script.startswith("mount -t tmpfs -o mode=0755 nfslab-run /run; mkdir -p /run/libvirt; "
                             "mkdir -p /run/sshd; ")
    assert script.endswith("exec /usr/sbin/libvirtd -d")
    etc = tmp_path / "etc"
    (etc / "qemu").mkdir(parents=True)
    (etc / "qemu.conf").write_text("x")
    (etc / "storage").mkdir()
    private.create(etc)
    assert sorted(p.name for p in (tmp_path / "lv" / "etc").iterdir()) == ["qemu.conf"]   # no other daemon's objects
    assert private.socket == tmp_path / "lv" / "run" / "libvirt-sock"


# ---- pytest --matrix --libvirt-uri ---------------------------------------------------------------------------------
def test_pytest_refuses_a_bad_uri_in_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
                        f"--matrix={DEFAULT_MATRIX}", "--libvirt-uri", "qemu+tls://lab2/system"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 4, r.stdout + r.stderr
    assert "ERROR: --libvirt-uri qemu+tls://lab2/system: transport 'qemu+tls' is not ssh" in r.stderr


def test_a_run_on_a_remote_libvirt_cleans_local_orphans_on_the_lab_s_own(tmp_path):
    """host_for: a topology without a remote record is the lab's own libvirt's, whichever host does the cleaning."""
    home = LabHome(tmp_path / "home")
    local = topology.reserve(home, tmp_path / "run")
    there = topology.reserve(home, tmp_path / "run", LibvirtTarget.parse(URI))
    remote = RemoteLibvirtHost(home, LibvirtTarget.parse(URI))
    assert type(cleanup.host_for(remote, local.dir)) is Host
    assert cleanup.host_for(remote, there.dir) is remote
    assert type(cleanup.host_for(Host(home), local.dir)) is Host


def test_lab_ssh_to_a_remote_topology_goes_through_its_host(tmp_path):
    from lab import status
    remote = RemoteLibvirtHost(LabHome(tmp_path / "home"), LibvirtTarget.parse(URI, "nfslabr-x-lab"))
    argv = status.ssh_argv(remote, status.MachineUp("alice", "nfslab-abc123-alice", "running", "192.168.103.11", 22))
    assert argv[:5] == ["ip", "netns", "exec", "nfslabr-x-lab", "ssh"]
    assert argv[5:7] == ["-o", f"ProxyCommand={LibvirtTarget.parse(URI).proxy_command}"]
    assert argv[-1] == "root@192.168.103.11"
