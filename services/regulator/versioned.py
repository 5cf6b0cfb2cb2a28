"""Table values that count only once the batch that wrote them is committed: how the indicators'
changes of many keys (a day, a case, a worker, the counted id, the expected offsets), each a
record of its own in a changelog, take effect together or not at all, even across a crash
(docs/regulators.md, "A batch's changes at once").

A batch's writes carry its tag (the process's epoch, the batch's number) beside the value they
replace. Once every write of the batch is acknowledged by Kafka, the epoch's last committed batch
is set to it, in one record. A value reads as written when its batch is committed, and as the
value it replaced otherwise: a crash midway leaves writes whose batch never committed, and they
read as if never made. Each process takes a new epoch, recorded (and acknowledged) before its
first write, so no later batch can share a tag with a batch that died uncommitted.

Pure: the cells are mappings (faust tables in production, dictionaries in the tests).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

COMMITS = "commits"
"""The key of the commits table's one record: each epoch's last committed batch ("epochs"), and
what the last committed batch left to do once committed ("follow_up")."""
_TAG = "_batch"

Epochs = Mapping[str, int]


class Cells(Protocol):
    """A table as the versioned values need it."""

    def get(self, key: Any) -> Any: ...

    def __setitem__(self, key: Any, value: Any) -> None: ...


def effective(raw: Any, epochs: Epochs) -> Any:
    """The value a cell holds: as written when its batch is committed, else the one it replaced.
    A value written without a tag (before batches existed) is taken as it is."""
    if not (isinstance(raw, dict) and _TAG in raw):
        return raw
    epoch, batch = raw[_TAG]
    return raw["value"] if batch <= epochs.get(str(epoch), 0) else raw["before"]


def stamped(value: Any, before: Any, tag: tuple[str, int]) -> dict[str, Any]:
    """``value`` as batch ``tag`` writes it, with the value it replaces."""
    return {_TAG: list(tag), "value": value, "before": before}


def _packed(tag: tuple[str, int]) -> int:
    epoch, batch = tag
    return int(epoch) << 32 | batch


def _is_committed(packed: int, epochs: Epochs) -> bool:
    return packed & 0xFFFFFFFF <= epochs.get(str(packed >> 32), 0)


def next_epoch(epochs: Epochs) -> str:
    return str(max((int(epoch) for epoch in epochs), default=0) + 1)


@dataclass
class Batches:
    """The batches of one process: its epoch, the batch being written, and the commits table."""

    commits: Cells
    epoch: str = ""
    batch: int = 0

    def epochs(self) -> Epochs:
        epochs: Epochs = self._record().get("epochs", {})
        return epochs

    def follow_up(self) -> Any:
        """What the last committed batch left to do after its commit (None if nothing): done
        again by a process that may have ended before doing it."""
        return self._record().get("follow_up")

    def _record(self) -> dict[str, Any]:
        return self.commits.get(COMMITS) or {}

    def read(self, cells: Cells, key: Any) -> Any:
        return effective(cells.get(key), self.epochs())

    def write(self, cells: Cells, key: Any, value: Any) -> None:
        """Writes ``value`` as part of the open batch (it counts once the batch is committed)."""
        cells[key] = stamped(value, self.read(cells, key), (self.epoch, self.batch))

    def mark(self, cells: Cells, key: Any) -> None:
        """Marks ``key`` (a set's member, such as an id counted) as part of the open batch: the value
        is the batch's tag alone, packed in one integer (a set can hold millions of members)."""
        cells[key] = _packed((self.epoch, self.batch))

    def marked(self, cells: Cells, key: Any) -> bool:
        """Whether ``key`` was marked by a committed batch (or, as True, before batches existed)."""
        raw = cells.get(key)
        return raw is True or (type(raw) is int and _is_committed(raw, self.epochs()))

    def open_epoch(self) -> None:
        """Takes this process's epoch; its record must be acknowledged before the first write."""
        self.epoch = next_epoch(self.epochs())
        self.commits[COMMITS] = {**self._record(), "epochs": {**self.epochs(), self.epoch: 0}}
        self.batch = 1

    def abandon(self) -> None:
        """Gives up the epoch after a batch failed to commit: its writes may have landed, and a
        later batch of the epoch, once committed, would bring them into effect."""
        self.epoch, self.batch = "", 0

    def commit(self, follow_up: Any = None) -> None:
        """Marks the open batch committed (once all its writes are acknowledged), with what is
        left to do after it (``follow_up``), and opens the next."""
        self.commits[COMMITS] = {"epochs": {**self.epochs(), self.epoch: self.batch}, "follow_up": follow_up}
        self.batch += 1
