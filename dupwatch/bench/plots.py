"""Two PNG charts of the experiments (matplotlib, the `bench` extra): accuracy against time per
pair, one point per method; and accuracy per method and transform as a heatmap."""

from __future__ import annotations

from pathlib import Path

from dupwatch.bench.experiments import Results

SCATTER = "bench-accuracy-time.png"
HEATMAP = "bench-robustness.png"


def write(r: Results, folder: Path) -> list[Path]:
    # The Figure API without pyplot: no global state, no GUI backend, no display needed.
    from matplotlib.figure import Figure

    folder.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    for m in r.methods:
        ax.scatter(m.method_seconds_per_pair, m.accuracy, s=36)
        ax.annotate(m.method, (m.method_seconds_per_pair, m.accuracy), xytext=(5, 4),
                    textcoords="offset points", fontsize=9)
    ax.set_xscale("log")
    ax.set_ylim(min(0.0, *(m.accuracy for m in r.methods)) - 0.02, 1.05)
    # The method's own part: reading and resizing (the same for every method) would hide the rest.
    ax.set_xlabel(f"seconds per image pair, fingerprinting both and comparing (log scale;"
                  f" reading both adds {2 * r.load_ms / 1000:.3f})")
    ax.set_ylabel(f"accuracy (original among the top {r.top})")
    ax.set_title(f"Speed and accuracy: {r.photos} photos, {len(r.transforms)} transforms")
    ax.grid(True, which="both", alpha=0.3)
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
