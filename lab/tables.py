"""Moved to lab/render/tables.py; kept so lab/pytest_plugin.py's `from lab.tables import …` still works."""
from .render.tables import context_for, spec_facts, spec_meta, write_tables  # noqa: F401
