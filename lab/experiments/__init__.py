"""Experiments run in the lab, looked up by the name matrix.yaml gives (`experiment: name:`). Each one prepares
the export on the server and returns the `race.Scenario` that race.run plays on alice and bob."""
from __future__ import annotations

from . import gitrefs, rename

#: name in matrix.yaml → prepare(server) -> Scenario; spec.EXPERIMENTS lists the same names (tested)
EXPERIMENTS = {"rename": rename.prepare, "git-packed-refs": gitrefs.prepare}
