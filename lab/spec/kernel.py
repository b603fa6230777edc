"""A kernel spec (kernels/<name>.yaml): how to get the kernel (exactly one source kind, each with its own schema)
and what history says it does in which cells."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from .. import axes as axis_registry
from ..distro import KNOWN_PACKAGES, family_of
from ..errors import SpecError, display_path
from ..safeload import cut
from .source import Source, allowed_text, unknown_text

#: `unknown`: no history to hold the kernel to (an ad hoc kernel, `lab run --kernel`): a fail is news, not a
#: regression, and a pass is not an unexpected one (lab/render/grid.py shows it as "no history")
VERDICTS = ("pass", "fail", "unknown")
Verdict = Literal["pass", "fail", "unknown"]


@dataclass(frozen=True)
class SourceField:
    required: bool = False
    kind: str = "str"                      # "str" | "list" | "tree" (a name or path, or a release tarball)
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Tarball:
    """One file that holds a kernel tree, known by its sha256; `url` is where it can be downloaded, if anywhere."""

    file: str
    sha256: str
    url: str | None = None


@dataclass(frozen=True)
class ReleaseTree:
    """`tree:` as a release tarball: the upstream file, then equivalent ones accepted in its place (lab/tarballs.py
    finds one in a mirror or the kernel cache, or downloads it)."""

    main: Tarball
    alternatives: tuple[Tarball, ...] = ()

    @property
    def tarballs(self) -> tuple[Tarball, ...]:
        return (self.main, *self.alternatives)


SOURCE_SCHEMAS: dict[str, dict[str, SourceField]] = {
    # a package from a suite, or one .deb file (`file`: a path; `url`: downloaded, checked against `sha256`)
    "deb": {"suite": SourceField(), "package": SourceField(), "version": SourceField(), "file": SourceField(),
            "url": SourceField(), "sha256": SourceField()},
    # a bootable kernel image (bzImage) with virtio, ext4 and NFS built in: booted directly, no initramfs
    "image": {"file": SourceField(), "url": SourceField(), "sha256": SourceField()},
    # a distribution's Vagrant box (`name` + pinned `version`; `file`: a .box added from a mirror or the box
    # directory) and its kernel package, which the host fetches from the Debian `suite` (lab/boxsource.py)
    "box": {"name": SourceField(True), "version": SourceField(), "kernel_package": SourceField(True),
            "provider": SourceField(choices=("libvirt",)), "file": SourceField(), "suite": SourceField()},
    "build": {"base": SourceField(), "tree": SourceField(True, kind="tree"), "patches": SourceField(kind="list"),
              "scope": SourceField(True, choices=("full", "module:fs/nfs")), "config": SourceField(),
              "ref": SourceField()},
}
KERNEL_KEYS = ["name", "title", "source", "expect", "notes"]
EXPECT_KEYS = ["when", "verdict", "note"]


@dataclass(frozen=True)
class Expectation:
    """What history says a kernel does in the cells matching `when` (all its keys equal)."""

    when: dict[str, str]
    verdict: Verdict
    note: str = ""

    def matches(self, params: dict[str, str]) -> bool:
        return all(params.get(key) == value for key, value in self.when.items())


@dataclass(frozen=True)
class Kernel:
    """One row of the table: how to get this kernel and what we expect of it."""

    name: str
    title: str
    source_kind: Literal["deb", "image", "box", "build"]
    source: dict
    expect: list[Expectation]
    path: Path
    notes: str = ""

    def expected(self, params: dict[str, str]) -> Verdict:
        """The first matching expectation wins; a kernel is expected to work unless history says otherwise (an ad hoc
        kernel's spec says `unknown` for every cell: `when: {}`)."""
        for expectation in self.expect:
            if expectation.matches(params):
                return expectation.verdict
        return "pass"

    @property
    def base(self) -> str | None:
        return self.source.get("base") if self.source_kind == "build" else None


def load_kernel(path: Path | str) -> Kernel:
    """Read and validate one kernels/<name>.yaml."""
    src = Source(Path(path))
    doc = src.load()
    src.mapping(doc, "a kernel spec", None, KERNEL_KEYS, required=["name", "title", "source"])
    name = src.string(doc, "name")
    if name != src.path.stem:
        raise src.error(src.value_line(doc, "name"),
                        f"name '{cut(name)}' does not match the file name (expected: {src.path.stem})")
    kind, source = _kernel_source(src, doc)
    return Kernel(name=name, title=src.string(doc, "title"), source_kind=kind, source=source,
                  expect=_expectations(src, doc), path=src.path,
                  notes=src.string(doc, "notes") if "notes" in doc else "")


def _kernel_source(src: Source, doc: CommentedMap) -> tuple[str, dict]:
    """Exactly one source kind, each with its own schema."""
    node = src.mapping(doc["source"], "source", src.value_line(doc, "source"), list(SOURCE_SCHEMAS),
                       key_word="source kind")
    if len(node) != 1:
        raise src.error(src.key_line(doc, "source"),
                        f"source needs exactly one of {', '.join(SOURCE_SCHEMAS)} (found {len(node)})")
    kind = next(iter(node))
    schema = SOURCE_SCHEMAS[kind]
    body = src.mapping(node[kind], f"source.{kind}", src.key_line(node, kind), list(schema),
                       required=[key for key, f in schema.items() if f.required])
    source = {key: _source_value(src, body, key, schema[key]) for key in body}
    _one_origin(src, body, kind, source)
    if kind == "box":
        _box(src, body, source)
    if isinstance(source.get("tree"), ReleaseTree) and source.get("scope") == "module:fs/nfs":
        raise src.error(src.key_line(body, "tree"), "a module build takes its fs/nfs from linux-source-6.1 or a git "
                                                   "checkout, not from a release tarball (or use scope: full)")
    return kind, source


#: where a deb or an image comes from: exactly one of these key sets
ORIGINS = {"deb": (("suite", "package"), ("file",), ("url",)), "image": (("file",), ("url",))}


def _one_origin(src: Source, body: CommentedMap, kind: str, source: dict) -> None:
    """A deb is a package of a suite or one file; an image one file or URL: exactly one of them, and a URL is
    http(s) (what a download can fetch), a sha256 64 hex digits."""
    if kind not in ORIGINS:
        return
    given = [keys for keys in ORIGINS[kind] if any(k in source for k in keys)]
    choices = " | ".join("+".join(keys) for keys in ORIGINS[kind])
    if len(given) != 1 or not all(k in source for k in given[0]):
        raise src.error(src.node_line(body), f"source.{kind} needs exactly one of {choices}")
    if kind == "deb" and given[0] != ("suite", "package") and "version" in source:
        raise src.error(src.key_line(body, "version"), "version names a package of a suite, not a file")
    if "url" in source and not re.match(r"^https?://[^/\s]+/\S*[^/\s]$", source["url"]):
        raise src.error(src.value_line(body, "url"), f"bad url '{cut(source['url'])}' (allowed: http:// or https:// "
                                                     f"and a file)")
    if "sha256" in source and not _SHA256.match(source["sha256"]):
        raise src.error(src.value_line(body, "sha256"), f"bad sha256 '{cut(source['sha256'])}' (allowed: 64 hex "
                                                        f"digits, as sha256sum prints them)")


#: what a box's name, version, file and suite may be: they go into the Vagrantfile, file names and apt's sources
BOX_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}(/[A-Za-z0-9][A-Za-z0-9._-]{0,63})?$")
BOX_VERSION = re.compile(r"^[0-9]{1,9}(\.[0-9]{1,9}){0,3}$")
BOX_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,200}\.box$")
SUITE = re.compile(r"^[a-z][a-z0-9-]{0,39}$")


