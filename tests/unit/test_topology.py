"""The topology value and its rendered Vagrantfile (golden), the IP plan, the libvirt network XML."""
from pathlib import Path

import pytest

from lab import topology
from lab.paths import LabHome
from lab.state import StateFile
from tests import CHECKOUT

KERNEL = topology.KernelFiles(Path("/var/lib/nfslab/boxes/b/vmlinuz"), Path("/var/lib/nfslab/boxes/b/initrd"),
                              "6.1.0-50-cloud-amd64")


def sample(driver="qemu", client=None):
    return topology.plan(lab_id="abc123", slot=3, kernel_name="debian-6.1", box="nfslab-bookworm-000000000000",
                         server_kernel=KERNEL, client_kernel=client or KERNEL, ssh_key=Path("/var/lib/nfslab/ssh/id_ed25519"),
                         driver=driver, emulator=Path("/var/lib/nfslab/bin/qemu-tcg"))


def test_vagrantfile_matches_golden(golden):
    golden.check("Vagrantfile.tcg", topology.render_vagrantfile(sample()))


def test_vagrantfile_with_kvm_matches_golden(golden):
    golden.check("Vagrantfile.kvm", topology.render_vagrantfile(sample("kvm")))


def test_kvm_topology_drops_the_tcg_wrapper():
    assert sample("kvm").emulator is None
    assert "emulator_path" not in topology.render_vagrantfile(sample("kvm"))


def test_ip_plan_and_names():
    t = sample()
    assert [m.name for m in t.machines] == ["server", "alice", "bob"]
    assert [m.nfs_ip for m in t.machines] == ["192.168.203.10", "192.168.203.11", "192.168.203.12"]
    assert t.mgmt.cidr == "192.168.103.0/24" and t.nfs.cidr == "192.168.203.0/24"
    assert t.domains == ["nfslab-abc123-server", "nfslab-abc123-alice", "nfslab-abc123-bob"]
    alice = t.machine("alice")
    assert "nfslab.name=alice" in alice.cmdline and "nfslab.ip=192.168.203.11/24" in alice.cmdline
    assert "init=/sbin/lab-init" in alice.cmdline


def test_bridge_names_fit_the_kernel_limit():
    for slot in (0, topology.MAX_SLOTS - 1):
        for net in topology.networks_for_slot("ffffff", slot):
            assert len(net.bridge) <= 15


def test_networks_are_isolated_and_fast():
    mgmt, nfs = topology.networks_for_slot("abc123", 0)
    xml = topology.network_xml(mgmt, dhcp=True)
    assert "<forward" not in xml                 # nothing routed out of the namespace
    assert "no-ping" in xml and "<dhcp>" in xml
    assert "<dhcp>" not in topology.network_xml(nfs, dhcp=False)


def test_slots_skip_live_topologies(tmp_path):
    home = LabHome(tmp_path)
    home.topologies.mkdir(parents=True)
    StateFile(home.topologies / "a" / "state.json").set("slot", 0)
    StateFile(home.topologies / "b" / "state.json").set("slot", 1)
    dead = StateFile(home.topologies / "c" / "state.json")
    dead.set("slot", 2)
    dead.set("destroyed", True)
    assert topology.allocate_slot(home) == 2


def centos_client():
    from lab.distro import distro_client
    return distro_client("centos/7", "1809.01", "kernel-3.10.0-862.11.6.el7", "ssh-ed25519 AAAAtest nfslab")


def test_distribution_client_vagrantfile_matches_golden(golden):
    golden.check("Vagrantfile.centos7", topology.render_vagrantfile(sample(client=centos_client())))


def debian_box_client():
    from lab.distro import distro_client
    return distro_client("nfslab/debian-11", "11.11.1", "linux-image-5.10.0-30-amd64", "ssh-ed25519 AAAAtest nfslab",
                         packages=Path("/var/lib/nfslab/kernels/box-bullseye-linux-image-5.10.0-30-amd64_5.10.218-1/"
                                       "packages"))


