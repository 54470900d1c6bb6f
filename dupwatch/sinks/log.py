"""The notice log: one JSON line per notice, rotated by size, read back by `dupwatch notices`.

Only the process that holds the outbox (see `outbox.py`) writes it, so rotation needs no lock.
A notice is delivered at least once: after a kill between a write and its position being
saved, the same notice is written again at the next start, and `read` keeps one line per id.
A name that is not UTF-8 is written with its bytes beside it (`report.json_line`) and read back
as it is on disk.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

from dupwatch.config import Config
from dupwatch.errors import DupwatchError
from dupwatch.record import Notice
from dupwatch.report import json_line, named
from dupwatch.sinks.base import Alert, DeliveryError

log = logging.getLogger("dupwatch")


class NoticeLog:
    key = "log"
    alerts = False
    records = True

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path, self.max_bytes, self.backups = path, max_bytes, backups
        self.label = f"notices.log ({path})"

    @classmethod
    def configured(cls, config: Config) -> list[NoticeLog]:
        log = config.notices.log
        return [cls(log.resolved(), log.max_bytes, log.backups)] if log.enabled else []

    def send(self, item: Alert) -> None:
        assert isinstance(item, Notice)
        line = (json_line(item.to_json()) + "\n").encode("ascii")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                size = 0
            if size and size + len(line) > self.max_bytes:
                self._rotate()
            # Opened for each line: a log moved away by hand (or logrotate) is simply made anew.
            with self.path.open("ab") as out:
                out.write(line)
        except OSError as exc:
            raise DeliveryError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def _rotate(self) -> None:
        """notices.jsonl → .1 → .2 …; the oldest beyond `backups` is dropped."""
        for n in range(self.backups - 1, 0, -1):
            older = rotated(self.path, n)
            if older.exists():
                older.replace(rotated(self.path, n + 1))
        self.path.replace(rotated(self.path, 1))


def rotated(path: Path, n: int) -> Path:
    return path.with_name(f"{path.name}.{n}")


def read(path: Path, since: float | None = None) -> Iterator[Notice]:
    """Every notice in the log and its rotated files, oldest first, each once."""
    files = [p for p in sorted(path.parent.glob(f"{path.name}.*"), key=_generation, reverse=True)
             if _generation(p) > 0]
    seen: set[int] = set()
    for file in [*files, path]:
        try:
            text = file.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            continue  # rotated meanwhile
        except OSError as exc:
            raise DupwatchError(f"cannot read the notice log {file}: {exc.strerror or exc}") from None
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                notice = Notice.from_json(named(json.loads(line)))
            except (ValueError, KeyError, TypeError):
                # A line cut short by a full disk, or edited by hand: the rest still counts.
                log.warning("%s:%d: not a notice; passed over", file, number)
                continue
            if notice.id in seen or (since is not None and notice.found_at < since):
                continue
            seen.add(notice.id)
            yield notice


def _generation(path: Path) -> int:
    suffix = path.name.rsplit(".", 1)[-1]
    return int(suffix) if suffix.isdigit() else 0
