"""What the lab reads back from libvirt's command-line tool: one parser per listing, so a change in virsh's output
format is mended in one place."""
from __future__ import annotations


def volume_names(vol_list: str) -> list[str]:
    """The volume names of `virsh -q vol-list POOL` (name, then path, one volume a line; blank lines skipped)."""
    return [line.split()[0] for line in vol_list.splitlines() if line.split()]
