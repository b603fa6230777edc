"""nfslab: real-VM compatibility matrix for the Linux NFS client rename-over bug (be189f7e7f03)."""
