"""Kernels that come already built, as one file: a Debian kernel package (.deb) or a bootable image (bzImage), given
by path or URL (`source.deb.file|url`, `source.image.file|url`; `lab run --kernel` writes such specs).

A .deb is unpacked like a package fetched from a suite (its modules go to the guest in the initramfs); a bzImage is
booted directly with no initramfs, so it must have virtio, ext4 and NFS built in (as the lab's full builds do,
lab/data/kernels/config/lab-4.19.config). A file that cannot be had or is not a kernel makes the row SKIP with the
reason, like any kernel this host cannot get. A file whose sha256 is not the one its spec pins is an ERROR naming
both, as for a kernel tree (lab/tarballs.py): the spec says which bytes were tested (`lab run --kernel` pins a
download once it has it, lab/adhoc.py), and other bytes under the same name are not a result of that kernel.
"""
from __future__ import annotations

import hashlib
import shutil
import struct
import urllib.error
import urllib.request
from pathlib import Path

from . import initrd
from .errors import KernelUnavailable, LabError, display_path
from .paths import LabHome
from .proc import run
from .tarballs import sha256_of
from .topology import KernelFiles

DOWNLOAD_TIMEOUT_S = 600
#: the x86 boot protocol's header (Documentation/arch/x86/boot.rst): "HdrS" at 0x202, the offset of the version
#: string (minus 0x200) at 0x20e
_HDRS_AT, _VERSION_PTR_AT = 0x202, 0x20E


def bzimage_release(path: Path) -> str:
    """The release a bzImage reports (`6.1.0-18-cloud-amd64`), read from its boot header; ValueError if the file
    is not an x86 bzImage."""
    with path.open("rb") as f:
        head = f.read(0x10000)
    if len(head) < 0x210 or head[_HDRS_AT:_HDRS_AT + 4] != b"HdrS":
        raise ValueError("not an x86 bzImage (no HdrS boot header)")
    (pointer,) = struct.unpack_from("<H", head, _VERSION_PTR_AT)
    start = pointer + 0x200
    if not pointer or start >= len(head):
        raise ValueError("its boot header names no kernel version")
    text = head[start:head.find(b"\0", start)].decode("ascii", "replace")
    return text.split(" ", 1)[0] or "unknown"


def is_deb(path: Path) -> bool:
    """A Debian package is an ar archive whose first member is debian-binary."""
    with path.open("rb") as f:
        head = f.read(80)
    return head.startswith(b"!<arch>\n") and b"debian-binary" in head


def obtain(kernel, home: LabHome, what: str) -> Path:
    """The file a `file` or `url` source names, checked against its sha256 when the spec pins one (LabError if it
    is other bytes). A URL is downloaded once into the kernel cache (under the hash of the URL)."""
    source = kernel.source
    if "file" in source:
        path = Path(source["file"])
        if not path.is_file():
            raise KernelUnavailable(f"{what} {path} not found")
    else:
        path = download(source["url"], home)
    pinned = source.get("sha256")
    if pinned and (actual := sha256_of(path)) != pinned:
        origin = (f"{path}" if "file" in source else
                  f"{source['url']} (downloaded to {path}; remove it to download again)")
        raise LabError(f"{what}: verify", f"{origin} has sha256 {actual}, but {display_path(kernel.path)} "
                                          f"pins {pinned}: not the kernel the spec names, not tested")
    return path


def download_path(url: str, home: LabHome) -> Path:
    """Where a URL's file is kept in the kernel cache: one directory per URL."""
    return home.kernels / "download" / hashlib.sha256(url.encode()).hexdigest()[:16] / (url.rsplit("/", 1)[-1]
                                                                                        or "kernel")


def download(url: str, home: LabHome) -> Path:
    dest = download_path(url, home)
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, part.open("wb") as f:
            shutil.copyfileobj(response, f)
    except (urllib.error.URLError, OSError, ValueError) as e:
        part.unlink(missing_ok=True)
        raise KernelUnavailable(f"cannot download {url}: {getattr(e, 'reason', e)}") from None
    part.rename(dest)
    return dest


