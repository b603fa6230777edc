"""The lab's initramfs: busybox, the virtio disk modules, and an optional payload copied onto the root filesystem.

Why a payload: a kernel from another Debian suite, or an NFS module rebuilt with a patch, needs its modules inside
the guest, and the box image must not change per kernel (a kernel is a file). The initramfs copies the payload
(a `lib/modules/<release>/…` tree) onto the VM's own disk overlay before `switch_root`, so `modprobe` in the guest
finds the modules of the kernel that is running.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

GUEST = Path(__file__).parent / "guest"
#: the virtio drivers the Debian cloud kernels have as modules; they must load before / can be mounted
BOOT_MODULES = ("virtio", "virtio_ring", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci",
                "virtio_blk")
#: the root filesystem and the checksum it needs, for a kernel that has them as modules (Debian's generic flavour,
#: unlike its cloud one): without them / cannot be mounted, and busybox has no modprobe to load them on demand
ROOT_FS_MODULES = ("crc32c_generic", "crc32c_intel", "ext4")
#: what a client or server guest loads after boot; their dependency closure goes into a payload
GUEST_MODULES = BOOT_MODULES + ("virtio_net", "virtio-rng", "virtio_rng", "button", "nfs", "nfsv4", "nfsv3",
                                "nfs_layout_nfsv41_files", "sunrpc", "lockd")


def module_index(modules_dir: Path) -> dict[str, tuple[str, list[str]]]:
    """name → (relative path, relative paths of its dependencies), from depmod's modules.dep."""
    index = {}
    for line in (modules_dir / "modules.dep").read_text().splitlines():
        path, _, deps = line.partition(":")
        index[module_name(path)] = (path, deps.split())
    return index


def module_name(path: str) -> str:
    name = Path(path).name
    for suffix in (".xz", ".zst", ".gz"):
        name = name.removesuffix(suffix)
    return name.removesuffix(".ko").replace("-", "_")


def module_closure(index: dict[str, tuple[str, list[str]]], wanted) -> list[str]:
    """Relative paths of the wanted modules and everything they depend on (names not built as modules are
    skipped: they are built into the kernel)."""
    paths: set[str] = set()
    for name in wanted:
        entry = index.get(name.replace("-", "_"))
        if entry:
            paths.add(entry[0])
            paths.update(entry[1])
    return sorted(paths)


def copy_module(src: Path, dest: Path) -> Path:
    """Copy a module uncompressed (busybox insmod reads plain .ko only); returns the destination path."""
    dest = dest.with_name(src.name.split(".ko")[0] + ".ko")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.suffix == ".xz":
        dest.write_bytes(subprocess.run(["xz", "-dc", str(src)], capture_output=True, check=True).stdout)
    elif src.suffix == ".zst":
        dest.write_bytes(subprocess.run(["zstd", "-dcq", str(src)], capture_output=True, check=True).stdout)
    else:
        shutil.copyfile(src, dest)
    return dest


def load_order(index: dict[str, tuple[str, list[str]]], wanted) -> list[str]:
    """The wanted modules that are modules (not built in) and everything they depend on, as relative paths in an
    order insmod can load them: each after its dependencies."""
    by_path = {path: deps for path, deps in index.values()}
    order: list[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        for dep in by_path.get(path, []):
            visit(dep)
        order.append(path)

    for name in wanted:
        entry = index.get(name.replace("-", "_"))
        if entry:
            visit(entry[0])
    return order


def build_initrd(modules_dir: Path, out: Path, payload: Path | None = None, extra=()) -> Path:
    """A gzip'ed newc cpio: busybox, the boot modules found under `modules_dir` (then `extra`, e.g.
    ROOT_FS_MODULES, with their dependencies, where modules.dep says they are modules), `init`, and `payload/`."""
    work = out.with_name(out.name + ".d")
    shutil.rmtree(work, ignore_errors=True)
    for d in ("bin", "lib/modules", "proc", "sys", "dev", "newroot"):
        (work / d).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shutil.which("busybox") or "/bin/busybox", work / "bin/busybox")
    (work / "bin/busybox").chmod(0o755)
    order = []
    for mod in BOOT_MODULES:
        found = sorted(modules_dir.rglob(f"{mod}.ko*"))
        if found:
            copy_module(found[0], work / "lib/modules" / f"{mod}.ko")
            order.append(mod)
    if extra and (modules_dir / "modules.dep").exists():
        for rel in load_order(module_index(modules_dir), extra):
            if module_name(rel) not in {m.replace("-", "_") for m in order}:
                order.append(copy_module(modules_dir / rel, work / "lib/modules" / Path(rel).name).stem)
    (work / "modules.order").write_text("\n".join(order) + "\n")
    if payload is not None:
        shutil.copytree(payload, work / "payload", symlinks=True)
    shutil.copyfile(GUEST / "initramfs-init", work / "init")
    (work / "init").chmod(0o755)
    files = subprocess.run(["find", "."], cwd=work, capture_output=True, check=True).stdout
    cpio = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=work, input=files, capture_output=True,
                          check=True).stdout
    out.write_bytes(subprocess.run(["gzip", "-1"], input=cpio, capture_output=True, check=True).stdout)
    out.chmod(0o644)
    shutil.rmtree(work)
    return out


def module_payload(modules_dir: Path, release: str, dest: Path, extra: dict[str, Path] | None = None) -> Path:
    """`dest/lib/modules/<release>/` holding the guest modules' closure (uncompressed) plus `extra`
    (relative path → file, e.g. rebuilt NFS modules under updates/), indexed by depmod for the guest."""
    shutil.rmtree(dest, ignore_errors=True)
    target = dest / "lib/modules" / release
    for rel in module_closure(module_index(modules_dir), GUEST_MODULES):
        copy_module(modules_dir / rel, target / rel)
    for rel, src in (extra or {}).items():
        copy_module(src, target / rel)
    for name in ("modules.order", "modules.builtin", "modules.builtin.modinfo"):
        if (modules_dir / name).exists():
            shutil.copyfile(modules_dir / name, target / name)
    subprocess.run(["depmod", "-b", str(dest), release], check=True, capture_output=True)
    return dest
