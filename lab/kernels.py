"""Turn a kernel spec into bootable files, or say honestly why it cannot be had here.

A registry keyed by the spec's `source` kind (tuxmake-style): `deb`, `image` (lab/prebuilt.py), `box`, `build`. Each source either returns
`KernelFiles` (direct kernel boot: the kernel is a file, the box image never changes) or raises KernelUnavailable,
which makes every cell of that kernel SKIP with the reason — never a FAIL, never a silent gap.
"""
from __future__ import annotations

import hashlib
import os
import shlex
import shutil
from pathlib import Path

from . import boxsource, debian, distro, initrd, prebuilt, tarballs
from .boxes import Box, kernel_release
from .errors import KernelUnavailable, LabError
from .paths import LabHome
from .proc import run
from .progress import BuildProgress
from .spec import Kernel, ReleaseTree
from .timeouts import Timeouts
from .topology import KernelFiles

BOX_SUITE = "bookworm"
BOX_KERNEL_PACKAGE = "linux-image-cloud-amd64"
#: bumped when module builds change in a way their inputs do not show
MODULE_RECIPE = "1"
FULL_RECIPE = "1"

SOURCES = {}


def _quiet(msg: str) -> None:
    pass


def source(kind: str):
    def register(fn):
        SOURCES[kind] = fn
        return fn
    return register


def resolve(kernel: Kernel, home: LabHome, box: Box, progress=lambda msg: None,
            build_timeout: float = Timeouts.build) -> KernelFiles:
    """Files to boot `kernel`, or KernelUnavailable(reason). Fetches and builds say what they do via progress;
    every source takes the same arguments (progress by keyword), and a compile may last `build_timeout` seconds."""
    try:
        get = SOURCES[kernel.source_kind]
    except KeyError:
        raise KernelUnavailable(f"source kind '{kernel.source_kind}' is not supported") from None
    progress(f"{kernel.name}: preparing kernel ({kernel.source_kind}; builds and downloads are cached)")
    return get(kernel, home, box, build_timeout, progress=progress)


@source("deb")
def deb_kernel(kernel: Kernel, home: LabHome, box: Box, build_timeout: float, progress=_quiet) -> KernelFiles:
    """A Debian kernel package. The box's own kernel (bookworm cloud) is used straight from the box; any other
    is fetched with a private apt config (or taken from the spec's .deb file or URL, lab/prebuilt.py), unpacked,
    and its modules handed to the guest in the initramfs."""
    if "file" in kernel.source or "url" in kernel.source:
        return prebuilt.deb_file_kernel(kernel, home)
    suite, package = kernel.source["suite"], kernel.source["package"]
    if suite == BOX_SUITE and package == BOX_KERNEL_PACKAGE and not kernel.source.get("version"):
        return box_kernel_files(box)
    return fetched_deb_kernel(home, suite, package, kernel.source.get("version"))


def fetched_deb_kernel(home: LabHome, suite_name: str, package: str, version: str | None = None) -> KernelFiles:
    """Download + unpack + payload + initrd, cached per concrete package and version (~20 s cold, 0 s warm)."""
    log = home.kernels / "fetch.log"
    suite = debian.Suite(home.root / "apt", suite_name, log)
    try:
        suite.update()
    except KernelUnavailable:
        cached = sorted(home.kernels.glob(f"deb-{suite_name}-*/done"))
        if cached:  # offline: the newest kernel fetched before
            return _deb_files(cached[-1].parent)
        raise
    image = debian.image_package(suite, package)
    if version:
        image = f"{image}={version}"
    resolved = version or suite.version(image)
    out = home.kernels / f"deb-{suite_name}-{image.split('=')[0]}-{resolved}".replace(":", "_").replace("~", "_")
    if (out / "done").exists():
        return _deb_files(out)
    shutil.rmtree(out, ignore_errors=True)
    deb = suite.download(image, out / "deb")
    prebuilt.unpack_deb(deb, out, log)
    shutil.rmtree(out / "deb")
    (out / "done").write_text(f"{suite_name} {image} {resolved}\n")
    return _deb_files(out)


