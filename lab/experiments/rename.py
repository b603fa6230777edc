"""The seed's experiment: alice holds test1.txt open and re-reads it with `cat`; bob runs
`mv -f test2.txt test1.txt`. A correct client reads "2 - New file" soon after; the buggy NFSv4.0 clients of 2018
kept reading "1 - Old file" or got ESTALE."""
from __future__ import annotations

from .. import nfs
from ..outcome import NEW_TEXT, OLD_TEXT
from ..remote import Remote
from .race import Scenario

FILES = {"test1.txt": OLD_TEXT, "test2.txt": NEW_TEXT}
SCENARIO = Scenario(name="rename", workdir=nfs.MOUNTPOINT, hold="test1.txt", read="cat test1.txt",
                    change="mv -f test2.txt test1.txt", old=OLD_TEXT, new=NEW_TEXT, stat="test1.txt",
                    bob_check="cat test1.txt", touch=tuple(FILES),
                    read_file="test1.txt")


def prepare(server: Remote) -> Scenario:
    """Fresh test1.txt and test2.txt in the export."""
    nfs.write_files(server, FILES)
    return SCENARIO
