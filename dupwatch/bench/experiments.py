"""The article's three experiments on real photos: speed and accuracy, robustness, SciPy or NumPy.

The originals are the gallery and every transformed variant of an original is a query. As in
the article, each image is read, decoded upright, converted to RGB and resized to a fixed size
once; every method then fingerprints that image. A query is a hit when its own original is among
the `top` (3) gallery photos its method scores highest. Ties count against the query: a method
that gives several photos the same score (a 64-bit hash often does) earns no luck from the
order of the gallery.

Time per pair is what deciding one pair from two files costs: reading and resizing both images,
fingerprinting both, and comparing them. Model loading is left out (it is paid once a process).
Wall-clock seconds are noisy on a shared machine, so CPU seconds (all threads) are kept too.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
from PIL import Image

from dupwatch.bench.variants import TRANSFORMS, write_variants
from dupwatch.decode import decode
from dupwatch.errors import DupwatchError, SkipFile
from dupwatch.fingerprint import read
from dupwatch.methods.base import Method, Options
from dupwatch.methods.euclidean import Euclidean
from dupwatch.methods.registry import get_method

SIZE = 256  # the fixed size every image is resized to before any method sees it
TOP = 3
NORM_CALLS = 2300  # the article's count of repeated distance calculations
NORM_PHOTOS = 8  # originals kept at full SIZE for the SciPy/NumPy comparison

T = TypeVar("T")


class Progress(Protocol):
    """Wraps an iterable in a progress bar (or not); total and description are for the bar."""

    def __call__(self, items: Iterable[T], total: int, description: str) -> Iterable[T]: ...


def no_progress(items: Iterable[T], total: int, description: str) -> Iterable[T]:
    return items


@dataclass
class Clock:
    """Wall-clock and CPU seconds (every thread of this process) spent inside `timing()`."""

    wall: float = 0.0
    cpu: float = 0.0
    count: int = 0

    @contextmanager
    def timing(self, count: int = 1) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall += time.perf_counter() - wall
            self.cpu += time.process_time() - cpu
            self.count += count

    def per_item(self) -> tuple[float, float]:
        n = max(1, self.count)
        return self.wall / n, self.cpu / n


@dataclass(frozen=True)
class MethodResult:
    method: str
    accuracy: float  # share of all queries whose original is among the top 3
    queries: int
    seconds_per_pair: float  # 2 × (load + fingerprint) + compare, wall clock
    method_seconds_per_pair: float  # 2 × fingerprint + compare: the method's own part of it
    cpu_seconds_per_pair: float  # seconds_per_pair in CPU seconds
    fingerprint_ms: float  # per image, from the resized image
    compare_us: float  # per pair, as compare_many scores one query against the gallery
    transforms: dict[str, float]  # accuracy per transform


@dataclass(frozen=True)
class NormResult:
    length: int  # of each vector
    calls: int
    scipy_seconds: float  # for all calls, wall clock, best of 3 rounds
    numpy_seconds: float
    scipy_cpu_seconds: float  # CPU seconds of that round, every thread (BLAS may use several)
    numpy_cpu_seconds: float
    largest_difference: float  # between the two functions' answers


@dataclass
class Results:
    photos: int
    transforms: list[str]
    size: int
    top: int
    load_ms: float  # read + decode + RGB + resize, per image, shared by every method
    methods: list[MethodResult] = field(default_factory=list)
    norms: list[NormResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: list[SkipFile] = field(default_factory=list)


def load(path: str, size: int = SIZE) -> Image.Image:
    """Read, decode upright, RGB, resized to size×size: the article's preprocessing."""
    data, _ = read(path)
    image = decode(path, data, size).image.convert("RGB")
    return image.resize((size, size), Image.Resampling.BILINEAR)


class _Fingerprinter:
    """Fingerprints of every image for one stored key (cnn and cnn-euclidean share theirs)."""

    def __init__(self, method: Method) -> None:
        self.method = method
        self.values: list[np.ndarray] = []
        self.clock = Clock()
        if method.batched:  # load the model now, outside the timing
            method.fingerprint_batch([method.prepare(Image.new("RGB", (SIZE, SIZE)))])

    def add(self, images: Sequence[Image.Image]) -> None:
        m = self.method
        with self.clock.timing(len(images)):
            if m.batched:
                self.values += m.fingerprint_batch([m.prepare(image) for image in images])
            else:
                self.values += [m.fingerprint(image) for image in images]


