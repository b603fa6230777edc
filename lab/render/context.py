"""What a table depends on besides the records and run.json, passed in so rendering stays pure: the Context (kernel
facts, a baseline's comparison, where the reader stands); and the shortening of this machine's paths."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..compare import Comparison


_ABSOLUTE = re.compile(r"(?<![\w.:/~-])/(?:[^\s/'\"`()|<>]+/)*([^\s/'\"`()|<>]+)/?")
#: roots of paths that belong to the machine that ran a table, not to the lab or the guests (/srv/nfs, /proc/…)
MACHINE_ROOTS = ("/var/", "/tmp/", "/work/", "/root/", "/home/", "/opt/", "/mnt/", "/media/", "/run/", "/Users/")


def shorten_paths(text: str) -> str:
    """Every absolute path as `…/` and its last part: `--runs /work/runs/check1` → `--runs …/check1`."""
    return _ABSOLUTE.sub(lambda m: f"…/{m.group(1)}", text)


def hide_machine_paths(text: str) -> str:
    """shorten_paths for the paths under MACHINE_ROOTS only, so a guest's `/srv/nfs` stays what it is."""
    return _ABSOLUTE.sub(lambda m: f"…/{m.group(1)}" if m.group(0).startswith(MACHINE_ROOTS) else m.group(0), text)


@dataclass(frozen=True)
class Context:
    """What a table is rendered with besides the records and run.json, all handed in (the renderer looks nothing
    up): the kernel specs' titles and notes, a comparison with a baseline run, the directory the rerun commands are
    written for, and whether the table goes into committed docs (then: no links into the run directory, which is
    not committed, and no paths of the machine that ran it)."""

    specs: dict[str, dict] = field(default_factory=dict)   # kernel name → {"title": …, "notes": …}
    baseline: Comparison | None = None
    cwd: str | None = None
    for_docs: bool = False
    run_dir: str | None = None     # the run directory as the caller named it: where a matrix kept in it is now

    @property
    def links(self) -> bool:
        return not self.for_docs

    def public(self, text: str) -> str:
        """Free text (an error's detail, a skip's reason) as the table shows it: for docs, without machine paths."""
        return hide_machine_paths(text) if self.for_docs else text

    def changes(self) -> dict[str, dict]:
        """cell id → its entry in the comparison, for the cells whose verdict changed (pass ↔ fail)."""
        return {c["cell"]: c for c in (self.baseline.changes if self.baseline else [])}
