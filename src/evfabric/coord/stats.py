"""Run statistics, in the spirit of the ROSS summary, also as one CSV row."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field, fields

__all__ = ["Stats"]


@dataclass
class Stats:
    """Counters of one timed run, summed over processing elements.

    ``processed`` counts every handler call, ``committed`` those that were not undone, and
    ``rolled_back`` those undone by a rollback (processed = committed + rolled_back).
    ``remote`` counts committed events sent to a task on another processing element.
    ``rounds`` is the number of synchronisation rounds: windows (conservative, windows), null-
    message rounds (conservative, null) or GVT rounds (optimistic). ``sync_seconds`` is the
    wall time spent exchanging and waiting, summed over processing elements.
    """

    mode: str = "sequential"
    placement: str = "inline"
    workers: int = 1
    processed: int = 0
    committed: int = 0
    rolled_back: int = 0
    anti_messages: int = 0
    remote: int = 0
    null_messages: int = 0
    rounds: int = 0
    wall_seconds: float = 0.0
    sync_seconds: float = 0.0
    events_per_task: list[int] = field(default_factory=list, repr=False)

    @property
    def efficiency(self) -> float:
        """1 - rolled_back / committed (ROSS's definition; 1.0 without rollbacks)."""
        return 1.0 - self.rolled_back / self.committed if self.committed else 1.0

    @property
    def remote_fraction(self) -> float:
        """Share of committed events that crossed processing elements."""
        return self.remote / self.committed if self.committed else 0.0

    @property
    def event_rate(self) -> float:
        """Committed events per wall-clock second."""
        return self.committed / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def as_row(self) -> dict[str, object]:
        """Every scalar counter and derived figure, by name."""
        row = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "events_per_task"}
        row.update(efficiency=self.efficiency, remote_fraction=self.remote_fraction, event_rate=self.event_rate)
        return row

    def csv_header(self) -> str:
        """The CSV header line matching :meth:`csv_row`."""
        return ",".join(self.as_row())

    def csv_row(self) -> str:
        """The statistics as one CSV line (no header)."""
        buf = io.StringIO()
        csv.writer(buf, lineterminator="").writerow(self.as_row().values())
        return buf.getvalue()

    def summary(self) -> str:
        """A ROSS-like human summary."""
        r = self.as_row()
        lines = [
            f"mode {self.mode} ({self.placement}, {self.workers} worker(s))",
            f"  events processed   {self.processed:>14,}",
            f"  events committed   {self.committed:>14,}",
            f"  events rolled back {self.rolled_back:>14,}",
            f"  anti-messages      {self.anti_messages:>14,}",
            f"  efficiency         {100 * self.efficiency:>13.2f}%",
            f"  remote events      {100 * self.remote_fraction:>13.2f}%",
            f"  null messages      {self.null_messages:>14,}",
            f"  sync rounds        {self.rounds:>14,}",
            f"  event rate         {r['event_rate']:>14,.0f} /s",
            f"  wall time          {self.wall_seconds:>14.3f} s",
            f"  time in sync       {self.sync_seconds:>14.3f} s (summed over workers)",
        ]
        return "\n".join(lines)

    def merge(self, other: Stats) -> None:
        """Add another processing element's counters into this one."""
        for name in ("processed", "committed", "rolled_back", "anti_messages", "remote", "null_messages"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.sync_seconds += other.sync_seconds
        self.rounds = max(self.rounds, other.rounds)

    def to_dict(self) -> dict[str, object]:
        """All fields (for pickling across processes or JSON)."""
        return asdict(self)
