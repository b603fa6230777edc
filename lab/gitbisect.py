"""Moved to lab/bisect/git.py; kept so `from lab.gitbisect import Repo` (lab/probes.py) still works."""
from .bisect.git import GitError, Repo, bisect_commits  # noqa: F401
