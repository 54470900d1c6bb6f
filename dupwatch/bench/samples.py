"""The photos `dupwatch bench` uses when given no folder: real photographs that scikit-image
ships inside its wheel (its sample data; nothing is downloaded), distinct from each other."""

from __future__ import annotations

from pathlib import Path

from dupwatch.errors import DupwatchError
from dupwatch.extras import install

# Left out: drawings and charts (logo, chessboards, phantom, text, page), the second photo of a
# stereo pair (motorcycle_right), tiny ones (microaneurysms, a 14×25 GIF).
NAMES = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
         "hubble_deep_field.jpg", "retina.jpg", "ihc.png", "camera.png", "coins.png", "moon.png",
         "brick.png")


def sample_photos() -> list[Path]:
    try:
        import skimage
    except ImportError:
        raise DupwatchError("no DIR given, and the default photos come with scikit-image:"
                            f" {install('bench')}, or name a folder of distinct photos") from None
    folder = Path(skimage.__file__).parent / "data"
    return [folder / name for name in NAMES if (folder / name).is_file()]
