"""The compatibility table: result records in, Markdown / HTML / JSON / JUnit / a rich table out.

Rows are kernels, columns are axis combinations. A cell adds up its runs (lab/aggregate.py): how many agreed, the
verdict's summary with the spread of its figures (how long stale data lasted, ESTALE, whether `ls` cleared it), and
how it compares with what history expects: a known failure is not news, a regression, an unexpected pass or a
flaky cell is. Errors and skips are the lab's business and are never counted as a kernel's pass or fail. Every
format states the pass criterion in one line, says what the report is in its title (kernels × cells, date, runs a
cell), and gives every cell that did not pass the command that reruns it alone. Rendered against a baseline run
(lab/compare.py), the cells whose verdict changed are marked. The HTML page is html.py.

Pure and deterministic — no clock, no I/O, no working directory: whatever a table depends on besides the records
and run.json comes in a Context — so rendered tables can be checked against golden files.

  context.py     Context: what a table depends on besides the records (specs, a baseline, the reader's place)
  grid.py        the grid of cells, categories, legend, pass criterion, --fail-on
  provenance.py  the heading and run facts, rerun commands, the commits the specs name
  timelines.py   a cell's runs as text: timeline, system calls, where an error happened, conditions
  formats.py     render(): Markdown, JSON, JUnit (and HTML through html.py)
  html.py        the HTML page (lab/templates/report.html.j2), timeplot.py its SVG
  terminal.py    the rich table of `lab run` and the pytest summary
  tables.py      a run directory's tables: reads run.json and the specs, writes every format (the one with I/O)
"""

from __future__ import annotations

from .context import MACHINE_ROOTS, Context, hide_machine_paths, shorten_paths
from .grid import (CATEGORIES, CHANGED, FAIL_ON, FORMATS, LEGEND_EXTRA, MISMATCHES, NOT_RUN, RERUN, UPSTREAM_COMMIT,
                   Grid, anchor, build_grid, category, cell_text, column_label, counts, criterion_line, fail_on_hits,
                   in_axis_order, legend, pass_within, runs_a_cell, summary_line)
from .provenance import (commit_parts, duration_text, heading, is_default_matrix, kernel_facts, matrix_text, meta_items,
                         meta_line, rerun_argv, rerun_command, rerun_lines)
from .timelines import (conditions_text, failed_at_line, runs_of, syscall_line, timeline_runs, timeline_text,
                        trace_lines)
from .formats import render
from .terminal import TERMINAL_STYLES, render_terminal

__all__ = ["CATEGORIES", "CHANGED", "FAIL_ON", "FORMATS", "LEGEND_EXTRA", "MACHINE_ROOTS", "MISMATCHES", "NOT_RUN",
           "RERUN", "TERMINAL_STYLES", "UPSTREAM_COMMIT", "Context", "Grid", "anchor", "build_grid", "category",
           "cell_text", "column_label", "commit_parts", "conditions_text", "counts", "criterion_line", "duration_text",
           "fail_on_hits", "failed_at_line", "heading", "hide_machine_paths", "in_axis_order", "is_default_matrix",
           "kernel_facts", "legend", "matrix_text", "meta_items", "meta_line", "pass_within", "render",
           "render_terminal", "rerun_argv", "rerun_command", "rerun_lines", "runs_a_cell", "runs_of", "shorten_paths",
           "summary_line", "syscall_line", "timeline_runs", "timeline_text", "trace_lines"]
