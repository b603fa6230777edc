"""Experiments run in the lab, looked up by the name matrix.yaml gives (`experiment: name:`). Each one prepares
the export on the server and returns the `race.Scenario` that race.run plays on alice and bob."""
from __future__ import annotations

from . import gitrefs, rename

#: name in matrix.yaml → prepare(server) -> Scenario: the one list of experiments (lab/spec/ checks names against it)
EXPERIMENTS = {"rename": rename.prepare, "git-packed-refs": gitrefs.prepare}
#: the experiments whose read is a program reading one file by name, so the `reader` axis can replace it (tested
#: against each experiment's Scenario.read_file)
READER_EXPERIMENTS = ("rename",)
