"""NFS helpers that decide what the server exports and how sysctls are addressed."""
from lab import nfs


def test_export_is_limited_to_the_lab_subnet_with_root_squash():
    line = nfs.export_line("192.168.200.0/24")
    assert line.startswith(nfs.EXPORT + " 192.168.200.0/24(")
    assert "root_squash" in line and "no_root_squash" not in line
    assert "*" not in line


def test_sysctl_keys_map_to_proc():
    assert nfs.sysctl_path("fs.leases-enable") == "/proc/sys/fs/leases-enable"


MOUNTS = ("192.168.61.10:/srv/nfs /mnt/nfs nfs4 rw,relatime,vers=4.1,rsize=1048576,wsize=1048576,namlen=255,hard,"
          "proto=tcp,timeo=600,retrans=2,sec=sys,clientaddr=192.168.61.11,local_lock=none,addr=192.168.61.10 0 0\n")
MOUNTSTATS = """device rootfs mounted on / with fstype rootfs
device 192.168.61.10:/srv/nfs mounted on /mnt/nfs with fstype nfs4 statvers=1.1
\topts:\trw,vers=4.1,rsize=1048576,wsize=1048576,namlen=255,acregmin=3,acregmax=60,acdirmin=30,acdirmax=60,hard,proto=tcp,timeo=600,retrans=2,sec=sys,clientaddr=192.168.61.11,local_lock=none
\tage:\t12
\tcaps:\tcaps=0x3ffbffff,wtmult=512,dtsize=32768,bsize=0,namlen=255
"""


def test_the_mount_check_prints_the_mount_and_its_mountstats_options(tmp_path):
    import subprocess
    (tmp_path / "mounts").write_text("proc /proc proc rw 0 0\n" + MOUNTS)
    (tmp_path / "mountstats").write_text(MOUNTSTATS)
    command = nfs.check_mount_command(str(tmp_path / "mounts"), str(tmp_path / "mountstats"))
    out = subprocess.run(["bash", "-c", command], capture_output=True, text=True).stdout
    line, sep, opts = out.partition("--\n")
    assert line == MOUNTS and sep
    assert opts.strip().startswith("rw,vers=4.1,") and "acdirmin=30" in opts and "\n" not in opts.strip()


def test_cache_options_from_mountstats_with_defaults_named():
    mounts = nfs.options(MOUNTS.split()[3])
    stats = nfs.options(MOUNTSTATS.splitlines()[2].split("\t")[-1])
    cache = nfs.cache_options(mounts, stats)
    assert (cache["acregmin"], cache["acregmax"], cache["acdirmin"], cache["acdirmax"]) == (3, 60, 30, 60)
    assert (cache["lookupcache"], cache["cto"], cache["noac"], cache["vers"]) == ("all", True, False, "4.1")
    assert cache["defaulted"] == ["lookupcache"] and cache["source"] == "mountstats"


def test_cache_options_from_proc_mounts_alone():
    cache = nfs.cache_options(nfs.options("rw,vers=4.0,actimeo=0,acregmin=0,acregmax=0,acdirmin=0,acdirmax=0,"
                                          "lookupcache=none,nocto"), None)
    assert (cache["acdirmin"], cache["actimeo"], cache["lookupcache"], cache["cto"]) == (0, 0, "none", False)
    assert cache["source"] == "mounts" and cache["defaulted"] == []
    assert nfs.cache_options(nfs.options("rw,vers=4.1"), None)["defaulted"] == \
        ["acregmin", "acregmax", "acdirmin", "acdirmax", "lookupcache"]


def test_mount_records_the_cache_options_in_force():
    from lab.axes import CellSetup
    from lab.remote import Result

    class Client:
        name, log = "alice", "log"

        def run(self, command, **kw):
            if command.startswith("grep"):
                return Result(MOUNTS + "--\n" + MOUNTSTATS.splitlines()[2].split("\t")[-1] + "\n", "", 0)
            return Result("", "", 0)

    info = nfs.mount(Client(), "192.168.61.10", CellSetup(mount_options=["vers=4.1"]))
    assert info["vers"] == "4.1" and info["mount"] == MOUNTS.strip()
    assert info["opts"].startswith("rw,vers=4.1,") and info["cache"]["acdirmax"] == 60
