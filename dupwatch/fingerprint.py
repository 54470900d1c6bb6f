"""Read a file once, hash its bytes, decode it once, and run every enabled method on that image.

This is the CPU-bound stage; `fingerprint_file` is what worker processes run, so it takes only
picklable arguments and returns a `Photo` or a `SkipFile`, never raising for a bad file.
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cache

from dupwatch.canvas import straightened
from dupwatch.decode import decode
from dupwatch.errors import SkipFile
from dupwatch.methods.base import Method, Options
from dupwatch.methods.registry import get_method
from dupwatch.record import FileStat, Photo


@dataclass(frozen=True)
class Plan:
    """Which methods to fingerprint with; picklable, so it can travel to worker processes."""

    methods: tuple[str, ...]
    options: Options = field(default_factory=Options)

    @property
    def instances(self) -> tuple[Method, ...]:
        return instances(self.methods, self.options)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(m.key for m in self.instances)

    @property
    def signature(self) -> str:
        """Names the set of fingerprints a file has; a different plan means fingerprint again."""
        return ",".join(sorted(set(self.keys)))


@cache
def instances(names: tuple[str, ...], options: Options = Options()) -> tuple[Method, ...]:  # noqa: B008
    return tuple(get_method(name, options=options) for name in names)


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
    methods = plan.instances
    grey = not any(m.needs_colour for m in methods)
    size = max(m.needs_size for m in methods)
    decoded = decode(path, data, size, grey)
    image, turned = straightened(decoded.image, size)  # a photo turned onto a canvas: the photo, upright
    return Photo(
        path=path,
        stat=stat,
        content_hash=hashlib.sha256(data).digest(),
        width=decoded.width,
        height=decoded.height,
        turned=turned,
        fingerprints={m.key: m.to_bytes(m.fingerprint(image)) for m in methods if not m.batched},
        pending={m.key: m.prepare(image) for m in methods if m.batched},
    )


def complete(photos: Sequence[Photo], plan: Plan) -> list[Photo]:
    """Run the batched methods (the CNN) over many photos at once, in this process."""
    done = {m.key: m for m in plan.instances if m.batched}
    if not done or not photos or not any(p.pending for p in photos):
        return list(photos)
    results = [dict(p.fingerprints) for p in photos]
    for key, method in done.items():
        vectors = method.fingerprint_batch([p.pending[key] for p in photos])
        for fingerprints, vector in zip(results, vectors, strict=True):
            fingerprints[key] = method.to_bytes(vector)
    return [replace(p, fingerprints=f, pending={}) for p, f in zip(photos, results, strict=True)]


def fingerprint_now(path: str, plan: Plan) -> Photo:
    """One file, fully fingerprinted here and now (for query, compare and stale candidates)."""
    result = fingerprint_file(path, plan)
    if isinstance(result, SkipFile):
        raise result
    return complete([result], plan)[0]


def fingerprint_files(paths: Sequence[str], plan: Plan) -> list[Photo | SkipFile]:
    """A chunk of files, batched methods included: what a worker runs when the CNN is on.

    Each worker then decodes a chunk and embeds it with one torch thread, and the two workers
    take turns on the cores by themselves; decoding in workers beside a multi-threaded model in
    the main process left both fighting for the same two cores.
    """
    results = [fingerprint_file(path, plan) for path in paths]
    done = iter(complete([r for r in results if isinstance(r, Photo)], plan))
    return [r if isinstance(r, SkipFile) else next(done) for r in results]


def fingerprint_file(path: str, plan: Plan) -> Photo | SkipFile:
    try:
        data, stat = read(path)
        return fingerprint_bytes(path, data, stat, plan)
    except SkipFile as skip:
        return skip
