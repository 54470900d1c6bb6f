"""The project's own exceptions: each one becomes one line for the user, never a traceback."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1  # the command could not do its job (cache unusable, folder missing, ...)
    USAGE = 2  # bad arguments or a bad config
    SKIPPED = 3  # the command finished, but some files were skipped


class DupwatchError(Exception):
    """An error the user can act on; `main()` prints it as one line."""

    exit_code = ExitCode.ERROR


class CacheUnavailable(DupwatchError):
    """The cache's server cannot be reached, or the connection to it was lost: something that
    passes (a restart, a network outage), unlike wrong credentials or a missing database. A
    command still stops with one line; the watcher waits for the server and goes on."""

    def __init__(self, cache: str, reason: str, message: str | None = None) -> None:
        super().__init__(message or f"cache {cache}: unreachable ({reason})")
        self.cache = cache  # as shown: without a password
        self.reason = reason

    def waiting(self) -> str:
        """The watcher's line: it does not stop, so no advice, only what it waits for."""
        return f"cache {self.cache}: unreachable ({self.reason}); waiting for it"

    def __reduce__(self) -> tuple[type[CacheUnavailable], tuple[str, str, str]]:
        return (CacheUnavailable, (self.cache, self.reason, str(self)))


class ConfigError(DupwatchError):
    """A config value is wrong; the message starts with its dotted key."""

    exit_code = ExitCode.USAGE

    def __init__(self, key: str, problem: str, source: str | None = None) -> None:
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{key}: {problem}")
        self.key = key
        self.problem = problem


class UsageError(DupwatchError):
    exit_code = ExitCode.USAGE


class SkipFile(DupwatchError):
    """This one file cannot be processed; the caller logs it and goes on with the next."""

    def __init__(self, path: str, reason: str, lasting: bool = False, seen: tuple[int, int] | None = None,
                 told: bool = False) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
        # The bytes themselves are the trouble (a truncated JPEG, a text file named .jpg): the
        # same content fails again, so it is not read again until it changes. `seen` is the
        # (size, mtime_ns) of the content that failed, as the reader opened it.
        self.lasting = lasting
        self.seen = seen
        self.told = told  # remembered from an earlier run, and said then: not a warning again

    def __reduce__(self) -> tuple[type[SkipFile], tuple[str, str, bool, tuple[int, int] | None, bool]]:
        # Raised in worker processes: pickle with every argument, not the formatted message.
        return (SkipFile, (self.path, self.reason, self.lasting, self.seen, self.told))


def one_line(text: str, limit: int) -> str:
    """What a library says, on one line of at most `limit` characters: a message is for a log
    line or a skip reason, and a library's may span lines or quote whole structures."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"
