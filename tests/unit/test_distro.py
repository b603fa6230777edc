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
    assert "gnulinux-4.4.0-130-generic-advanced" in script
    golden.check("provision-ubuntu1604.sh", script)


def test_debian_box_provisioning_installs_the_uploaded_package_offline_and_checks_grub(golden):
    """What debian-11-box's clients run (bench/distro_box.py --check-provision runs it on the real box's disk)."""
    script = distro.provision_script("linux-image-5.10.0-30-amd64", KEY)
    install = next(line for line in script.splitlines() if line.startswith("apt-get install"))
    assert install.endswith(f"{distro.GUEST_PACKAGES}/*.deb") and "--no-install-recommends" in install
    assert "apt-get update" not in script                        # the VMs have no network
    assert 'entry="gnulinux-advanced-$uuid>gnulinux-5.10.0-30-amd64-advanced-$uuid"' in script
    assert "/etc/default/grub.d/99-nfslab-kernel.cfg" in script  # read after the box's own settings
    assert "set default=" in script                              # grub.cfg is checked, not trusted
    golden.check("provision-debian11-box.sh", script)


@pytest.mark.parametrize("package", ["linux-image-5.10\n", "linux-image-5.10;id", "linux-image-5.1é",
                                     "kernel-3.10.0.el7 x", "linux-headers-5.10.0-30-amd64"])
def test_only_whole_plain_package_names_have_a_family(package):
    """The name goes into a shell script: a trailing newline, a `;` or a non-ASCII letter is no package name."""
    with pytest.raises(ValueError):
        distro.family_of(package)
