"""The experiments' results as markdown tables (people, README) and as one JSON object (scripts)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from dupwatch.bench.experiments import Results
from dupwatch.report import shown


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def markdown(r: Results) -> str:
    queries = r.methods[0].queries if r.methods else 0
    out = [f"### Experiment 1: speed and accuracy ({r.photos} photos, {queries} transformed copies,"
           f" top {r.top} of {r.photos})", ""]
    out += _table(
        ["method", f"accuracy (top {r.top})", "seconds per pair", "the method's part", "CPU seconds per pair",
         "fingerprint ms / image", "compare µs / pair"],
        [[m.method, f"{m.accuracy:.3f}", f"{m.seconds_per_pair:.4f}", f"{m.method_seconds_per_pair:.4f}",
          f"{m.cpu_seconds_per_pair:.4f}", f"{m.fingerprint_ms:.2f}", f"{m.compare_us:.1f}"]
         for m in r.methods])
    out += ["", f"A pair: read, decode, RGB and resize to {r.size}×{r.size} both images"
            f" ({r.load_ms:.1f} ms each, shared by every method), fingerprint both, compare them."
            " The method's part leaves out the reading and resizing."]
    out += ["", f"### Experiment 2: robustness (accuracy, top {r.top}, {r.photos} copies each)", ""]
    names = [m.method for m in r.methods]
    rows = [[t, *(f"{m.transforms[t]:.2f}" for m in r.methods)] for t in r.transforms]
    rows.append(["**all**", *(f"**{m.accuracy:.2f}**" for m in r.methods)])
    out += _table(["transform", *names], rows)
    if r.norms:
        out += ["", f"### Experiment 3: scipy.spatial.distance.euclidean against numpy.linalg.norm"
                f" ({r.norms[0].calls} calls)", ""]
        out += _table(
            ["vector length", "scipy seconds (CPU)", "numpy seconds (CPU)", "scipy / numpy",
             "largest difference"],
            [[f"{n.length:,}", f"{n.scipy_seconds:.4f} ({n.scipy_cpu_seconds:.4f})",
              f"{n.numpy_seconds:.4f} ({n.numpy_cpu_seconds:.4f})",
              f"{n.scipy_seconds / n.numpy_seconds:.2f}", f"{n.largest_difference:.1e}"] for n in r.norms])
        out += ["", "Wall seconds of the fastest of 3 rounds; the same pairs of real photos, as the 16×16 RGB"
                " vectors of the euclidean method and as whole resized images."]
    notes = [*r.notes, *(f"skipped {shown(s.path)}: {s.reason}" for s in r.skipped)]
    if notes:
        out += ["", *(f"- {shown(note)}" for note in notes)]
    return "\n".join(out) + "\n"


def to_json(r: Results) -> dict[str, Any]:
    return {
        "photos": r.photos,
        "size": r.size,
        "top": r.top,
        "load_ms": round(r.load_ms, 3),
        "transforms": r.transforms,
        "methods": [_rounded(asdict(m)) for m in r.methods],
        "norms": [_rounded(asdict(n)) for n in r.norms],
        "notes": r.notes,
        "skipped": [{"path": s.path, "reason": s.reason} for s in r.skipped],
    }


def _rounded(record: dict[str, Any]) -> dict[str, Any]:
    # Six significant digits: enough for any figure here, and readable.
    def rounded(value: Any) -> Any:
        if isinstance(value, float):
            return float(f"{value:.6g}")
        if isinstance(value, dict):
            return {k: rounded(v) for k, v in value.items()}
        return value

    return {k: rounded(v) for k, v in record.items()}
