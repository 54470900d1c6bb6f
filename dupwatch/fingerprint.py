"""Read a file once, hash its bytes, decode it once, and run every enabled method on that image.

This is the CPU-bound stage; `fingerprint_file` is what worker processes run, so it takes only
picklable arguments and returns a `Photo` or a `SkipFile`, never raising for a bad file.
"""

from __future__ import annotations

import errno
import hashlib
import os
from dataclasses import dataclass
from functools import cache

from dupwatch.decode import decode
from dupwatch.errors import SkipFile
from dupwatch.methods.base import Method
from dupwatch.methods.registry import get_method
from dupwatch.record import FileStat, Photo


@dataclass(frozen=True)
class Plan:
    """Which methods to fingerprint with; picklable, so it can travel to worker processes."""

    methods: tuple[str, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(m.key for m in instances(self.methods))

    @property
    def signature(self) -> str:
        """Names the set of fingerprints a file has; a different plan means fingerprint again."""
        return ",".join(sorted(set(self.keys)))


@cache
def instances(names: tuple[str, ...]) -> tuple[Method, ...]:
    return tuple(get_method(name) for name in names)


def read(path: str) -> tuple[bytes, FileStat]:
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            data = f.read()
    except FileNotFoundError:
        raise SkipFile(path, "vanished before it could be read") from None
    except PermissionError:
        raise SkipFile(path, "permission denied") from None
    except IsADirectoryError:
        raise SkipFile(path, "is a directory") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SkipFile(path, "symlink loop") from None
        raise SkipFile(path, f"cannot read: {exc.strerror or exc}") from None
    return data, FileStat.of(st)


def fingerprint_bytes(path: str, data: bytes, stat: FileStat, plan: Plan) -> Photo:
    methods = instances(plan.methods)
    grey = not any(m.needs_colour for m in methods)
    decoded = decode(path, data, max(m.needs_size for m in methods), grey)
    return Photo(
        path=path,
        stat=stat,
        content_hash=hashlib.sha256(data).digest(),
        width=decoded.width,
        height=decoded.height,
        fingerprints={m.key: m.to_bytes(m.fingerprint(decoded.image)) for m in methods},
    )


def fingerprint_file(path: str, plan: Plan) -> Photo | SkipFile:
    try:
        data, stat = read(path)
        return fingerprint_bytes(path, data, stat, plan)
    except SkipFile as skip:
        return skip
