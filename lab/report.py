"""Moved to lab/render/; kept so `from lab.report import render_terminal` (lab/pytest_plugin.py) still works."""
from .render import FAIL_ON, FORMATS, fail_on_hits, render, render_terminal, rerun_lines  # noqa: F401
