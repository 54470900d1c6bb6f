"""Two files, every method's score: the `compare` command's engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dupwatch import shots
from dupwatch.candidates import closer
from dupwatch.candidates.geometry import judged
from dupwatch.fingerprint import Plan, fingerprint_now
from dupwatch.methods.base import Method, Options
from dupwatch.methods.cosine import Cosine
from dupwatch.methods.geometry import Geometry
from dupwatch.methods.hashes import HashMethod
from dupwatch.record import Photo


@dataclass(frozen=True)
class Score:
    method: str
    score: float
    threshold: float
    distance: int | None  # Hamming distance, for hash methods
    geometry: dict[str, Any] | None = None  # inliers, transform and any failed guard, for geometry
    plain: bool = False  # a file is too small or plain to compare: never a near-duplicate
    apart: bool = False  # looked at closer, the two photos' fine detail disagrees (`closer`)

    @property
    def duplicate(self) -> bool:
        return not self.plain and not self.apart and self.score >= self.threshold


@dataclass(frozen=True)
class Comparison:
    same_bytes: bool
    scores: list[Score]
    # Degrees each file was turned on a canvas (0: none), taken off before any method looked.
    turned: tuple[float, float]
    # Why each file is too small or plain to be compared by content (None: it is not).
    exact_only: tuple[str | None, str | None] = (None, None)
    # Seconds apart one camera took the two (`shots.apart`): two shots, not copies. None: not known.
    apart: float | None = None
    # How far their fine detail agrees outside the patch they share (`closer.agreement`), when
    # either photo's grid holds its detail in one patch only; None: not looked at, or nothing
    # there to tell.
    closer: float | None = None


def compare_files(
    a: str, b: str, names: tuple[str, ...], options: Options | None = None,
    threshold: Callable[[Method], float] = lambda m: m.default_threshold,
) -> Comparison:
    """Whether the two files hold the same bytes, and each method's score for the pair against
    the `threshold` in effect for it."""
    plan = Plan(names, options or Options())
    first, second = (fingerprint_now(path, plan) for path in (a, b))
    scores = []
    plain = first.exact_only is not None or second.exact_only is not None
    look = None if plain else _closer(a, b, first, second)
    for method in plan.instances:
        fa = method.from_bytes(first.fingerprints[method.key])
        fb = method.from_bytes(second.fingerprints[method.key])
        distance = HashMethod.distance(fa, fb) if isinstance(method, HashMethod) else None
        if isinstance(method, Geometry):
            verdict = judged(a, b, fa, fb, threshold(method))
            details = {**verdict.to_json(), "matches": verdict.matches, "rejected": verdict.reason}
            scores.append(Score(method.name, verdict.score, threshold(method), None, details, plain))
        else:
            score = method.compare(fa, fb)
            apart = isinstance(method, Cosine) and look is not None and look < closer.AGREE
            scores.append(Score(method.name, score, threshold(method), distance, None, plain, apart))
    return Comparison(first.content_hash == second.content_hash, scores, (first.turned, second.turned),
                      (first.exact_only, second.exact_only), shots.apart(first.taken, second.taken), look)


def _closer(a: str, b: str, first: Photo, second: Photo) -> float | None:
    """The closer look at the two, as a scan takes it (`candidates.closer`), when either grid
    holds its detail in one patch only."""
    cosine = Cosine()
    grids = [fingerprint_now(path, Plan((cosine.name,))) if cosine.key not in photo.fingerprints else photo
             for path, photo in ((a, first), (b, second))]
    if not any(closer.weak(cosine.from_bytes(g.fingerprints[cosine.key])) for g in grids):
        return None
    x, y = closer.fine(a), closer.fine(b)
    return None if x is None or y is None else closer.agreement(x, y)

