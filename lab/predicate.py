"""Moved to lab/bisect/predicate.py; kept so `from lab.predicate import Predicate` (lab/probes.py) still works."""
from .bisect.predicate import Predicate, figures, parse  # noqa: F401
