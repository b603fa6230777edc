"""`lab run --kernel SRC[:PATCH…]`: any kernel, without writing a spec first (like `tuxrun --kernel` or `vng -r`).

SRC is turned into a kernel spec of an existing source kind (lab/spec/kernel.py), checked here before anything is
booted, and written with a copy of the matrix into the run directory, so `lab run --matrix RUN/matrix.yaml` repeats
the run and every table row, rerun command and `lab bisect` works on it as on any spec:

  https://…/bzImage, https://…/x.deb        → image: {url} | deb: {url}, + sha256 once downloaded (pin below)
  ./bzImage (any bootable x86 kernel image) → image: {file, sha256}
  ./linux-image-….deb                       → deb: {file, sha256}
  linux-image-6.1.0-18-cloud-amd64[=VER]    → deb: {suite: bookworm, package, version}  (SUITE/… for another suite)
  v6.1 / a commit / a branch of a git tree  → build: {tree, ref: <its commit>, scope: full, config, patches}
                                              (the tree: --kernel-tree or NFSLAB_LINUX_TREE; built like mainline-4.19)

Patches (`:a.patch:b.patch`) apply to a git build only. Such a kernel has no history: every cell expects
`unknown`, so the table shows a failure as "no history" rather than a regression (lab/render/grid.py).
Bad input is a ValueError with one line that says what was wrong and what is allowed.
"""
from __future__ import annotations

import io
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ruamel.yaml import YAML

from . import prebuilt
from .files import write_atomic
from .kernels import BOX_SUITE
from .paths import KERNELS
from .safeload import cut

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_PACKAGE = re.compile(r"^(?:([a-z][a-z0-9-]{1,30})/)?(linux-image-[a-z0-9][a-z0-9.+-]*)(?:=([0-9A-Za-z.+~:-]+))?$")
# what git accepts in a ref name or revision that is also inert in a shell; `..`, `@{` and the like are refused
_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/^~-]{0,199}$")
#: the config fragment a git build gets: the one mainline-4.19 builds with (virtio, ext4 and NFS built in)
BUILD_CONFIG = KERNELS / "config" / "lab-4.19.config"
NAME_PREFIX = "adhoc-"


@dataclass
class AdHoc:
    """One `--kernel` as a spec: the row's name and title, its source, and files to copy beside it."""

    name: str
    title: str
    kind: str
    source: dict
    copies: dict[str, Path] = field(default_factory=dict)   # path relative to kernels/ → file to copy there

    def spec(self) -> dict:
        return {"name": self.name, "title": self.title, "source": {self.kind: self.source},
                "notes": "Written by `lab run --kernel`: a kernel without history, so every cell expects unknown.",
                "expect": [{"when": {}, "verdict": "unknown"}]}


def parse(text: str, tree: str | None = None) -> AdHoc:
    """`--kernel` text → AdHoc, after checking that what it names exists (ValueError, one line, otherwise)."""
    if not text or not text.strip():
        raise ValueError("empty (allowed: a bzImage or .deb path, an http(s) URL, a linux-image-… package, or a "
                         "git ref with --kernel-tree)")
    text = text.strip()
    scheme = _URL.match(text)
    if scheme:
        return _from_url(text, scheme.group(1))
    src, *patches = text.split(":")
    path = Path(src).expanduser()
    if path.exists():
        if patches:
            raise ValueError(f"{cut(src)}: patches apply to a git build only (SRC:PATCH is GIT_REF:PATCH)")
        return _from_file(path)
    if src.startswith(("/", "./", "../", "~")) or src.endswith(".deb"):
        raise ValueError(f"{cut(src)}: no such file")
    package = _PACKAGE.match(src)
    if package and not patches:
        suite, name, version = package.groups()
        source = {"suite": suite or BOX_SUITE, "package": name, **({"version": version} if version else {})}
        return AdHoc(_name(name.removeprefix("linux-image-") + (f"-{version}" if version else "")),
                     f"{name}{f'={version}' if version else ''} ({suite or BOX_SUITE}), ad hoc", "deb", source)
    if tree:
        return _from_git(src, Path(tree), patches)
    raise ValueError(f"{cut(src)}: no such file, and not an http(s) URL, a linux-image-… package or (with "
                     f"--kernel-tree or NFSLAB_LINUX_TREE) a git ref")


def _from_url(url: str, scheme: str) -> AdHoc:
    if scheme.lower() not in ("http", "https"):
        raise ValueError(f"URL scheme '{cut(scheme)}' is not supported (allowed: http, https; a local file by path)")
    if not re.match(r"^https?://[^/\s]+/\S*[^/\s]$", url):
        raise ValueError(f"bad URL '{cut(url)}' (allowed: http:// or https://, a host and a file)")
    base = url.rsplit("/", 1)[-1]
    kind = "deb" if base.endswith(".deb") else "image"
    return AdHoc(_name(base.removesuffix(".deb"), url), f"{base} from {url}, ad hoc", kind, {"url": url})


def _from_file(path: Path) -> AdHoc:
    if not path.is_file():
        raise ValueError(f"{cut(path)}: not a file (allowed: a bzImage or a .deb)")
    path = path.resolve()
    digest = prebuilt.sha256_of(path)
    if prebuilt.is_deb(path):
        return AdHoc(_name(path.name.removesuffix(".deb"), digest), f"{path.name} (sha256 {digest[:12]}), ad hoc",
                     "deb", {"file": str(path), "sha256": digest})
    try:
        release = prebuilt.bzimage_release(path)
    except ValueError as e:
        raise ValueError(f"{cut(path)}: {e} (allowed: a bzImage or a .deb)") from None
    return AdHoc(_name(release, digest), f"{release} from {path.name} (sha256 {digest[:12]}), ad hoc", "image",
                 {"file": str(path), "sha256": digest})


