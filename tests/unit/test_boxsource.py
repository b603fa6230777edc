"""The `box` source kind on the host (lab/boxsource.py): whether a row's box and kernel package can be had, how a
.box file is added under the spec's name and version, and the reason a row is skipped. No Vagrant, apt or VM runs:
the commands are stand-ins that record what they were given."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from lab import boxsource
from lab.errors import KernelUnavailable
from lab.paths import LabHome
from lab.spec import load_kernel

CHECKOUT = Path(__file__).resolve().parents[2]
SPEC = CHECKOUT / "matrices" / "kernels" / "debian-11-box.yaml"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.delenv("NFSLAB_MIRROR", raising=False)
    h = LabHome(tmp_path / "home").ensure()
    h.ssh_key.with_suffix(".pub").write_text("ssh-ed25519 AAAAtest nfslab\n")
    return h


def kernel(**source):
    k = load_kernel(SPEC)
    return replace(k, source={**k.source, **source})


def without(k, *keys):
    return replace(k, source={key: v for key, v in k.source.items() if key not in keys})


def register(home: LabHome, name: str, version: str) -> None:
    (home.vagrant_home / "boxes" / name.replace("/", "-VAGRANTSLASH-") / version / "libvirt").mkdir(parents=True)


def test_a_box_is_present_in_exactly_its_pinned_version(home):
    register(home, "nfslab/debian-11", "11.11.0")
    assert boxsource.box_present(home, "nfslab/debian-11")
    assert not boxsource.box_present(home, "nfslab/debian-11", "11.11.1")
    assert not boxsource.box_present(home, "nfslab/debian-11", provider="virtualbox")
    register(home, "nfslab/debian-11", "11.11.1")
    assert boxsource.box_present(home, "nfslab/debian-11", "11.11.1")
    assert not boxsource.box_present(home, "centos/7")


def test_a_box_file_is_found_in_a_mirror_before_the_box_directory(home, tmp_path, monkeypatch):
    assert boxsource.find_box_file(home, "x.box") is None
    (home.boxes / "x.box").write_text("box")
    assert boxsource.find_box_file(home, "x.box") == home.boxes / "x.box"
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "x.box").write_text("box")
    monkeypatch.setenv("NFSLAB_MIRROR", f"{tmp_path / 'nothing'}:{mirror}")
    assert boxsource.find_box_file(home, "x.box") == mirror / "x.box"


def test_the_catalog_names_one_version_of_one_box_at_a_file_url(tmp_path):
    assert boxsource.catalog("nfslab/debian-11", "11.11.1", tmp_path / "a b.box") == {
        "name": "nfslab/debian-11",
        "versions": [{"version": "11.11.1", "providers": [{"name": "libvirt", "url": f"file://{tmp_path}/a%20b.box"}]}]}


def test_adding_a_box_hands_vagrant_the_catalog_once(home, tmp_path, monkeypatch):
    calls = []

    def fake_run(argv, **kw):
        calls.append((argv, kw["env"]["VAGRANT_HOME"]))
        register(home, "nfslab/debian-11", "11.11.1")      # what `vagrant box add` leaves behind

    monkeypatch.setattr(boxsource, "run", fake_run)
    box = tmp_path / "nfslab-debian-11-11.11.1.box"
    for _ in range(2):
        boxsource.add_box(home, "nfslab/debian-11", "11.11.1", box, tmp_path / "add.log")
    assert len(calls) == 1
    argv, vagrant_home = calls[0]
    assert argv[:5] == ["vagrant", "box", "add", "--provider", "libvirt"] and vagrant_home == str(home.vagrant_home)
    assert json.loads(Path(argv[5]).read_text()) == boxsource.catalog("nfslab/debian-11", "11.11.1", box)


def test_a_box_row_with_its_file_and_suite_becomes_a_client_with_the_fetched_package(home, monkeypatch):
    (home.boxes / "nfslab-debian-11-11.11.1.box").write_text("box")
    packages = home.kernels / "box-bullseye-linux-image-5.10.0-30-amd64_5.10.218-1" / "packages"
    added, fetched = [], []
    monkeypatch.setattr(boxsource, "fetch_package", lambda h, suite, package: fetched.append((suite, package))
                        or packages)
    monkeypatch.setattr(boxsource, "add_box", lambda h, name, version, file, log: added.append((name, version, file)))
    client = boxsource.client(kernel(), home)
    assert fetched == [("bullseye", "linux-image-5.10.0-30-amd64")]
    assert added == [("nfslab/debian-11", "11.11.1", home.boxes / "nfslab-debian-11-11.11.1.box")]
    assert (client.box, client.box_version, client.release) == ("nfslab/debian-11", "11.11.1", "5.10.0-30-amd64")
    assert client.packages == packages and "ssh-ed25519 AAAAtest nfslab" in client.provision
    register(home, "nfslab/debian-11", "11.11.1")                 # added once: the next run only fetches
    boxsource.client(kernel(), home)
    assert len(added) == 1 and len(fetched) == 2


def test_a_missing_box_file_says_where_it_was_looked_for(home):
    with pytest.raises(KernelUnavailable) as info:
        boxsource.client(kernel(), home)
    assert str(info.value) == (f"box nfslab/debian-11 11.11.1: nfslab-debian-11-11.11.1.box is in no mirror directory "
                               f"and not in {home.boxes}/ (put it there, or in a directory named by NFSLAB_MIRROR)")


def test_a_box_only_vagrant_cloud_has_is_the_one_download_the_row_lacks(home):
    with pytest.raises(KernelUnavailable) as info:
        boxsource.client(without(kernel(), "file"), home)
    assert str(info.value) == ("box nfslab/debian-11 11.11.1 is not in the lab's Vagrant home and Vagrant Cloud is "
                               "unreachable from this machine; apart from that download the row takes the box path "
                               f"that {boxsource.PROVEN_BY}")


def test_a_package_the_host_cannot_fetch_is_named_even_when_the_box_is_there(home):
    register(home, "nfslab/debian-11", "11.11.1")
    with pytest.raises(KernelUnavailable, match=r"^linux-image-5\.10\.0-30-amd64 must be downloaded by the host \(the "
                                                r"VMs have no network\), which fetches kernel packages only from "
                                                r"Debian suites \(source\.box\.suite\); apart from that download"):
        boxsource.client(without(kernel(), "suite", "file"), home)


def test_the_package_is_fetched_once_per_version_and_offline_the_last_one_is_used(home, monkeypatch):
    class Suite:
        online = True
        downloads = 0

        def __init__(self, root, name, log):
            pass

        def update(self):
            if not Suite.online:
                raise KernelUnavailable("apt-get update for bullseye failed")

        def version(self, package):
            return "5.10.218-1"

        def download(self, package, dest):
            Suite.downloads += 1
            dest.mkdir(parents=True)
            (dest / f"{package}_5.10.218-1_amd64.deb").write_text("deb")

    monkeypatch.setattr(boxsource.debian, "Suite", Suite)
    first = boxsource.fetch_package(home, "bullseye", "linux-image-5.10.0-30-amd64")
    assert first == home.kernels / "box-bullseye-linux-image-5.10.0-30-amd64_5.10.218-1" / "packages"
    assert [p.name for p in first.iterdir()] == ["linux-image-5.10.0-30-amd64_5.10.218-1_amd64.deb"]
    assert boxsource.fetch_package(home, "bullseye", "linux-image-5.10.0-30-amd64") == first
    Suite.online = False
    assert boxsource.fetch_package(home, "bullseye", "linux-image-5.10.0-30-amd64") == first
    assert Suite.downloads == 1
    with pytest.raises(KernelUnavailable, match="apt-get update for bullseye failed"):
        boxsource.fetch_package(home, "bullseye", "linux-image-5.10.0-32-amd64")