_deb_files = prebuilt.deb_files


def box_kernel_files(box: Box) -> KernelFiles:
    release = (box.dir / "release").read_text().strip() if (box.dir / "release").exists() \
        else kernel_release(box.rootfs)
    return KernelFiles(vmlinuz=box.dir / "vmlinuz", initrd=box.dir / "initrd", release=release)


SOURCES["image"] = prebuilt.image_kernel


@source("box")
def vagrant_box_kernel(kernel: Kernel, home: LabHome, box: Box, build_timeout: float,
                       progress=_quiet) -> distro.DistroClient:
    """A distribution's own Vagrant box pinned to a kernel package (lab/boxsource.py): the box from the lab's
    Vagrant home or a .box file, the package fetched by the host; KernelUnavailable names what cannot be had."""
    return boxsource.client(kernel, home, progress=progress)


@source("build")
def built_kernel(kernel: Kernel, home: LabHome, box: Box, build_timeout: float, progress=_quiet) -> KernelFiles:
    scope = kernel.source.get("scope", "full")
    if scope == "module:fs/nfs":
        return module_build(kernel, home, box, build_timeout, progress=progress)
    return full_build(kernel, home, build_timeout, progress=progress)


def patch_files(kernel: Kernel) -> list[Path]:
    """Patches named in the spec, relative to its kernels/ directory; a missing one is the spec's fault."""
    paths = [kernel.path.parent / p for p in kernel.source.get("patches", [])]
    for p in paths:
        if not p.exists():
            raise KernelUnavailable(f"{kernel.path}: patch {p} does not exist")
    return paths


def apply_patches(src: Path, patches: list[Path], log: Path) -> None:
    for p in patches:
        run(["patch", "-p1", "-d", str(src), "-i", str(p)], step=f"build: apply {p.name}", timeout=60, log=log)


def build_key(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else part.encode())
        h.update(b"\0")
    return h.hexdigest()[:12]


def module_build(kernel: Kernel, home: LabHome, box: Box, build_timeout: float = Timeouts.build,
                 progress=_quiet) -> KernelFiles:
    """fs/nfs rebuilt out of tree from Debian's linux-source of the box kernel's exact version, against that
    kernel's headers, then shipped in the initramfs as `updates/` modules that modprobe prefers (~70 s cold at
    -j2, cached by release + source version + patches). fs/nfs can also come from a git checkout at `ref` (a
    bisect over fs/nfs commits of a 6.1 tree); the commit then joins the cache key."""
    git_tree = _module_git_tree(kernel)
    base = box_kernel_files(box)
    patches = patch_files(kernel)
    log = home.kernels / f"build-{kernel.name}.log"
    suite = debian.Suite(home.root / "apt", BOX_SUITE, log)
    suite.update()
    version = suite.version(f"linux-image-{base.release}")
    commit = [tree_identity(git_tree, kernel.source.get("ref"))] if git_tree else []
    key = build_key(MODULE_RECIPE, base.release, version, *commit, *(p.read_bytes() for p in patches))
    out = home.kernels / f"build-{kernel.name}-{key}"
    files = KernelFiles(base.vmlinuz, out / "initrd", base.release, nfs_modules="updates")
    if (out / "done").exists():
        return files
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    src = (git_nfs_source(git_tree, kernel.source.get("ref"), out / "src", log) if git_tree
           else _nfs_source(home, suite, version, out / "src", log))
    apply_patches(src, patches, log)
    headers = _headers(home, suite, base.release, version, log)
    counter = BuildProgress(f"{kernel.name} fs/nfs", progress, objects_record(home, kernel, "fs-nfs"))
    progress(f"{kernel.name}: building fs/nfs modules" +
             (f" (about {counter.expected} objects)" if counter.expected else ""))
    run(["make", "-C", str(headers), f"M={src / 'fs/nfs'}", f"-j{os.cpu_count() or 2}", "modules"],
        step=f"build: {kernel.name} fs/nfs", timeout=build_timeout, log=log, follow=counter.follow,
        env=dict(os.environ, DEBIAN_KERNEL_USE_CCACHE="1") if shutil.which("ccache") else None)
    counter.finished()
    built = {f"updates/{ko.name}": ko for ko in sorted((src / "fs/nfs").rglob("*.ko"))}
    modules = box.rootfs / "lib/modules" / base.release
    payload = initrd.module_payload(modules, base.release, out / "payload", extra=built)
    initrd.build_initrd(modules, out / "initrd", payload)
    shutil.rmtree(out / "payload")
    (out / "modules").write_text("\n".join(sorted(built)) + "\n")
    (out / "done").write_text(f"{base.release} {version} {' '.join(p.name for p in patches)}\n")
    out.chmod(0o755)
    return files


