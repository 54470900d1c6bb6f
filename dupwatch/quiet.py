"""What decoder libraries say on stderr, caught per file and turned into one log line naming it.

Pillow warns through the `warnings` module; libtiff, libheif and LibRaw write straight to file
descriptor 2, where a service's log would show lines that name no file and no program. Around
each decode, warnings are recorded and fd 2 points at one temporary file (reused for the life of
the process), whose content is read back and logged at debug level with the file's path.

fd 2 is only redirected in a process with one thread: in a worker process, or a scan with one
worker. Another thread's log line written meanwhile would end up in the temporary file.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("dupwatch")

# What is read back of a library's chatter for one file: enough for its first lines.
KEEP = 4096

_spill: int | None = None  # the temporary file's descriptor, opened on first use


def _spill_fd() -> int:
    global _spill
    if _spill is None:
        fd, name = tempfile.mkstemp(prefix="dupwatch-stderr-")
        os.unlink(name)  # nothing left behind, whatever ends the process
        _spill = fd
    return _spill


@contextmanager
def quiet(path: str) -> Iterator[None]:
    """Decode `path` inside this: its libraries' messages become one debug line naming it."""
    redirect = threading.active_count() == 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if not redirect:
            try:
                yield
            finally:
                _say(path, [str(w.message) for w in caught])
            return
        spill = _spill_fd()
        sys.stderr.flush()
        saved = os.dup(2)
        os.ftruncate(spill, 0)
        os.lseek(spill, 0, os.SEEK_SET)
        os.dup2(spill, 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            text = os.pread(spill, KEEP, 0).decode(errors="replace")
            _say(path, [str(w.message) for w in caught] + text.splitlines())


def _say(path: str, lines: list[str]) -> None:
    said = [line.strip() for line in lines if line.strip()]
    if said:
        more = f" (and {len(said) - 1} more)" if len(said) > 1 else ""
        log.debug("%s: %s%s", path, said[0][:200], more)
