"""nfslab's own tests: tests/unit (pure, no VMs) and tests/lab (real VMs, marked `lab`)."""
from pathlib import Path

#: the checkout the tests run from (ci/, bench/, README.md); nfslab's own data files live in the package
CHECKOUT = Path(__file__).resolve().parent.parent