def _module_git_tree(kernel: Kernel) -> Path | None:
    """None for Debian's linux-source-6.1 (fs/nfs from the package); else the git checkout fs/nfs comes from."""
    if kernel.source.get("tree") == "linux-source-6.1":
        return None
    tree = linux_tree(kernel)
    if not (tree / ".git").exists():
        raise KernelUnavailable(f"module build from tree {tree}: only Debian's linux-source-6.1 or a git checkout "
                                f"(its fs/nfs at `ref`) can be built as modules")
    return tree


def git_nfs_source(tree: Path, ref: str | None, dest: Path, log: Path) -> Path:
    """fs/nfs of a git checkout at ref, as the out-of-tree build wants it (dest/fs/nfs)."""
    dest.mkdir(parents=True)
    git_archive(tree, ref, dest, log, "fs/nfs", timeout=600)
    if not (dest / "fs/nfs/Makefile").exists():
        raise KernelUnavailable(f"{tree} at {ref or 'HEAD'} has no fs/nfs/Makefile")
    return dest


def linux_tree(kernel: Kernel, home: LabHome | None = None, progress=_quiet) -> Path:
    """The tree to build: NFSLAB_LINUX_TREE (a directory or git checkout, e.g. a kernel.org clone) overrides the
    spec's `tree`: a release tarball (found in a mirror or the kernel cache, or downloaded; lab/tarballs.py), or a
    tarball, directory or git checkout given by path (relative to the spec's kernels/ directory)."""
    return source_tree(kernel, home, progress)[0]


def source_tree(kernel: Kernel, home: LabHome | None = None, progress=_quiet) -> tuple[Path, str | None]:
    """linux_tree() and, for a release tarball, its verified sha256: what names the tree in a build's cache key,
    wherever the file was found."""
    override = os.environ.get("NFSLAB_LINUX_TREE")
    spec_tree = kernel.source["tree"]
    if not override and isinstance(spec_tree, ReleaseTree):
        found = tarballs.find(spec_tree, home or LabHome.default(), progress)
        return found.path, found.tarball.sha256
    tree = Path(override) if override else (kernel.path.parent / spec_tree).resolve()
    if not tree.exists():
        raise KernelUnavailable(f"kernel tree {tree} not found (set NFSLAB_LINUX_TREE to a Linux checkout)")
    return tree, None


def tree_identity(tree: Path, ref: str | None) -> str:
    """What names a tree's content: a tarball's sha256, or the commit of `ref` in a git checkout."""
    if tree.is_file():
        h = hashlib.sha256()
        with tree.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    if (tree / ".git").exists():
        return run(["git", "-C", str(tree), "rev-parse", f"{ref or 'HEAD'}^{{commit}}"], step="build: tree",
                   timeout=60).stdout.strip()
    if (tree / "Makefile").exists() and (tree / "fs/nfs").is_dir():
        # a plain source directory: its file list with sizes and times stands for its content (hashing a whole
        # kernel tree would cost more than a warm build)
        listing = run(["sh", "-c", f"cd {shlex.quote(str(tree))} && find . -type f -printf '%P %s %T@\\n' "
                                   "| LC_ALL=C sort"],
                      step="build: tree", timeout=300).stdout
        return hashlib.sha256(listing.encode()).hexdigest()
    raise KernelUnavailable(f"kernel tree {tree} is neither a tarball, a git checkout nor a Linux source directory")


