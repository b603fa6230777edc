"""NFS in the guests: the server's export, its sysctls (leases-enable) and nfsd; client mounts and their checks.

The box has no systemd, so nfsd is started by hand the way nfs-server.service would: nfsd module and filesystem,
rpcbind, exportfs, rpc.nfsd with short grace/lease times, rpc.mountd. Server sysctls are written *before* nfsd
starts because leases-enable is read when nfsd hands out delegations. The grace period is ended at once: the server
is fresh from a snapshot, no client has state to reclaim, and a first OPEN inside the grace period would be
refused (kdevops polls v4_end_grace for the same reason).
"""
from __future__ import annotations

import shlex

from .axes import CellSetup
from .errors import LabError
from .remote import Remote
from .timeouts import Timeouts

EXPORT = "/srv/nfs"
MOUNTPOINT = "/mnt/nfs"
GRACE_S = 10
LEASE_S = 10
NFSD_THREADS = 8
#: what the Linux client uses for a cache option a mount does not set (nfs(5)); the kernel leaves these out of
#: /proc/mounts, and of mountstats only lookupcache=all
CACHE_DEFAULTS = {"acregmin": 3, "acregmax": 60, "acdirmin": 30, "acdirmax": 60, "lookupcache": "all"}


def sysctl_path(key: str) -> str:
    return "/proc/sys/" + key.replace(".", "/")


def export_line(subnet: str) -> str:
    """Export to the lab's NFS subnet only, root squashed (the experiment needs no root on the export)."""
    return f"{EXPORT} {subnet}(rw,sync,no_subtree_check,root_squash)"


def preload_server(server: Remote, timeout: float = Timeouts.nfsd) -> None:
    """What every cell's server needs and that holds no NFS state: modules, filesystems, rpcbind. Done once
    before the boot snapshot, so a revert does not redo it (≈ 4 s per cell under TCG)."""
    server.run("modprobe nfsd; mountpoint -q /proc/fs/nfsd || mount -t nfsd nfsd /proc/fs/nfsd; "
               "mountpoint -q /var/lib/nfs/rpc_pipefs || mount -t rpc_pipefs sunrpc /var/lib/nfs/rpc_pipefs; "
               "pidof rpcbind >/dev/null || rpcbind -w", timeout=timeout, step="nfs: preload server")


def preload_client(client: Remote, timeout: float = Timeouts.mount) -> None:
    """The client's NFS modules, loaded (no mount, no client id) before the boot snapshot; a kernel with NFS
    built in has nothing to load."""
    client.run("modprobe -a nfsv4 nfsv3 2>/dev/null; true", timeout=timeout, step=f"nfs: preload {client.name}")


def start_server(server: Remote, setup: CellSetup, subnet: str, timeout: float = Timeouts.nfsd) -> dict:
    """Set the cell's server sysctls, export, start nfsd; return what the server reports (for the record)."""
    sysctls = "; ".join(f"echo {shlex.quote(v)} > {sysctl_path(k)}" for k, v in setup.server_sysctls.items())
    script = f"""set -e
{sysctls}
modprobe nfsd
mountpoint -q /proc/fs/nfsd || mount -t nfsd nfsd /proc/fs/nfsd
mountpoint -q /var/lib/nfs/rpc_pipefs || mount -t rpc_pipefs sunrpc /var/lib/nfs/rpc_pipefs
mkdir -p {EXPORT} && chmod 0777 {EXPORT}
echo '{export_line(subnet)}' > /etc/exports
pidof rpcbind >/dev/null || rpcbind -w
exportfs -ra
rpc.nfsd --grace-time {GRACE_S} --lease-time {LEASE_S} {NFSD_THREADS}
pidof rpc.mountd >/dev/null || rpc.mountd
[ -e /proc/fs/nfsd/v4_end_grace ] && echo Y > /proc/fs/nfsd/v4_end_grace || sleep {GRACE_S}
"""
    server.run(script, timeout=timeout, step="nfs: start server")
    return check_server(server, setup)


def check_server(server: Remote, setup: CellSetup) -> dict:
    """nfsd must be running with threads and the export visible, and the sysctls must read back as set."""
    threads = server.run("cat /proc/fs/nfsd/threads", check=False, step="nfs: check server").stdout.strip()
    if not threads.isdigit() or int(threads) == 0:
        raise LabError("nfs: check server", f"nfsd is not running on server (threads={threads or 'none'})",
                       server.log)
    exports = server.run("exportfs -v", step="nfs: check server").stdout
    if EXPORT not in exports:
        raise LabError("nfs: check server", f"{EXPORT} is not exported", server.log)
    info = {"nfsd_threads": int(threads), "versions": server.run("cat /proc/fs/nfsd/versions").stdout.strip()}
    for key, want in setup.server_sysctls.items():
        got = server.run(f"cat {sysctl_path(key)}", step="nfs: check server").stdout.strip()
        if got != want:
            raise LabError("nfs: check server", f"{key} is {got}, the cell needs {want}", server.log)
        info[key] = got
    return info


