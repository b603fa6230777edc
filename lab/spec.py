"""The specs: matrix.yaml and kernels/*.yaml, loaded, validated and expanded into cells.

This module owns the meaning of those files and their error messages. Every mistake is reported as one line
`FILE:LINE: what is wrong (allowed: …)`, pointing at the key or list item at fault, because a matrix is edited by
hand and the person editing it should not have to read a traceback. Pure: nothing here but reading the files.
"""
from __future__ import annotations

import difflib
import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from . import axes as axis_registry
from .errors import SpecError, display_path  # noqa: F401  (callers name them lab.spec.SpecError, …)
from .paths import KERNELS
from .safeload import cut, load_yaml

EXPERIMENTS = ("rename", "git-packed-refs")   # lab.experiments.EXPERIMENTS has the same names
#: the experiments whose read is a program reading one file by name, so the `reader` axis can replace it (tested
#: against each experiment's Scenario.read_file)
READER_EXPERIMENTS = ("rename",)
VERDICTS = ("pass", "fail")
Verdict = Literal["pass", "fail"]


# ---- errors ------------------------------------------------------------------------------------------------------

def _allowed(names) -> str:
    return f"(allowed: {', '.join(names)})"


def _unknown(what: str, name: object, allowed) -> str:
    """`unknown key 'kernal', did you mean 'kernels'? (allowed: …)`: a typo is the usual cause."""
    allowed = list(allowed)
    close = difflib.get_close_matches(cut(name), allowed, n=1)
    hint = f", did you mean '{close[0]}'?" if close else ""
    return f"unknown {what} '{cut(name)}'{hint} {_allowed(allowed)}"


# ---- reading YAML with line numbers -----------------------------------------------------------------------------

class Source:
    """One YAML file being validated: knows where each key and item is, so errors can say which line."""

    def __init__(self, path: Path):
        self.path = path

    def load(self) -> Any:
        return load_yaml(self.path)

    def error(self, line: int | None, message: str) -> SpecError:
        return SpecError(self.path, line, message)

    @staticmethod
    def key_line(node: Any, key: str) -> int | None:
        try:
            return node.lc.key(key)[0] + 1
        except (AttributeError, KeyError, TypeError):
            return None

    @staticmethod
    def value_line(node: Any, key: str) -> int | None:
        try:
            return node.lc.value(key)[0] + 1
        except (AttributeError, KeyError, TypeError):
            return Source.key_line(node, key)

    @staticmethod
    def item_line(seq: Any, index: int) -> int | None:
        try:
            return seq.lc.item(index)[0] + 1
        except (AttributeError, KeyError, TypeError, IndexError):
            return None

    @staticmethod
    def node_line(node: Any) -> int | None:
        try:
            return node.lc.line + 1
        except AttributeError:
            return None

    def mapping(self, node: Any, what: str, line: int | None, allowed: list[str], required: list[str] = (),
                key_word: str = "key") -> dict:
        """Check a mapping's keys: unknown keys name the allowed ones, missing keys name themselves."""
        if not isinstance(node, CommentedMap):
            raise self.error(line, f"{what} must be a mapping {_allowed(allowed)}")
        for key in node:
            if key not in allowed:
                raise self.error(self.key_line(node, key), _unknown(key_word, key, allowed))
        for key in required:
            if key not in node:
                raise self.error(line or self.node_line(node),
                                 f"{what} needs '{key}' (required: {', '.join(required)})")
        return node

    def string(self, node: Any, key: str, what: str | None = None) -> str:
        """A text value; floats are refused because YAML would silently turn `1809.10` into `1809.1`."""
        value = node[key]
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.error(self.value_line(node, key), f"{what or key} must be a string (quote it)")
        return str(value)

    def sequence(self, node: Any, key: str) -> CommentedSeq:
        value = node[key]
        if not isinstance(value, CommentedSeq):
            raise self.error(self.value_line(node, key), f"{key} must be a list")
        return value


# ---- durations ---------------------------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d{1,12}(?:\.\d{1,9})?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
MAX_DURATION = 86400.0   # in a matrix, a day: longer is a typo (`30h` for `30s`), and would hold a VM for as long