def _box(src: Source, body: CommentedMap, source: dict) -> None:
    """A box row's values are checked here, not when it runs: each ends up in a Vagrantfile (Ruby), a shell
    script or a path, so anything but the plain names they are is refused."""
    checks = (("name", BOX_NAME, "a box name: NAME or ORG/NAME of letters, digits, '.', '_', '-'"),
              ("version", BOX_VERSION, 'a box version: numbers and dots, quoted, e.g. "1809.01"'),
              ("file", BOX_FILE, "a .box file name, looked up in the mirrors and the lab's box directory"),
              ("suite", SUITE, "a Debian suite, e.g. bullseye"))
    for key, pattern, allowed in checks:
        if key in source and not pattern.fullmatch(source[key]):
            raise src.error(src.value_line(body, key), f"bad {key} '{cut(source[key])}' (allowed: {allowed})")
    package = source["kernel_package"]
    try:
        family = family_of(package)
    except ValueError:
        raise src.error(src.value_line(body, "kernel_package"),
                        f"no distribution family knows kernel package '{cut(package)}' "
                        f"{allowed_text(KNOWN_PACKAGES)}") from None
    if "file" in source and "version" not in source:
        raise src.error(src.key_line(body, "file"), "file needs version (the version the box is added as)")
    if "suite" in source and family.name != "debian":
        raise src.error(src.key_line(body, "suite"), f"suite names a Debian suite to fetch the kernel package from, "
                                                     f"and {cut(package)} is not a Debian package")