def write_files(server: Remote, files: dict[str, str]) -> None:
    """Fresh export content for a cell, written on the server's local filesystem."""
    parts = [f"rm -rf {EXPORT}/* {EXPORT}/.[!.]*"]
    parts += [f"printf '%s\\n' {shlex.quote(text)} > {EXPORT}/{name}" for name, text in files.items()]
    parts.append(f"chmod 0666 {EXPORT}/*")
    server.run("; ".join(parts) + " ; true", step="nfs: write export files")


def mount(client: Remote, server_ip: str, setup: CellSetup, timeout: float = Timeouts.mount) -> dict:
    """Mount the export with the cell's options, then verify the negotiated version is the one asked for.

    A server or client may silently fall back to another minor version; the table would then be wrong, so that
    is an ERROR, not a result."""
    # retry=0: a server that refuses is an ERROR at once instead of after mount's 2-minute retry loop;
    # it changes nothing about caching, so the cell still tests what it asks for
    opts = ",".join([*setup.mount_options, "retry=0"])
    client.run(f"mkdir -p {MOUNTPOINT}; umount -f {MOUNTPOINT} 2>/dev/null; "
               f"mount -t nfs -o {opts} {server_ip}:{EXPORT} {MOUNTPOINT}", timeout=timeout,
               step=f"nfs: mount on {client.name}")
    out = client.run(check_mount_command(), check=False, step="nfs: check mount").stdout
    line, _, stats = (part.strip() for part in out.partition("--\n"))
    if not line:
        raise LabError(f"nfs: mount on {client.name}", f"{MOUNTPOINT} not in /proc/mounts after mount", client.log)
    negotiated = options(line.split()[3])
    for o in setup.mount_options:
        key, _, want = o.partition("=")
        if key == "vers" and negotiated.get("vers") != want:
            raise LabError(f"nfs: mount on {client.name}",
                           f"asked for vers={want}, got vers={negotiated.get('vers')}: {line}", client.log)
    opts = stats.splitlines()[0] if stats else ""
    return {"mount": line, "vers": negotiated.get("vers", ""), "opts": opts,
            "cache": cache_options(negotiated, options(opts) if opts else None)}


def check_mount_command(mounts: str = "/proc/mounts", mountstats: str = "/proc/self/mountstats") -> str:
    """The mount's line in /proc/mounts, `--`, then its options as mountstats shows them: /proc/mounts leaves out
    options at their defaults, mountstats' `opts:` line shows the cache timeouts too."""
    return (f"grep ' {MOUNTPOINT} ' {mounts}; echo --; "
            f"sed -n '\\| mounted on {MOUNTPOINT} |,/opts:/s/^[[:space:]]*opts:[[:space:]]*//p' {mountstats}")


def options(text: str) -> dict[str, str]:
    """`rw,vers=4.1,acdirmin=30,hard` → {"rw": "", "vers": "4.1", "acdirmin": "30", "hard": ""}."""
    return dict(o.split("=", 1) if "=" in o else (o, "") for o in text.split(",") if o)


def cache_options(mounts: dict[str, str], mountstats: dict[str, str] | None) -> dict:
    """The caching a client mount runs with: attribute cache timeouts (s), lookupcache, close-to-open, vers. From
    mountstats' opts when there (it shows the timeouts), else /proc/mounts; a value neither shows is the kernel's
    default (CACHE_DEFAULTS) and is named in `defaulted`."""
    shown = {**mounts, **(mountstats or {})}
    out: dict = {}
    defaulted = []
    for key, default in CACHE_DEFAULTS.items():
        if key in shown:
            out[key] = shown[key] if key == "lookupcache" else int(shown[key])
        else:
            out[key] = default
            defaulted.append(key)
    if "actimeo" in shown:
        out["actimeo"] = int(shown["actimeo"])
    out.update({"noac": "noac" in shown, "cto": "nocto" not in shown, "vers": shown.get("vers", ""),
                "source": "mountstats" if mountstats else "mounts", "defaulted": defaulted})
    return out


def umount(client: Remote) -> None:
    client.run(f"umount -f {MOUNTPOINT} 2>/dev/null; true", step=f"nfs: umount on {client.name}")


def client_module(client: Remote, expected_dir: str = "") -> str:
    """Which nfsv4.ko the client loaded; a rebuilt module must come from `expected_dir` (e.g. updates/), or the
    row would silently test the stock module."""
    path = client.run("modinfo -n nfsv4 2>/dev/null; grep -q '^nfsv4 ' /proc/modules || echo not-loaded",
                      check=False, step="nfs: check client module").stdout.strip()
    if expected_dir and f"/{expected_dir}/" not in path:
        raise LabError("nfs: check client module", f"expected nfsv4 from {expected_dir}/, loaded: {path}",
                       client.log)
    return path
