"""NFS helpers that decide what the server exports and how sysctls are addressed."""
from lab import nfs


def test_export_is_limited_to_the_lab_subnet_with_root_squash():
    line = nfs.export_line("192.168.200.0/24")
    assert line.startswith(nfs.EXPORT + " 192.168.200.0/24(")
    assert "root_squash" in line and "no_root_squash" not in line
    assert "*" not in line


def test_sysctl_keys_map_to_proc():
    assert nfs.sysctl_path("fs.leases-enable") == "/proc/sys/fs/leases-enable"