def git_archive(tree: Path, ref: str | None, dest: Path, log: Path, *paths: str, timeout: float = 1800) -> None:
    """`ref` of a git checkout (or some of its paths) written into dest, without touching the work tree: a
    `git bisect` may be running in it."""
    what = " ".join(paths)
    quoted = " ".join(shlex.quote(p) for p in paths)   # a tree path or ref from the command line reaches a shell
    run(["sh", "-c", f"git -C {shlex.quote(str(tree))} archive {shlex.quote(ref or 'HEAD')} {quoted} "
                     f"| tar -x -C {shlex.quote(str(dest))}"],
        step=f"build: git archive {what}".rstrip(), timeout=timeout, log=log)


def unpack_tree(tree: Path, ref: str | None, dest: Path, log: Path) -> None:
    dest.mkdir(parents=True)
    if tree.is_file():
        run(["tar", "-xf", str(tree), "-C", str(dest)], step="build: unpack tree", timeout=900, log=log)
        entries = list(dest.iterdir())
        if len(entries) == 1 and entries[0].is_dir():  # a tarball with a top directory (linux-4.19.1/)
            inner = entries[0].rename(dest.with_name(dest.name + ".top"))
            dest.rmdir()
            inner.rename(dest)
    elif (tree / ".git").exists():
        git_archive(tree, ref, dest, log)
    else:
        run(["cp", "-a", f"{tree}/.", str(dest)], step="build: copy tree", timeout=1800, log=log)


def full_build(kernel: Kernel, home: LabHome, build_timeout: float = Timeouts.build, progress=_quiet) -> KernelFiles:
    """bzImage from a tree + patches + the config fragment (virtio, ext4 and NFS built in, no modules, no
    initramfs). Cached by (tree, patches, config); ccache makes a build of a sibling tree (e.g. with one more
    patch) take a fraction of the ~4 min cold build. A tarball with a top directory (linux-4.19.1/, as kernel.org
    ships it) or without one (the pruned tree) builds the same; ARCH and CROSS_COMPILE are always given, since the
    pruned tree's Makefile defaults to ARCH=arm."""
    tree, sha256 = source_tree(kernel, home, progress)
    ref = kernel.source.get("ref")
    patches = patch_files(kernel)
    config = kernel.path.parent / kernel.source.get("config", "config/lab.config")
    if not config.exists():
        raise KernelUnavailable(f"{kernel.path}: config fragment {config} does not exist")
    key = build_key(FULL_RECIPE, sha256 or tree_identity(tree, ref), config.read_bytes(),
                    *(p.read_bytes() for p in patches))
    out = home.kernels / f"build-{kernel.name}-{key}"
    if (out / "done").exists():
        return KernelFiles(out / "vmlinuz", None, (out / "release").read_text().strip())
    shutil.rmtree(out, ignore_errors=True)
    log = out / "build.log"
    src, obj = out / "src", out / "obj"
    unpack_tree(tree, ref, src, log)
    apply_patches(src, patches, log)
    make = ["make", "-C", str(src), f"O={obj}", "ARCH=x86_64", "CROSS_COMPILE="]
    env = dict(os.environ, CCACHE_DIR=str(home.root / "ccache"), CCACHE_BASEDIR=str(out), KBUILD_BUILD_TIMESTAMP="0",
               KBUILD_BUILD_USER="nfslab", KBUILD_BUILD_HOST="nfslab")
    cc = ["CC=ccache gcc"] if shutil.which("ccache") else []
    run([*make, "tinyconfig"], step="build: config", timeout=600, log=log, env=env)
    run(["sh", str(src / "scripts/kconfig/merge_config.sh"), "-m", "-O", str(obj), str(obj / ".config"),
         str(config)], step="build: config", timeout=600, log=log, env=env, cwd=src)
    run([*make, "olddefconfig"], step="build: config", timeout=600, log=log, env=env)
    missing = config_missing(config.read_text(), (obj / ".config").read_text())
    if missing:
        raise LabError(f"build: {kernel.name} config", f"options the lab needs are not set: {' '.join(missing)}",
                       log)
    counter = BuildProgress(kernel.name, progress, objects_record(home, kernel, build_key(config.read_bytes())))
    progress(f"{kernel.name}: building bzImage" + (f" (about {counter.expected} objects)" if counter.expected else ""))
    run([*make, *cc, f"-j{os.cpu_count() or 2}", "bzImage"], step=f"build: {kernel.name}", timeout=build_timeout,
        log=log, env=env, follow=counter.follow)
    counter.finished()
    shutil.copyfile(obj / "arch/x86/boot/bzImage", out / "vmlinuz")
    (out / "vmlinuz").chmod(0o644)
    (out / "release").write_text((obj / "include/config/kernel.release").read_text())
    shutil.rmtree(src)
    (out / "done").write_text(f"{tree} {ref or ''} {' '.join(p.name for p in patches)}\n")
    out.chmod(0o755)
    return KernelFiles(out / "vmlinuz", None, (out / "release").read_text().strip())