def _from_git(ref: str, tree: Path, patches: list[str]) -> AdHoc:
    if not _REF.match(ref) or ".." in ref:
        raise ValueError(f"'{cut(ref)}' is not a git ref (allowed: letters, digits and . _ / ^ ~ -, as in v6.1, "
                         f"HEAD~2, origin/master or a commit id)")
    if not (tree / ".git").exists():
        raise ValueError(f"kernel tree {cut(tree)}: not a git checkout (fix: --kernel-tree PATH of a Linux clone)")
    copies = {"config/lab.config": BUILD_CONFIG}
    names = []
    for patch in patches:
        p = Path(patch).expanduser()
        if not patch or not p.is_file():
            raise ValueError(f"patch '{cut(patch)}': no such file")
        names.append(f"patches/{len(names) + 1:02d}-{_slug(p.name, 60)}")
        copies[names[-1]] = p.resolve()
    found = subprocess.run(["git", "-C", str(tree), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
                           capture_output=True, text=True, timeout=60)
    commit = found.stdout.strip()
    if found.returncode != 0 or not re.fullmatch(r"[0-9a-f]{40,64}", commit):
        raise ValueError(f"'{cut(ref)}': no such commit in {cut(tree)}")
    source = {"tree": str(tree.resolve()), "ref": commit, "scope": "full", "config": "config/lab.config",
              **({"patches": names} if names else {})}
    label = f"{ref} ({commit[:12]})" if ref != commit else commit[:12]
    extra = f" + {len(names)} patch{'es' if len(names) > 1 else ''}" if names else ""
    key = commit + "".join(prebuilt.sha256_of(copies[n]) for n in names)
    return AdHoc(_name(ref if ref != commit else "git", key), f"{label}{extra} of {tree.name}, ad hoc", "build",
                 source, copies)


def _slug(text: str, limit: int) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-.")[:limit].strip("-.") or "kernel"


def _name(what: str, key: str | None = None) -> str:
    """`adhoc-6.1.0-18-cloud-amd64`, `adhoc-v6.1-0a1b2c3d`: a row name that fits a cell id and a file name."""
    from hashlib import sha256
    suffix = f"-{sha256(key.encode()).hexdigest()[:8]}" if key else ""
    return NAME_PREFIX + _slug(what, 40) + suffix


# ---- the run directory's copy ----------------------------------------------------------------------------------

def write(adhoc: AdHoc, matrix, dest: Path) -> Path:
    """dest/matrix.yaml (the matrix's axes, server and experiment; the ad hoc row only) and dest/kernels/ (its spec
    and the files it names; the server's spec when it is not one of nfslab's own). Returns the matrix's path."""
    yaml = YAML()
    yaml.width = 4096
    kernels = dest / "kernels"
    kernels.mkdir(parents=True, exist_ok=True)
    for relative, source in adhoc.copies.items():
        (kernels / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, kernels / relative)
    with (kernels / f"{adhoc.name}.yaml").open("w") as f:
        f.write(f"# {adhoc.name}: written by `lab run --kernel`; `lab run -m RUN/matrix.yaml` repeats its run\n")
        yaml.dump(adhoc.spec(), f)
    server = matrix.files.get(matrix.server)
    if server is not None and server.parent.resolve() != KERNELS.resolve():
        shutil.copyfile(server, kernels / server.name)
    doc = yaml.load(matrix.path.read_text())
    doc["kernels"] = [adhoc.name]
    with (dest / "matrix.yaml").open("w") as f:
        f.write(f"# {matrix.path.name} with one row: the ad hoc kernel of `lab run --kernel` (kernels/{adhoc.name}"
                f".yaml)\n")
        yaml.dump(doc, f)
    return dest / "matrix.yaml"


def pin(kernel, run_dir: Path, home) -> str | None:
    """A URL source of a spec in this run directory's kernels/ (what `lab run --kernel URL` wrote) gets the sha256
    of the file downloaded for it, once the runner has that file: the spec then says which bytes the run tested,
    and a rerun from it (`lab run -m RUN/matrix.yaml`) tests the same bytes or none (lab/prebuilt.py obtain: other
    bytes are an ERROR). The kernel's source in memory is pinned too, so the run's later cells hold to it. Returns
    the sha256 written; None for any other spec (another source kind, a file, pinned already, or kept elsewhere:
    a spec outside this run directory is not this run's to change)."""
    source = kernel.source
    if "url" not in source or source.get("sha256"):
        return None
    if kernel.path.parent.resolve() != (Path(run_dir) / "kernels").resolve():
        return None
    path = prebuilt.download_path(source["url"], home)
    if not path.is_file():
        return None
    digest = prebuilt.sha256_of(path)
    yaml = YAML()
    yaml.width = 4096
    doc = yaml.load(kernel.path.read_text())
    doc["source"][kernel.source_kind]["sha256"] = digest
    text = io.StringIO()
    yaml.dump(doc, text)
    write_atomic(kernel.path, text.getvalue())
    source["sha256"] = digest
    return digest
