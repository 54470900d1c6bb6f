"""Two files, every method's score: the `compare` command's engine."""

from __future__ import annotations

from dataclasses import dataclass

from dupwatch.errors import SkipFile
from dupwatch.fingerprint import Plan, fingerprint_file, instances
from dupwatch.methods.hashes import HashMethod
from dupwatch.record import Photo


@dataclass(frozen=True)
class Score:
    method: str
    score: float
    threshold: float
    distance: int | None  # Hamming distance, for hash methods

    @property
    def duplicate(self) -> bool:
        return self.score >= self.threshold


def compare_files(a: str, b: str, names: tuple[str, ...]) -> tuple[bool, list[Score]]:
    """Whether the two files hold the same bytes, and each method's score for the pair."""
    plan = Plan(names)
    first, second = (_photo(path, plan) for path in (a, b))
    scores = []
    for method in instances(names):
        fa = method.from_bytes(first.fingerprints[method.key])
        fb = method.from_bytes(second.fingerprints[method.key])
        distance = HashMethod.distance(fa, fb) if isinstance(method, HashMethod) else None
        scores.append(Score(method.name, method.compare(fa, fb), method.default_threshold, distance))
    return first.content_hash == second.content_hash, scores


def _photo(path: str, plan: Plan) -> Photo:
    result = fingerprint_file(path, plan)
    if isinstance(result, SkipFile):
        raise result
    return result
