"""The notice log: one JSON line per notice, rotated by size, read back by `dupwatch notices`.

Only the process that holds the outbox (see `outbox.py`) writes it, so rotation needs no lock.
A notice is delivered at least once: after a kill between a write and its position being
saved, the same notice is written again at the next start, and `read` keeps one line per id.
A name that is not UTF-8 is written with its bytes beside it (`report.json_line`) and read back
as it is on disk.

Each cache numbers its own notices, so each line also names its cache (`cache`, a digest of the
cache's path or URL, `LogSinkConfig.cache_identity`), and `read` passes over lines of another
cache: a log path set in two configs, or the old shared `notices.jsonl`, holds several caches'
notices with the same ids. Lines written before that field existed are shown to every cache:
which cache wrote them is no longer known, and hiding a user's history would be worse than
showing a stranger's line.
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

    def __init__(self, path: Path, max_bytes: int, backups: int, cache: str | None = None) -> None:
        self.path, self.max_bytes, self.backups, self.cache = path, max_bytes, backups, cache
        self.label = f"notices.log ({path})"

    @classmethod
    def configured(cls, config: Config) -> list[NoticeLog]:
        log = config.notices.log
        if not log.enabled:
            return []
        return [cls(log.resolved(config.cache), log.max_bytes, log.backups, log.cache_identity(config.cache))]

    def send(self, item: Alert) -> None:
        assert isinstance(item, Notice)
        record = item.to_json() if self.cache is None else {**item.to_json(), "cache": self.cache}
        line = (json_line(record) + "\n").encode("ascii")
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


def configured_path(config: Config) -> Path:
    """Where `config`'s notices are logged (and read back)."""
    return config.notices.log.resolved(config.cache)


def read_configured(config: Config, since: float | None = None) -> Iterator[Notice]:
    """The notices of `config`'s cache, from its log."""
    log = config.notices.log
    return read(log.resolved(config.cache), since, log.cache_identity(config.cache))


def read(path: Path, since: float | None = None, cache: str | None = None) -> Iterator[Notice]:
    """Every notice in the log and its rotated files, oldest first, each once; with `cache`,
    only that cache's (and those of lines that name no cache)."""
    files = [p for p in sorted(path.parent.glob(f"{path.name}.*"), key=_generation, reverse=True)
             if _generation(p) > 0]
    seen: set[tuple[str | None, int]] = set()
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
                record = named(json.loads(line))
                notice = Notice.from_json(record)
                owner = record.get("cache")
            except (ValueError, KeyError, TypeError):
                # A line cut short by a full disk, or edited by hand: the rest still counts.
                log.warning("%s:%d: not a notice; passed over", file, number)
                continue
            if cache is not None and owner is not None and owner != cache:
                continue  # another cache's notice: its id says nothing here
            # Keyed by cache too: an old line that names none may share an id with a new one.
            key = (None if owner is None else str(owner), notice.id)
            if key in seen or (since is not None and notice.found_at < since):
                continue
            seen.add(key)
            yield notice


def _generation(path: Path) -> int:
    suffix = path.name.rsplit(".", 1)[-1]
    return int(suffix) if suffix.isdigit() else 0