def objects_record(home: LabHome, kernel: Kernel, what: str) -> Path:
    """Where a build of this kernel row (and config) leaves how many objects it compiled, for the next build's
    progress; beside the build cache, outside any build directory (each of those is one tree's build)."""
    return home.kernels / "objects" / f"{kernel.name}-{what}"


def config_missing(fragment: str, config: str) -> list[str]:
    """Options the fragment sets to y that the final .config does not have (a pruned tree, a renamed option)."""
    have = {line.split("=", 1)[0] for line in config.splitlines() if line.endswith("=y")}
    return [line.split("=", 1)[0] for line in fragment.splitlines()
            if line.startswith("CONFIG_") and line.endswith("=y") and line.split("=", 1)[0] not in have]


def _nfs_source(home: LabHome, suite: debian.Suite, version: str, dest: Path, log: Path) -> Path:
    """fs/nfs of linux-source-6.1=<version>, extracted once into a cache and copied per build."""
    cache = home.kernels / "src" / f"linux-source-6.1_{version}"
    if not (cache / "fs/nfs/Makefile").exists():
        deb = suite.download(f"linux-source-6.1={version}", home.kernels / "src" / "deb")
        tmp = cache.with_name(cache.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        run(["sh", "-c", f"dpkg-deb --fsys-tarfile {deb} | tar -xO ./usr/src/linux-source-6.1.tar.xz "
                         f"| tar -xJ -C {tmp} --strip-components=1 --wildcards 'linux-source-6.1/fs/nfs/*'"],
            step="build: unpack linux-source-6.1", timeout=900, log=log)
        shutil.rmtree(cache, ignore_errors=True)
        tmp.rename(cache)
        deb.unlink()
    shutil.copytree(cache, dest, symlinks=True)
    return dest


def _headers(home: LabHome, suite: debian.Suite, release: str, version: str, log: Path) -> Path:
    """linux-headers-<release> with its -common and kbuild packages unpacked into a private root; Debian's
    Makefile includes the -common tree by absolute path, so that include is pointed into the private root."""
    root = home.kernels / "headers" / release
    tree = root / "usr/src" / f"linux-headers-{release}"
    if not (root / "done").exists():
        shutil.rmtree(root, ignore_errors=True)
        packages = [f"linux-headers-{release}"] + [d for d in suite.depends(f"linux-headers-{release}")
                                                   if d.startswith(("linux-headers-", "linux-kbuild-"))]
        for pkg in packages:
            deb = suite.download(f"{pkg}={version}", root / "deb")
            run(["dpkg-deb", "-x", str(deb), str(root)], step=f"build: unpack {pkg}", timeout=300, log=log)
        shutil.rmtree(root / "deb")
        makefile = tree / "Makefile"
        makefile.write_text(makefile.read_text().replace("include /usr/src/", f"include {root}/usr/src/"))
        (root / "done").write_text(version + "\n")
    return tree


def check_files(files):
    """Kernel files must exist before a topology is planned on them (a distribution client has none)."""
    for p in (getattr(files, "vmlinuz", None), getattr(files, "initrd", None)):
        if p is not None and not Path(p).exists():
            raise KernelUnavailable(f"kernel file missing: {p}")
    return files
