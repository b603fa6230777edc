"""nfslab's benchmark (issue 7): `python bench/lab_bench.py` measures the lab against a stock baseline side by side."""
