"""Distribution boxes: the pinned kernel package → the release uname -r must print, and the provisioning scripts
(golden files), so the code that would run CentOS 7 and Ubuntu 16.04 is exercised where their boxes can't be had."""
import pytest

from lab import distro

KEY = "ssh-ed25519 AAAAtest nfslab"


@pytest.mark.parametrize("package, release, family", [
    ("kernel-3.10.0-862.11.6.el7", "3.10.0-862.11.6.el7.x86_64", "redhat"),
    ("linux-image-4.4.0-130-generic", "4.4.0-130-generic", "debian"),
])
def test_release_of_the_pinned_package(package, release, family):
    assert distro.family_of(package).name == family
    assert distro.family_of(package).release(package) == release


def test_unknown_package_is_refused():
    with pytest.raises(ValueError, match="no distribution family"):
        distro.family_of("linux-5.4.0.apk")


def test_centos_provisioning_matches_golden(golden):
    golden.check("provision-centos7.sh", distro.provision_script("kernel-3.10.0-862.11.6.el7", KEY))


def test_ubuntu_provisioning_matches_golden(golden):
    script = distro.provision_script("linux-image-4.4.0-130-generic", KEY)
    assert "apt-get install -y -q nfs-common linux-image-4.4.0-130-generic" in script
    assert "gnulinux-4.4.0-130-generic-advanced" in script
    golden.check("provision-ubuntu1604.sh", script)