TREE_KEYS = ["url", "file", "sha256", "alternatives"]
ALTERNATIVE_KEYS = ["file", "sha256", "url"]
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _release_tree(src: Source, node: CommentedMap, line: int | None) -> ReleaseTree:
    """`tree: {url, sha256, alternatives: [{file, sha256}, …]}`: every file is named by its sha256, so a copy found
    anywhere can be checked before it is built."""
    src.mapping(node, "tree", line, TREE_KEYS, required=["sha256"])
    if "url" not in node and "file" not in node:
        raise src.error(line, "tree needs 'url' (where the release is downloaded) or 'file' (its name in a mirror)")
    main = _tarball(src, node)
    alternatives = []
    if "alternatives" in node:
        items = src.sequence(node, "alternatives")
        for index, item in enumerate(items):
            at = src.item_line(items, index)
            src.mapping(item, "an alternative", at, ALTERNATIVE_KEYS, required=["file", "sha256"])
            alternatives.append(_tarball(src, item))
    return ReleaseTree(main, tuple(alternatives))


def _tarball(src: Source, node: CommentedMap) -> Tarball:
    url = src.string(node, "url") if "url" in node else None
    if url is not None and not re.match(r"^https?://[^/]+/.*[^/]$", url):
        raise src.error(src.value_line(node, "url"), f"bad url '{cut(url)}' (allowed: http:// or https:// and a file)")
    name = src.string(node, "file") if "file" in node else url.rsplit("/", 1)[-1]
    if not name or "/" in name or name in (".", ".."):
        raise src.error(src.value_line(node, "file"), f"bad file '{cut(name)}' (allowed: a file name, looked up in "
                                                      f"mirrors and the kernel cache)")
    sha256 = src.string(node, "sha256").strip().lower()
    if not _SHA256.match(sha256):
        raise src.error(src.value_line(node, "sha256"), f"bad sha256 '{cut(node['sha256'])}' (allowed: 64 hex digits, "
                                                        f"as sha256sum prints them)")
    return Tarball(file=name, sha256=sha256, url=url)


def _source_value(src: Source, body: CommentedMap, key: str, spec: SourceField) -> str | list[str] | ReleaseTree:
    if spec.kind == "tree" and isinstance(body[key], CommentedMap):
        return _release_tree(src, body[key], src.key_line(body, key))
    if spec.kind == "list":
        items = src.sequence(body, key)
        for index, item in enumerate(items):
            if not isinstance(item, str):
                raise src.error(src.item_line(items, index), f"{key} entries must be strings")
        return [str(item) for item in items]
    value = src.string(body, key)
    if spec.choices and value not in spec.choices:
        raise src.error(src.value_line(body, key), unknown_text(key, value, spec.choices))
    return value


def _expectations(src: Source, doc: CommentedMap) -> list[Expectation]:
    if "expect" not in doc or doc["expect"] is None:
        return []
    items = src.sequence(doc, "expect")
    return [_expectation(src, item, src.item_line(items, index)) for index, item in enumerate(items)]


def _expectation(src: Source, node: Any, line: int | None) -> Expectation:
    src.mapping(node, "an expectation", line, EXPECT_KEYS, required=["when", "verdict"])
    verdict = node["verdict"]
    if verdict not in VERDICTS:
        raise src.error(src.value_line(node, "verdict"), unknown_text("verdict", verdict, VERDICTS))
    when = src.mapping(node["when"], "when", src.value_line(node, "when"), axis_registry.axis_names(),
                       key_word="axis")
    return Expectation(when={key: axis_value(src, when, key, when[key], src.value_line(when, key))
                             for key in when},
                       verdict=verdict, note=src.string(node, "note") if "note" in node else "")


def axis_value(src: Source, node: Any, name: str, raw: object, line: int | None) -> str:
    """Normalise and check one axis value (`on` → "on", 4.1 → "4.1")."""
    handler = axis_registry.axis(name)
    if handler is None:
        raise src.error(src.key_line(node, name), unknown_text("axis", name, axis_registry.axis_names()))
    if raw is None or isinstance(raw, (CommentedMap, CommentedSeq)):
        raise src.error(line, f"{name} values must be plain values {allowed_text(handler.allowed or ('a number',))}")
    if isinstance(raw, float):   # `vers: [4.10]` would silently become 4.1
        raise src.error(line, f"{name} value {cut(raw)} is a number: quote it (\"{cut(raw)}\")")
    if not isinstance(raw, (str, int, bool)):   # a date, bytes…
        raise src.error(line, f"{name} value '{cut(raw)}' is not a plain value: quote it")
    value = handler.normalise(raw)
    problem = handler.validate(value)
    if problem:
        raise src.error(line, problem)
    return value


def kernel_files(kernels_dir: Path) -> dict[str, Path]:
    """name → file for every kernel spec in the directory; two files for one name is an error."""
    found: dict[str, Path] = {}
    for path in sorted(kernels_dir.glob("*.yaml")) + sorted(kernels_dir.glob("*.yml")):
        if path.stem in found:
            raise SpecError(path, 1, f"kernel '{path.stem}' is defined twice: {display_path(found[path.stem])} "
                                     f"and {display_path(path)}")
        found[path.stem] = path
    return found
