"""Two PNG charts of the experiments (matplotlib, the `bench` extra): accuracy against time per
pair, one point per method; and accuracy per method and transform as a heatmap."""

from __future__ import annotations

import math
from pathlib import Path

from dupwatch.bench.experiments import Results

SCATTER = "bench-accuracy-time.png"
HEATMAP = "bench-robustness.png"
MARKERS = ["o", "s", "^", "v", "D", "P", "*", "o", "x"]


def write(r: Results, folder: Path) -> list[Path]:
    # The Figure API without pyplot: no global state, no GUI backend, no display needed.
    from matplotlib.figure import Figure

    folder.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    # A legend rather than labels: several methods land on nearly the same point (cnn and
    # cnn-euclidean exactly), and each keeps its own marker so that none hides another.
    for m, marker in zip(r.methods, MARKERS * len(r.methods), strict=False):
        ax.scatter(m.method_seconds_per_pair, m.accuracy, s=50, marker=marker, label=m.method, alpha=0.85)
    ax.set_xscale("log")
    lowest = min(m.accuracy for m in r.methods)
    ax.set_ylim(max(0.0, math.floor((lowest - 0.05) * 10) / 10), 1.02)
    ax.set_xlabel("seconds per image pair: fingerprint both, compare (log scale)")
    ax.set_ylabel(f"accuracy (original among the top {r.top})")
    ax.set_title(f"Speed and accuracy: {r.photos} photos, {len(r.transforms)} transforms\n"
                 f"(reading and resizing both images adds {2 * r.load_ms / 1000:.3f} s to every method)",
                 fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    fig.legend(loc="outside right upper", fontsize=9)
    scatter = folder / SCATTER
    fig.savefig(scatter, dpi=100)

    grid = [[m.transforms[t] for t in r.transforms] for m in r.methods]
    fig = Figure(figsize=(1.2 + 0.62 * len(r.transforms), 1.4 + 0.42 * len(r.methods)), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(grid, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(r.transforms)), r.transforms, rotation=45, ha="right")
    ax.set_yticks(range(len(r.methods)), [m.method for m in r.methods])
    for y, row in enumerate(grid):
        for x, value in enumerate(row):
            ax.text(x, y, f"{value:.2f}", ha="center", va="center", fontsize=8,
                    color="black" if value > 0.6 else "white")
    ax.set_title(f"Robustness: accuracy (top {r.top}) per transform, {r.photos} photos")
    fig.colorbar(image, ax=ax, shrink=0.8)
    heatmap = folder / HEATMAP
    fig.savefig(heatmap, dpi=100)
    return [scatter, heatmap]
