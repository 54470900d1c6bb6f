"""What decoder libraries say on stderr, caught per file and turned into one log line naming it.

Pillow warns through the `warnings` module; libtiff, libheif and LibRaw write straight to file
descriptor 2, where a service's log would show lines that name no file and no program. Around
each decode, warnings are recorded and fd 2 points at one temporary file (reused for the life of
the process), whose content is read back and logged at debug level with the file's path.

Another thread of the process may log meanwhile (a scan with one worker decodes in the main
process): the log handlers that write to fd 2 are held locked while it points elsewhere, so such
a line waits for the decode instead of landing in the temporary file.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("dupwatch")

# What is read back of a library's chatter for one file: enough for its first lines.
KEEP = 4096

_spill: int | None = None  # the temporary file's descriptor, opened on first use; -1: none


def _spill_fd() -> int:
    global _spill
    if _spill is None:
        try:
            fd, name = tempfile.mkstemp(prefix="dupwatch-stderr-")
            os.unlink(name)  # nothing left behind, whatever ends the process
        except OSError:
            fd = -1  # no writable temporary folder: messages go to stderr as they would have
        _spill = fd
    return _spill


@contextmanager
def quiet(path: str) -> Iterator[None]:
    """Decode `path` inside this: its libraries' messages become one debug line naming it."""
    with warnings.catch_warnings(record=True) as caught, _stderr_handlers_held():
        warnings.simplefilter("always")
        spill = _spill_fd()
        if spill < 0:
            try:
                yield
            finally:
                _say(path, [str(w.message) for w in caught])
            return
        sys.stderr.flush()
        saved = os.dup(2)
        os.ftruncate(spill, 0)
        os.lseek(spill, 0, os.SEEK_SET)  # fd 2 shares this offset while it points here
        os.dup2(spill, 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            text = os.pread(spill, KEEP, 0).decode(errors="replace")
            _say(path, [str(w.message) for w in caught] + text.splitlines())


@contextmanager
def _stderr_handlers_held() -> Iterator[None]:
    held = [h for h in {*log.handlers, *logging.getLogger().handlers} if _on_fd2(h)]
    for handler in held:
        handler.acquire()
    try:
        yield
    finally:
        for handler in reversed(held):
            handler.release()


def _on_fd2(handler: logging.Handler) -> bool:
    try:
        return isinstance(handler, logging.StreamHandler) and handler.stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False


def _say(path: str, lines: list[str]) -> None:
    said = [line.strip() for line in lines if line.strip()]
    if said:
        more = f" (and {len(said) - 1} more)" if len(said) > 1 else ""
        log.debug("%s: %s%s", path, said[0][:200], more)
