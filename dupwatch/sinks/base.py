"""What every sink is: a name for its place in the outbox, and one way to send."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from dupwatch.record import Notice


class DeliveryError(Exception):
    """This delivery failed. `retry`: try again later (a target down); otherwise the notice is
    passed over with a warning (a sidecar for a photo that is gone)."""

    def __init__(self, reason: str, retry: bool = True) -> None:
        super().__init__(reason)
        self.retry = retry


@dataclass(frozen=True)
class Summary:
    """A burst of notices sent as one alert."""

    count: int
    first: Notice
    last: Notice


Alert = Notice | Summary


def last_id(item: Alert) -> int:
    return item.id if isinstance(item, Notice) else item.last.id


class Sink(Protocol):
    key: str  # its position in the store's outbox: "log", "apprise:3f2a…"
    label: str  # how the log names it (never a secret: no URL tokens)
    alerts: bool  # True: notices pass the burst rule first, and a Summary may be sent
    # True: a record of what was found, decided since or not. False: it tells someone or tags a
    # file, so a pair marked "not a duplicate" before it was delivered is passed over.
    records: bool

    def send(self, item: Alert) -> None:
        """Deliver one notice (or, for alerts, a summary); raise DeliveryError when it failed."""
