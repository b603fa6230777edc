"""The specs: matrix.yaml and kernels/*.yaml, loaded, validated and expanded into cells.

This package owns the meaning of those files and their error messages (every mistake one line `FILE:LINE: …`).
Pure: nothing here but reading the files.

  source.py      reading YAML with line numbers, error texts, durations
  kernel.py      a kernel spec: its source kind and schema, its expectations
  experiment.py  the matrix's experiment: and timeouts: sections
  cells.py       Cell and the --cell filter
  matrix.py      the matrix: loading it with every kernel it names, expanding it into cells
"""
from __future__ import annotations

from ..errors import SpecError, display_path  # noqa: F401  (callers name them lab.spec.SpecError, …)
from ..timeouts import Timeouts
from .cells import Cell, parse_cell_filter
from .experiment import (DURATION_KEYS, EXPERIMENT_KEYS, MAX_REPEATS, TIMEOUT_KEYS, Experiment)
from .kernel import (ALTERNATIVE_KEYS, EXPECT_KEYS, KERNEL_KEYS, SOURCE_SCHEMAS, TREE_KEYS, VERDICTS, Expectation,
                     Kernel, ReleaseTree, SourceField, Tarball, Verdict, kernel_files, load_kernel)
from .matrix import (MATRIX_KEYS, MAX_COLUMNS, REQUIRED_MATRIX_KEYS, Matrix, find_kernels_dir, kernel_dirs,
                     kernel_lookup, load_matrix, load_with_bases)
from .source import MAX_DURATION, Source, parse_duration

__all__ = ["ALTERNATIVE_KEYS", "DURATION_KEYS", "EXPECT_KEYS", "EXPERIMENT_KEYS", "KERNEL_KEYS", "MATRIX_KEYS",
           "MAX_COLUMNS", "MAX_DURATION", "MAX_REPEATS", "REQUIRED_MATRIX_KEYS", "SOURCE_SCHEMAS", "TIMEOUT_KEYS",
           "TREE_KEYS", "VERDICTS", "Cell", "Expectation", "Experiment", "Kernel", "Matrix", "ReleaseTree", "Source",
           "SourceField", "SpecError", "Tarball", "Timeouts", "Verdict", "display_path", "find_kernels_dir",
           "kernel_dirs", "kernel_files", "kernel_lookup", "load_kernel", "load_matrix", "load_with_bases",
           "parse_cell_filter", "parse_duration"]