def test_debian_box_client_vagrantfile_matches_golden(golden):
    """debian-11-box (matrices/box-source.yaml): the host's package directory is uploaded before the script runs,
    and Vagrant configures eth1 itself (no auto_config: false, the guest is detected)."""
    text = topology.render_vagrantfile(sample(client=debian_box_client()))
    alice = text[text.index('config.vm.define "alice"'):text.index('config.vm.define "bob"')]
    upload = alice.index('m.vm.provision "file", source: "/var/lib/nfslab/kernels/box-bullseye-')
    assert upload < alice.index('m.vm.provision "shell"') and 'destination: "/tmp/nfslab-packages"' in alice
    assert "auto_config" not in alice and "m.vm.guest = nil" in alice
    assert "config.vm.box_check_update = false" in text
    golden.check("Vagrantfile.debian11-box", text)


def test_distribution_clients_boot_their_box_and_are_provisioned():
    t = sample(client=centos_client())
    assert t.provisioned == ["alice", "bob"]
    alice, server = t.machine("alice"), t.machine("server")
    assert alice.box == "centos/7" and alice.kernel is None and "grubby --set-default" in alice.provision
    assert server.box is None and server.kernel is not None      # the server stays the lab box
    assert len(t.ssh_keys) == 2                                   # the lab key, then Vagrant's insecure key
    assert sample().ssh_keys == (Path("/var/lib/nfslab/ssh/id_ed25519"),)


def test_lab_clean_prunes_only_stale_boxes(tmp_path):
    from lab import boxes
    home = LabHome(tmp_path).ensure()
    boxes.ensure_ssh_key(home)
    current = boxes.box_name(home)
    for parent in (home.vagrant_home / "boxes", home.boxes):
        (parent / current).mkdir(parents=True)
        (parent / "nfslab-bookworm-000000000000").mkdir(parents=True)
        (parent / "someone-elses-box").mkdir(parents=True)
    assert boxes.prune_stale(home) == ["stale box nfslab-bookworm-000000000000"]
    for parent in (home.vagrant_home / "boxes", home.boxes):
        assert sorted(p.name for p in parent.iterdir()) == sorted([current, "someone-elses-box"])


def test_one_ssh_config_call_gives_every_machine_its_address():
    from lab.topology import parse_ssh_config
    text = ("Host server\n  HostName 192.168.101.23\n  User vagrant\n  Port 22\n"
            "  IdentityFile \"/var/lib/nfslab/ssh/id_ed25519\"\n\n"
            "Host alice\n  HostName 192.168.101.87\n  Port 22\n\n# a comment\nHost bob\n  HostName 192.168.101.44\n")
    hosts = parse_ssh_config(text)
    assert {name: conf["HostName"] for name, conf in hosts.items()} == \
        {"server": "192.168.101.23", "alice": "192.168.101.87", "bob": "192.168.101.44"}
    assert hosts["server"]["IdentityFile"] == "/var/lib/nfslab/ssh/id_ed25519"
    assert "Port" not in hosts["bob"]


def test_the_state_file_takes_only_its_listed_keys(tmp_path):
    from lab.topology import read_state, state_file
    state = state_file(tmp_path)
    state.set("kept", True)
    with pytest.raises(KeyError, match="'keep' is not a topology state key"):
        state.set("keep", True)
    assert read_state(tmp_path) == {"resources": [], "kept": True}


def test_every_key_the_code_writes_is_listed():
    """`….state.set("key", …)` anywhere in lab/ and bench/ names a key of TopologyState (host.json's aside)."""
    import re
    from lab.topology.statefile import KEYS
    written = {key for folder in ("lab", "bench") for path in (CHECKOUT / folder).rglob("*.py")
               if path.name != "host.py" for key in re.findall(r"\bstate\.set\(\"(\w+)\"", path.read_text())}
    assert written and written <= KEYS, written - KEYS
