"""The matrix axes: what each axis value means for the lab, as a registry looked up by the name used in YAML.

An axis turns one value from matrix.yaml (`vers: "4.0"`, `leases: on`) into what the lab must do before a cell runs,
recorded in a `CellSetup` (mount options, server sysctls, client behaviour). The runner only applies a CellSetup; it
never knows which axes exist, so adding an axis is one class here plus `@register`, nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .readers import DEFAULT as DEFAULT_READER, READERS

ON_OFF = ("on", "off")


@dataclass
class CellSetup:
    """Everything a cell's axis values ask of the lab, in the lab's terms."""

    mount_options: list[str] = field(default_factory=list)      # e.g. ["vers=4.0", "actimeo=0"]
    server_sysctls: dict[str, str] = field(default_factory=dict)  # e.g. {"fs.leases-enable": "1"}
    alice_stat_before_open: bool = False
    alice_reader: str = DEFAULT_READER    # lab/readers.py: the program alice reads the file with


class Axis:
    """One axis: its name, the values it allows (None = free-form, checked by `validate`) and its effect."""

    name: str = ""
    allowed: tuple[str, ...] | None = None
    what: str = "value"  # how an error names a bad value: "unknown mount option 'vers=4.3'"

    def normalise(self, raw: object) -> str:
        """YAML gives ints, floats and (YAML 1.1 `on`/`off`) booleans; cells compare plain strings."""
        if isinstance(raw, bool):
            return "on" if raw else "off"
        return str(raw)

    def describe(self, value: str) -> str:
        return f"{self.name}={value}"

    def validate(self, value: str) -> str | None:
        """None if the value is usable, else an error text naming the allowed values."""
        if self.allowed is None or value in self.allowed:
            return None
        return f"unknown {self.what} '{self.describe(value)}' (allowed: {', '.join(self.allowed)})"

    def apply(self, value: str, setup: CellSetup) -> None:
        raise NotImplementedError


AXES: dict[str, Axis] = {}


def register(cls: type[Axis]) -> type[Axis]:
    """Class decorator: make the axis known by its YAML name."""
    AXES[cls.name] = cls()
    return cls


def axis(name: str) -> Axis | None:
    return AXES.get(name)


def axis_names() -> list[str]:
    return sorted(AXES)


class OnOffAxis(Axis):
    """A switch; YAML 1.1 reads `on`/`off` as booleans, so true/false are accepted and normalised too."""

    allowed = ON_OFF

    def normalise(self, raw: object) -> str:
        text = super().normalise(raw).lower()
        return {"true": "on", "false": "off", "yes": "on", "no": "off"}.get(text, text)

    def describe(self, value: str) -> str:
        return value


@register
class Vers(Axis):
    """The NFS protocol version the clients mount with: the seed bug is in 4.0 only."""

    name = "vers"
    allowed = ("3", "4.0", "4.1", "4.2")
    what = "mount option"

    def apply(self, value: str, setup: CellSetup) -> None:
        setup.mount_options.append(f"vers={value}")


@register
class Leases(OnOffAxis):
    """The server's /proc/sys/fs/leases-enable: it decides whether nfsd hands out delegations."""

    name = "leases"
    what = "leases switch"

    def apply(self, value: str, setup: CellSetup) -> None:
        setup.server_sysctls["fs.leases-enable"] = "1" if value == "on" else "0"


class SecondsOption(Axis):
    """A mount option that takes whole seconds."""

    what = "mount option"

    def validate(self, value: str) -> str | None:
        if value.isdigit():
            return None
        return f"bad mount option '{self.name}={value}' (allowed: a whole number of seconds >= 0)"

    def apply(self, value: str, setup: CellSetup) -> None:
        setup.mount_options.append(f"{self.name}={value}")


@register
class Actimeo(SecondsOption):
    """Attribute cache timeout on the clients (all four ac*): a short one may hide stale data, which is worth
    measuring."""

    name = "actimeo"


@register
class Acdirmin(SecondsOption):
    """The shortest time the clients cache a directory's attributes: the vers=4.1 windows end when alice's cached
    attributes of the directory expire, which starts at acdirmin (race.py's Timing). Given with actimeo, the
    option later in the list wins (the kernel parses them in order): axes apply in the matrix's order."""

    name = "acdirmin"


@register
class LookupCache(Axis):
    """lookupcache=all|positive|none: how far the clients trust cached name lookups. `none` revalidates every
    name on every open (a LOOKUP or GETATTR per open), the documented cure for rename races, at a cost in calls."""

    name = "lookupcache"
    allowed = ("all", "positive", "none")
    what = "mount option"

    def apply(self, value: str, setup: CellSetup) -> None:
        setup.mount_options.append(f"lookupcache={value}")


@register
class StatBeforeOpen(OnOffAxis):
    """Alice stats the file before each open: a fresh GETATTR/LOOKUP may be what lets a client notice the rename."""

    name = "stat_before_open"
    what = "stat_before_open switch"

    def apply(self, value: str, setup: CellSetup) -> None:
        setup.alice_stat_before_open = value == "on"


@register
class Reader(Axis):
    """The program alice reads the file with (lab/readers.py): the symptom of a stale client depends on the calls
    after open(2). With stat_before_open on, the stat is its own command *before* the reader, so the reader's
    calls (and its strace) are the same either way. Only experiments that read a file by name take it (rename)."""

    name = "reader"
    allowed = tuple(READERS)
    what = "reader"

    def apply(self, value: str, setup: CellSetup) -> None:
        setup.alice_reader = value


def cell_setup(params: dict[str, str]) -> CellSetup:
    """What the lab must do for one cell; params come from a validated matrix, so names are known axes."""
    setup = CellSetup()
    for name, value in params.items():
        handler = AXES.get(name)
        if handler is None:
            raise KeyError(f"unknown axis {name!r} (allowed: {', '.join(axis_names())})")
        handler.apply(value, setup)
    return setup