def parse_duration(raw: object, limit: float = math.inf) -> float:
    """`30s`, `500ms`, `1.5s`, `2m` or a plain number of seconds, at most `limit` → seconds; ValueError otherwise
    (also for NaN and infinity, which YAML reads from `.nan` and `.inf`)."""
    if isinstance(raw, bool):
        raise ValueError(raw)
    if isinstance(raw, (int, float)):
        seconds = float(raw)
    elif isinstance(raw, str) and (match := _DURATION.match(raw)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError(raw)
    if not 0 <= seconds <= limit or seconds == math.inf:   # False for NaN too
        raise ValueError(raw)
    return seconds


# ---- kernels -----------------------------------------------------------------------------------------------------

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
    "deb": {"suite": SourceField(True), "package": SourceField(True), "version": SourceField()},
    "box": {"name": SourceField(True), "version": SourceField(), "kernel_package": SourceField(True),
            "provider": SourceField(choices=("libvirt",))},
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
    source_kind: Literal["deb", "box", "build"]
    source: dict
    expect: list[Expectation]
    path: Path
    notes: str = ""

    def expected(self, params: dict[str, str]) -> Verdict:
        """The first matching expectation wins; a kernel is expected to work unless history says otherwise."""
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
    if isinstance(source.get("tree"), ReleaseTree) and source.get("scope") == "module:fs/nfs":
        raise src.error(src.key_line(body, "tree"), "a module build takes its fs/nfs from linux-source-6.1 or a git "
                                                   "checkout, not from a release tarball (or use scope: full)")
    return kind, source


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
        raise src.error(src.value_line(body, key), _unknown(key, value, spec.choices))
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
        raise src.error(src.value_line(node, "verdict"), _unknown("verdict", verdict, VERDICTS))
    when = src.mapping(node["when"], "when", src.value_line(node, "when"), axis_registry.axis_names(),
                       key_word="axis")
    return Expectation(when={key: _axis_value(src, when, key, when[key], src.value_line(when, key))
                             for key in when},
                       verdict=verdict, note=src.string(node, "note") if "note" in node else "")


def _axis_value(src: Source, node: Any, name: str, raw: object, line: int | None) -> str:
    """Normalise and check one axis value (`on` → "on", 4.1 → "4.1")."""
    handler = axis_registry.axis(name)
    if handler is None:
        raise src.error(src.key_line(node, name), _unknown("axis", name, axis_registry.axis_names()))
    if raw is None or isinstance(raw, (CommentedMap, CommentedSeq)):
        raise src.error(line, f"{name} values must be plain values {_allowed(handler.allowed or ('a number',))}")
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


# ---- experiment --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Experiment:
    """What runs in each cell and how its timeline is judged (seconds everywhere)."""

    name: str = "rename"
    duration: float = 30.0
    interval: float = 0.5
    pass_within: float = 2.0
    repeats: int = 1
    settle: float = 5.0
    capture: bool = False    # a packet capture of the NFS traffic per cell, decoded into operation counts
    trace_syscalls: bool = True   # strace a bounded number of alice's reads after the change (meta["syscalls"])


MAX_REPEATS = 1000   # runs per cell; more is a typo, and days of VM time
EXPERIMENT_KEYS = ["name", "duration", "interval", "pass_within", "repeats", "settle", "capture", "trace_syscalls"]
DURATION_KEYS = ("duration", "interval", "pass_within", "settle")


def _experiment(src: Source, doc: CommentedMap) -> Experiment:
    node = src.mapping(doc["experiment"], "experiment", src.key_line(doc, "experiment"), EXPERIMENT_KEYS,
                       required=["duration", "interval", "pass_within"])
    values: dict[str, Any] = {}
    if "name" in node:
        if node["name"] not in EXPERIMENTS:
            raise src.error(src.value_line(node, "name"), _unknown("experiment", node["name"], EXPERIMENTS))
        values["name"] = str(node["name"])
    for key in DURATION_KEYS:
        if key in node:
            values[key] = _duration(src, node, key)
    if "repeats" in node:
        repeats = node["repeats"]
        if isinstance(repeats, bool) or not isinstance(repeats, int) or not 1 <= repeats <= MAX_REPEATS:
            raise src.error(src.value_line(node, "repeats"),
                            f"bad repeats '{cut(repeats)}' (allowed: a whole number from 1 to {MAX_REPEATS})")
        values["repeats"] = repeats
    for key in ("capture", "trace_syscalls"):
        if key in node:
            values[key] = _switch(src, node, key)
    experiment = Experiment(**values)
    if experiment.interval <= 0 or experiment.pass_within > experiment.duration:
        raise src.error(src.key_line(doc, "experiment"), "experiment needs interval > 0 and pass_within <= duration")
    return experiment


def _switch(src: Source, node: CommentedMap, key: str) -> bool:
    """on/off; YAML 1.1 already reads on/off/yes/no/true/false as booleans."""
    value = node[key]
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("on", "off"):
        return str(value).lower() == "on"
    raise src.error(src.value_line(node, key), f"bad {key} '{cut(value)}' (allowed: on, off)")


def _duration(src: Source, node: CommentedMap, key: str) -> float:
    try:
        return parse_duration(node[key], MAX_DURATION)
    except ValueError:
        raise src.error(src.value_line(node, key),
                        f"bad duration '{cut(node[key])}' for {key} (allowed: e.g. 30s, 500ms, 1.5s, 2m, or seconds, "
                        f"up to a day)") \
            from None


# ---- timeouts ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Timeouts:
    """How long each wait of a cell may last before it is a lab ERROR (seconds).

    The defaults suit TCG on 2 cores, where everything a VM does is several times slower than under KVM. A
    timeout costs time only when something is already broken, so they are generous rather than tight."""

    boot: float = 300.0        # a VM to boot and answer Vagrant's ssh (`vagrant up` gets 120 s more of its own)
    revert: float = 120.0      # the three VMs back to the boot snapshot
    ssh: float = 120.0         # every VM to answer the lab's ssh, after the boot and after each revert
    command: float = 60.0      # one command in a VM that no key below covers
    nfsd: float = 90.0         # the server's nfsd to start (and its modules to load before the snapshot)
    mount: float = 60.0        # one client's mount (and its NFS modules to load before the snapshot)
    experiment: float = 60.0   # past `duration`: alice's reader to stop and hand over its timeline
    build: float = 3600.0      # one kernel compile (a module rebuild or a full bzImage)


TIMEOUT_KEYS = list(Timeouts.__dataclass_fields__)


def _timeouts(src: Source, doc: CommentedMap) -> Timeouts:
    """The optional `timeouts:` section; a key left out keeps its default."""
    if doc.get("timeouts") is None:
        return Timeouts()
    node = src.mapping(doc["timeouts"], "timeouts", src.key_line(doc, "timeouts"), TIMEOUT_KEYS, key_word="timeout")
    values: dict[str, float] = {}
    for key in node:
        try:
            values[key] = parse_duration(node[key], MAX_DURATION)
        except ValueError:
            values[key] = 0.0
        if values[key] <= 0:
            raise src.error(src.value_line(node, key), f"bad timeout '{cut(node[key])}' for {key} "
                                                       f"(allowed: a duration > 0 and up to a day, e.g. "
                                                       f"{getattr(Timeouts, key):g}s)")
    return Timeouts(**values)


# ---- cells and the matrix ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cell:
    """One kernel under one combination of axis values: one run of the experiment, one box of the table."""

    kernel: str
    params: dict[str, str]

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def label(self) -> str:
        """The column name: `vers=4.0 leases=on`."""
        return " ".join(f"{key}={value}" for key, value in self.params.items())

    @property
    def id(self) -> str:
        return "/".join([self.kernel, *(f"{key}={value}" for key, value in self.params.items())])

    @property
    def group(self) -> str:
        """Cells of one kernel share a topology, so they are grouped (xdist_group) by kernel."""
        return self.kernel

    @classmethod
    def from_id(cls, cell_id: str) -> "Cell":
        kernel, *pairs = cell_id.split("/")
        return cls(kernel, dict(pair.split("=", 1) for pair in pairs))


def parse_cell_filter(text: str, axes: dict[str, list[str]]) -> dict[str, str]:
    """`vers=4.1,leases=on` (or `vers=4.1/leases=on`, as a cell id spells it) → {"vers": "4.1", "leases": "on"}:
    the cells with these axis values; an axis left out matches all its values. Only the matrix's axes and values are
    allowed, so a typo is an error (ValueError, one line naming the allowed ones) rather than an empty selection."""
    pairs = [p.strip() for p in re.split(r"[,/]", text) if p.strip()]
    if not pairs:
        raise ValueError(f"no axis=value in '{cut(text)}' (e.g. {_example(axes)})")
    chosen: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name, value = name.strip(), value.strip()
        if not sep:
            raise ValueError(f"'{cut(pair)}' is not axis=value (e.g. {_example(axes)}; kernels are chosen with -k)")
        if name not in axes:
            raise ValueError(_unknown("axis", name, axes))
        if value not in axes[name]:
            raise ValueError(f"unknown value '{cut(value)}' for axis {name} {_allowed(axes[name])}")
        if name in chosen and chosen[name] != value:
            raise ValueError(f"{name} given twice ({chosen[name]}, {cut(value)}): repeat --cell for either")
        chosen[name] = value
    return {name: chosen[name] for name in axes if name in chosen}


def _example(axes: dict[str, list[str]]) -> str:
    return ",".join(f"{name}={values[0]}" for name, values in axes.items() if values) or "axis=value"


MATRIX_KEYS = ["kernels", "server", "axes", "experiment", "timeouts"]
REQUIRED_MATRIX_KEYS = ["kernels", "server", "axes", "experiment"]


@dataclass(frozen=True)
class Matrix:
    """The whole plan: rows (kernels), columns (axis values), the server, and how each cell is judged."""

    path: Path
    kernels: list[Kernel]
    server: str
    axes: dict[str, list[str]]
    experiment: Experiment
    timeouts: Timeouts = Timeouts()
    known: dict[str, Kernel] = field(default_factory=dict, repr=False)  # rows + server + build bases
    files: dict[str, Path] = field(default_factory=dict, repr=False)    # name → spec file of every spec it can name

    def kernel(self, name: str) -> Kernel:
        try:
            return self.known[name]
        except KeyError:
            raise SpecError(self.path, None, _unknown("kernel", name, self.known)) from None

    @property
    def kernel_names(self) -> list[str]:
        return [k.name for k in self.kernels]

    def cells(self, only: list[str] | None = None, where: list[dict[str, str]] | None = None) -> list[Cell]:
        """Kernel-major, then the cartesian product of the axes in their declared order. `only`: these kernel rows;
        `where`: cells matching any of these axis values (parse_cell_filter), e.g. [{"vers": "4.1"}]."""
        for name in only or []:
            if name not in self.kernel_names:
                raise SpecError(self.path, None, _unknown("kernel", name, self.kernel_names))
        combos = [dict(zip(self.axes, values)) for values in itertools.product(*self.axes.values())]
        if where:
            combos = [c for c in combos if any(all(c.get(k) == v for k, v in w.items()) for w in where)]
        return [Cell(k.name, dict(params)) for k in self.kernels if not only or k.name in only for params in combos]

    def expected(self, cell: Cell) -> Verdict:
        return self.kernel(cell.kernel).expected(cell.params)


def find_kernels_dir(matrix_path: Path) -> Path:
    """The `kernels/` next to the matrix, else in the nearest directory above it (matrices/*.yaml in a project
    share the project's kernels/), else nfslab's own kernel specs (a matrix.yaml of rows it already knows)."""
    for folder in matrix_path.resolve().parents:
        if (folder / "kernels").is_dir():
            return folder / "kernels"
    return KERNELS


def kernel_dirs(matrix_path: Path) -> list[Path]:
    """Where a matrix's kernel names are looked up, in order: its own kernels/ (find_kernels_dir), then nfslab's
    own specs. The first directory that has a name wins, so a spec of the matrix's replaces a packaged one of the
    same name, and its specs can name packaged ones (a server, a `base:`) as if they were beside them."""
    own = find_kernels_dir(matrix_path)
    return [own] if own == KERNELS else [own, KERNELS]


def kernel_lookup(dirs: list[Path]) -> dict[str, Path]:
    """name → file over the directories in order (kernel_files of each); an earlier directory's name wins."""
    found: dict[str, Path] = {}
    for directory in dirs:
        for name, path in kernel_files(directory).items():
            found.setdefault(name, path)
    return found


def load_matrix(path: Path | str, kernels_dir: Path | str | None = None) -> Matrix:
    """Read matrix.yaml and every kernel spec it needs (rows, server, bases of builds), looked up in `kernels_dir`
    alone when given, else in kernel_dirs() of the matrix."""
    src = Source(Path(path))
    doc = src.load()
    src.mapping(doc, "a matrix", None, MATRIX_KEYS, required=REQUIRED_MATRIX_KEYS)
    files = kernel_files(Path(kernels_dir)) if kernels_dir is not None else kernel_lookup(kernel_dirs(src.path))
    known: dict[str, Kernel] = {}
    names = _kernel_list(src, doc, files)
    for name in names:
        load_with_bases(name, files, known)
    server = src.string(doc, "server")
    if server not in files:
        raise src.error(src.value_line(doc, "server"), _unknown("server kernel", server, sorted(files)))
    load_with_bases(server, files, known)
    axes, experiment = _axes(src, doc), _experiment(src, doc)
    _check_reader(src, doc, axes, experiment)
    return Matrix(path=src.path, kernels=[known[n] for n in names], server=server, axes=axes,
                  experiment=experiment, timeouts=_timeouts(src, doc), known=known, files=files)


def _check_reader(src: Source, doc: CommentedMap, axes: dict[str, list[str]], experiment: Experiment) -> None:
    """A reader other than cat replaces a file read; an experiment that reads otherwise (git) cannot take one."""
    other = [value for value in axes.get("reader", []) if value != axis_registry.DEFAULT_READER]
    if other and experiment.name not in READER_EXPERIMENTS:
        node = doc["axes"]
        raise src.error(src.key_line(node, "reader"),
                        f"reader '{other[0]}' needs an experiment that reads a file by name "
                        f"{_allowed(READER_EXPERIMENTS)}; experiment '{experiment.name}' reads otherwise")


def _kernel_list(src: Source, doc: CommentedMap, files: dict[str, Path]) -> list[str]:
    items = src.sequence(doc, "kernels")
    if not items:
        raise src.error(src.value_line(doc, "kernels"), f"kernels is empty {_allowed(sorted(files))}")
    names: list[str] = []
    for index, name in enumerate(items):
        line = src.item_line(items, index)
        if not isinstance(name, str):
            raise src.error(line, f"kernels entries must be kernel names, not {_kind(name)} {_allowed(sorted(files))}")
        if name in names:
            raise src.error(line, f"kernel '{cut(name)}' is listed twice")
        if name not in files:
            raise src.error(line, _unknown("kernel", name, sorted(files)))
        names.append(name)
    return names


def _kind(value: object) -> str:
    if isinstance(value, CommentedSeq):
        return "a list"
    if isinstance(value, CommentedMap):
        return "a mapping"
    return f"'{cut(value)}'"


def load_with_bases(name: str, files: dict[str, Path], known: dict[str, Kernel]) -> None:
    """A build row borrows its image from its base spec, so the base must exist and be valid too, and the chain of
    bases must end in a kernel that has an image (a → b → a never does)."""
    chain: list[str] = []
    while name not in known:
        kernel = load_kernel(files[name])
        known[name] = kernel
        chain.append(name)
        if kernel.base is None:
            return
        src = Source(kernel.path)
        if kernel.base not in files:
            raise src.error(_base_line(kernel.path), _unknown("base kernel", kernel.base, sorted(files)))
        if kernel.base in chain:
            loop = " → ".join([*chain[chain.index(kernel.base):], kernel.base])
            raise src.error(_base_line(kernel.path), f"base kernel '{kernel.base}' makes a loop: {loop} "
                                                     "(a base must lead to a deb or box kernel)")
        name = kernel.base


def _base_line(path: Path) -> int | None:
    doc = Source(path).load()
    build = doc["source"]["build"]
    return Source.value_line(build, "base")


MAX_COLUMNS = 1024   # axis combinations; each is a cell per kernel


def _axes(src: Source, doc: CommentedMap) -> dict[str, list[str]]:
    node = src.mapping(doc["axes"], "axes", src.value_line(doc, "axes"), axis_registry.axis_names(),
                       key_word="axis")
    result: dict[str, list[str]] = {}
    for name in node:
        values = node[name]
        if not isinstance(values, CommentedSeq) or not values:
            allowed = axis_registry.axis(name).allowed
            raise src.error(src.key_line(node, name), f"axis '{name}' needs a non-empty list of values"
                                                      + (f" {_allowed(allowed)}" if allowed else ""))
        result[name] = []
        for index, raw in enumerate(values):
            line = src.item_line(values, index)
            value = _axis_value(src, node, name, raw, line)
            if value in result[name]:
                raise src.error(line, f"value '{cut(value)}' is listed twice for axis '{name}'")
            result[name].append(value)
    columns = math.prod(len(values) for values in result.values())
    if columns > MAX_COLUMNS:
        raise src.error(src.value_line(doc, "axes"), f"the axes make {columns} columns (at most {MAX_COLUMNS})")
    return result