def image_kernel(kernel, home: LabHome, box, build_timeout: float, progress=lambda msg: None) -> KernelFiles:
    """`source.image`: a bzImage booted as it is (no initramfs: the lab's guest init runs from the box's disk)."""
    path = obtain(kernel, home, "kernel image")
    try:
        release = bzimage_release(path)
    except (ValueError, OSError) as e:
        raise KernelUnavailable(f"kernel image {path}: {e}") from None
    out = home.kernels / f"image-{sha256_of(path)[:16]}"
    if not (out / "vmlinuz").exists():   # a copy the VMs' qemu can read, whatever the original's directory allows
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out / "vmlinuz.tmp")
        (out / "vmlinuz.tmp").chmod(0o644)
        (out / "vmlinuz.tmp").rename(out / "vmlinuz")
    for d in (out.parent, out):
        d.chmod(0o755)
    return KernelFiles(vmlinuz=out / "vmlinuz", initrd=None, release=release)


def deb_file_kernel(kernel, home: LabHome) -> KernelFiles:
    """`source.deb.file|url`: one linux-image package, unpacked like one fetched from a suite."""
    path = obtain(kernel, home, "kernel package")
    if not is_deb(path):
        raise KernelUnavailable(f"kernel package {path} is not a Debian package")
    # "-rootfs": unpacked since the initramfs also loads ext4 where it is a module (lab/initrd.py ROOT_FS_MODULES);
    # an earlier unpack of the same file, without it, is not reused
    out = home.kernels / f"debfile-{sha256_of(path)[:16]}-rootfs"
    if not (out / "done").exists():
        shutil.rmtree(out, ignore_errors=True)
        unpack_deb(path, out, home.kernels / "fetch.log")
        (out / "done").write_text(f"{path}\n")
    return deb_files(out)


def unpack_deb(deb: Path, out: Path, log: Path) -> None:
    """A linux-image .deb → out/{vmlinuz, initrd, release}: its modules handed to the guest in the initramfs."""
    root = out / "root"
    root.mkdir(parents=True, exist_ok=True)   # dpkg-deb -x makes the last directory only (a .deb file's `out` is new)
    run(["dpkg-deb", "-x", str(deb), str(root)], step=f"unpack {deb.name}", timeout=300, log=log)
    modules_root = root / "lib/modules" if (root / "lib/modules").is_dir() else root / "usr/lib/modules"
    releases = sorted(p.name for p in modules_root.iterdir()) if modules_root.is_dir() else []
    if not releases or not (root / "boot" / f"vmlinuz-{releases[-1]}").exists():
        shutil.rmtree(out, ignore_errors=True)
        raise KernelUnavailable(f"{deb.name} holds no kernel (no boot/vmlinuz-* with its lib/modules/*)")
    release = releases[-1]
    if not (root / "lib/modules").exists():
        (root / "lib").mkdir(exist_ok=True)
        (root / "lib/modules").symlink_to(modules_root)
    run(["depmod", "-b", str(root), release], step=f"depmod {release}", timeout=300, log=log)
    payload = initrd.module_payload(modules_root / release, release, out / "payload")
    initrd.build_initrd(modules_root / release, out / "initrd", payload, extra=initrd.ROOT_FS_MODULES)
    shutil.copyfile(root / "boot" / f"vmlinuz-{release}", out / "vmlinuz")
    (out / "vmlinuz").chmod(0o644)
    (out / "release").write_text(release + "\n")
    for tmp in (root, payload):
        shutil.rmtree(tmp)


def deb_files(out: Path) -> KernelFiles:
    for d in (out.parent, out):
        d.chmod(0o755)
    return KernelFiles(vmlinuz=out / "vmlinuz", initrd=out / "initrd", release=(out / "release").read_text().strip())
