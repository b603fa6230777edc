"""The table as a rich Table, for the pytest terminal summary and `lab run`'s end."""
from __future__ import annotations

from pathlib import PurePosixPath

from rich.table import Table
from rich.text import Text

from ..results import ResultRecord
from .context import Context
from .grid import CHANGED, build_grid, category, cell_text, criterion_line, summary_line


TERMINAL_STYLES = {"pass": "green", "expected-fail": "yellow", "regression": "bold red",
                   "unexpected-pass": "bold blue", "no-history": "red", "flaky": "bold yellow", "error": "magenta", "skip": "dim"}


def render_terminal(records: list[ResultRecord], title: str = "", meta: dict | None = None,
                    context: Context | None = None) -> Table:
    """The same table for the pytest terminal summary and the CLI (rich does the layout and colours). Every text
    goes in as a `Text`: kernel names, axis values and error details are never read as rich markup."""
    context = context or Context()
    grid = build_grid(records, meta)
    cells = grid.results()
    changes = context.changes()
    notes = [criterion_line(cells, meta or {}), summary_line(cells)]
    if grid.unrun:
        notes.append(f"not run: {', '.join(grid.unrun)}")
    if context.baseline:
        notes.append(f"{CHANGED} changed since the baseline {PurePosixPath(context.baseline.baseline).name}: "
                     f"{len(changes)} cell{'s' if len(changes) != 1 else ''}")
    table = Table(title=Text(title, style="table.title") if title else None, show_lines=True,
                  caption=Text("\n".join(notes), style="table.caption"))
    table.add_column(Text("kernel"), style="bold", no_wrap=True)
    for column in grid.columns:
        table.add_column(Text(column))
    for row in grid.rows:
        texts = []
        for column in grid.columns:
            cell = grid.get(row, column)
            text = Text(cell_text(cell), style=TERMINAL_STYLES[category(cell)] if cell else "dim")
            if cell and cell.cell_id in changes:
                text = Text.assemble((f"{CHANGED} ", "bold reverse"), text)
            texts.append(text)
        table.add_row(Text(row), *texts)
    return table
