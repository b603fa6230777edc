"""bench/soak.py's judgement of repeated runs (pure)."""
import importlib.util
from pathlib import Path

SPEC = importlib.util.spec_from_file_location("soak", Path(__file__).parents[2] / "bench" / "soak.py")
soak = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(soak)


def test_flake_rate_counts_runs_that_differ_from_the_most_common_outcome():
    assert soak.flake_rate(["pass"] * 18 + ["fail:estale", "error"]) == ("pass", 2, 0.1)
    assert soak.flake_rate(["fail:estale"] * 20) == ("fail:estale", 0, 0.0)
    assert soak.flake_rate([]) == ("", 0, 0.0)
