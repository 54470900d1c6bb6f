"""Two files, every method's score: the `compare` command's engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dupwatch import shots
from dupwatch.candidates.geometry import judged
from dupwatch.fingerprint import Plan, fingerprint_now
from dupwatch.methods.base import Method, Options
from dupwatch.methods.geometry import Geometry
from dupwatch.methods.hashes import HashMethod


@dataclass(frozen=True)
class Score:
    method: str
    score: float
    threshold: float
    distance: int | None  # Hamming distance, for hash methods
    geometry: dict[str, Any] | None = None  # inliers, transform and any failed guard, for geometry
    plain: bool = False  # a file is too small or plain to compare: never a near-duplicate

    @property
    def duplicate(self) -> bool:
        return not self.plain and self.score >= self.threshold


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
            scores.append(Score(method.name, score, threshold(method), distance, None, plain))
    return Comparison(first.content_hash == second.content_hash, scores, (first.turned, second.turned),
                      (first.exact_only, second.exact_only), shots.apart(first.taken, second.taken))

