"""nfslab: real-VM compatibility matrix for the Linux NFS client rename-over bug (be189f7e7f03)."""

#: the one place of the version; pyproject.toml reads it (dynamic = ["version"])
__version__ = "0.1.0"