def run(
    originals: Sequence[Path],
    method_names: Sequence[str],
    transform_names: Sequence[str],
    work: Path,
    options: Options | None = None,
    progress: Progress = no_progress,
    calls: int = NORM_CALLS,
) -> Results:
    """Experiments 1 and 2 over `originals` (distinct photos), then experiment 3.

    Variants are written under `work` one original at a time and deleted once fingerprinted,
    so the disk holds one photo's variants at most.
    """
    if len(originals) <= TOP:  # before loading any model; checked again once bad files are left out
        raise DupwatchError(f"the experiments need at least {TOP + 1} photos that can be read;"
                            f" found {len(originals)}")
    # One torch thread, as each scan worker has: two threads on two busy cores spin against the
    # other load and measured 3–6× slower per image here.
    options = replace(options or Options(), cnn_threads=1)
    methods = [get_method(name, "--methods", options) for name in method_names]
    prints = {m.key: _Fingerprinter(m) for m in methods}
    transforms = {name: TRANSFORMS[name] for name in transform_names}
    loading = Clock()
    sources: list[str] = []  # gallery: each original's path
    # (gallery position of its original, transform) of each query, in order; by position, as two
    # photos in different folders may share a name.
    queries: list[tuple[int, str]] = []
    kept: list[np.ndarray] = []  # a few originals at full size, for experiment 3
    skipped: list[SkipFile] = []
    gallery: dict[str, list[np.ndarray]] = {key: [] for key in prints}
    for original in progress(originals, len(originals), "photos"):
        try:
            with loading.timing():
                image = load(str(original))
        except SkipFile as skip:
            skipped.append(skip)
            continue
        if len(kept) < NORM_PHOTOS:
            kept.append(np.asarray(image, dtype=np.float64).ravel())
        variants = list(write_variants([original], work, transforms))
        images = []
        for variant in variants:
            with loading.timing():
                images.append(load(str(variant.path)))
            variant.path.unlink()
        for key, fp in prints.items():
            fp.add([image, *images])
            gallery[key].append(fp.values.pop(-len(images) - 1))  # the original goes to the gallery
        queries += [(len(sources), v.transform) for v in variants]
        sources.append(str(original))
    if len(sources) <= TOP:
        raise DupwatchError(f"the experiments need at least {TOP + 1} photos that can be read;"
                            f" found {len(sources)}")
    load_wall, _ = loading.per_item()
    results = Results(len(sources), list(transforms), SIZE, TOP, load_wall * 1000, skipped=skipped)
    for method in progress(methods, len(methods), "retrieval"):
        fp = prints[method.key]
        results.methods.append(
            _retrieve(method, gallery[method.key], fp.values, queries, fp.clock, loading))
    results.norms = compare_norms(kept, calls)
    return results


def _retrieve(method: Method, gallery: list[np.ndarray], found: list[np.ndarray],
              queries: list[tuple[int, str]], fingerprinting: Clock, loading: Clock) -> MethodResult:
    hits: dict[str, int] = defaultdict(int)
    asked: dict[str, int] = defaultdict(int)
    comparing = Clock()
    for (own, transform), query in zip(queries, found, strict=True):
        with comparing.timing(len(gallery)):
            scores = np.asarray(method.compare_many(query, gallery))
        # Photos scoring at least as high as the right one, itself left out: ties count against it.
        ahead = int(np.count_nonzero(scores >= scores[own])) - 1
        hits[transform] += ahead < TOP
        asked[transform] += 1
    (load_wall, load_cpu), (fp_wall, fp_cpu) = loading.per_item(), fingerprinting.per_item()
    cmp_wall, cmp_cpu = comparing.per_item()
    return MethodResult(
        method=method.name,
        accuracy=sum(hits.values()) / max(1, len(queries)),
        queries=len(queries),
        seconds_per_pair=2 * (load_wall + fp_wall) + cmp_wall,
        method_seconds_per_pair=2 * fp_wall + cmp_wall,
        cpu_seconds_per_pair=2 * (load_cpu + fp_cpu) + cmp_cpu,
        fingerprint_ms=fp_wall * 1000,
        compare_us=cmp_wall * 1e6,
        transforms={name: hits[name] / asked[name] for name in asked},
    )


def compare_norms(images: Sequence[np.ndarray], calls: int = NORM_CALLS) -> list[NormResult]:
    """Experiment 3: scipy.spatial.distance.euclidean against numpy.linalg.norm(a - b).

    On the same pairs of real images, cycled over `calls` calls: once as the Euclidean method's
    16×16 RGB vectors (768 values) and once as the full size×size RGB images.
    """
    from scipy.spatial import distance

    small = [np.asarray(Euclidean().fingerprint(_as_image(v)), dtype=np.float64).ravel() / 255
             for v in images]
    out = []
    for vectors in (small, [v / 255 for v in images]):
        pairs = [(vectors[n % len(vectors)], vectors[(n + 1) % len(vectors)]) for n in range(calls)]
        # Both called through a lambda, so that neither pays for one more Python call than the other.
        scipy_seconds, scipy_cpu, scipy_values = _best_of(3, pairs, lambda a, b: distance.euclidean(a, b))
        numpy_seconds, numpy_cpu, numpy_values = _best_of(3, pairs, lambda a, b: np.linalg.norm(a - b))
        difference = float(np.max(np.abs(np.subtract(scipy_values, numpy_values))))
        out.append(NormResult(len(vectors[0]), calls, scipy_seconds, numpy_seconds, scipy_cpu, numpy_cpu,
                              difference))
    return out


def _as_image(vector: np.ndarray) -> Image.Image:
    return Image.fromarray(vector.reshape(SIZE, SIZE, 3).astype(np.uint8), "RGB")


def _best_of(rounds: int, pairs: list[tuple[np.ndarray, np.ndarray]],
             distance: Callable[[np.ndarray, np.ndarray], Any]) -> tuple[float, float, list[float]]:
    """Wall and CPU seconds of the fastest of `rounds` passes over every pair (the one least
    disturbed by other load), and the distances."""
    best, cpu, values = float("inf"), 0.0, []
    for _ in range(rounds):
        clock = Clock()
        with clock.timing():
            values = [distance(a, b) for a, b in pairs]
        if clock.wall < best:
            best, cpu = clock.wall, clock.cpu
    return best, cpu, [float(v) for v in values]
