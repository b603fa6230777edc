"""`lab`: the command line, one module per command group (the console script is lab.cli:main).

  common.py    the app, the output console, shared options, Usage, checks of paths given on the command line
  setup.py     list, init, setup, doctor, box build
  run.py       run, table, merge
  machines.py  clean, status, ssh, down
  bisect.py    bisect versions, bisect git, bisect-step
  ci.py        compare, fetch-baseline
  main.py      main(): every group registered, every failure one line and an exit code
"""
from .common import app
from .main import main

__all__ = ["app", "main"]
