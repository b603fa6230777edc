"""The matrix (matrix.yaml): rows (kernels, looked up in kernels/ directories with their build bases), columns
(axis values), the server, and how each cell is judged; expanded into cells."""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from .. import axes as axis_registry
from ..errors import SpecError
from ..experiments import READER_EXPERIMENTS
from ..paths import KERNELS
from ..safeload import cut
from ..timeouts import Timeouts
from .cells import Cell
from .experiment import Experiment, experiment_section, timeouts_section
from .kernel import Kernel, Verdict, axis_value, kernel_files, load_kernel
from .source import Source, allowed_text, unknown_text


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
            raise SpecError(self.path, None, unknown_text("kernel", name, self.known)) from None

    @property
    def kernel_names(self) -> list[str]:
        return [k.name for k in self.kernels]

    def cells(self, only: list[str] | None = None, where: list[dict[str, str]] | None = None) -> list[Cell]:
        """Kernel-major, then the cartesian product of the axes in their declared order. `only`: these kernel rows;
        `where`: cells matching any of these axis values (parse_cell_filter), e.g. [{"vers": "4.1"}]."""
        for name in only or []:
            if name not in self.kernel_names:
                raise SpecError(self.path, None, unknown_text("kernel", name, self.kernel_names))
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
        raise src.error(src.value_line(doc, "server"), unknown_text("server kernel", server, sorted(files)))
    load_with_bases(server, files, known)
    axes, experiment = _axes(src, doc), experiment_section(src, doc)
    _check_reader(src, doc, axes, experiment)
    return Matrix(path=src.path, kernels=[known[n] for n in names], server=server, axes=axes,
                  experiment=experiment, timeouts=timeouts_section(src, doc), known=known, files=files)


def _check_reader(src: Source, doc: CommentedMap, axes: dict[str, list[str]], experiment: Experiment) -> None:
    """A reader other than cat replaces a file read; an experiment that reads otherwise (git) cannot take one."""
    other = [value for value in axes.get("reader", []) if value != axis_registry.DEFAULT_READER]
    if other and experiment.name not in READER_EXPERIMENTS:
        node = doc["axes"]
        raise src.error(src.key_line(node, "reader"),
                        f"reader '{other[0]}' needs an experiment that reads a file by name "
                        f"{allowed_text(READER_EXPERIMENTS)}; experiment '{experiment.name}' reads otherwise")


def _kernel_list(src: Source, doc: CommentedMap, files: dict[str, Path]) -> list[str]:
    items = src.sequence(doc, "kernels")
    if not items:
        raise src.error(src.value_line(doc, "kernels"), f"kernels is empty {allowed_text(sorted(files))}")
    names: list[str] = []
    for index, name in enumerate(items):
        line = src.item_line(items, index)
        if not isinstance(name, str):
            raise src.error(line, f"kernels entries must be kernel names, not {_kind(name)} {allowed_text(sorted(files))}")
        if name in names:
            raise src.error(line, f"kernel '{cut(name)}' is listed twice")
        if name not in files:
            raise src.error(line, unknown_text("kernel", name, sorted(files)))
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
            raise src.error(_base_line(kernel.path), unknown_text("base kernel", kernel.base, sorted(files)))
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
                                                      + (f" {allowed_text(allowed)}" if allowed else ""))
        result[name] = []
        for index, raw in enumerate(values):
            line = src.item_line(values, index)
            value = axis_value(src, node, name, raw, line)
            if value in result[name]:
                raise src.error(line, f"value '{cut(value)}' is listed twice for axis '{name}'")
            result[name].append(value)
    columns = math.prod(len(values) for values in result.values())
    if columns > MAX_COLUMNS:
        raise src.error(src.value_line(doc, "axes"), f"the axes make {columns} columns (at most {MAX_COLUMNS})")
    return result
