"""dupwatch's own sidecar: a small JSON file per duplicate, where photo managers never look.

PhotoPrism reads `*.json` beside photos as its own, so by default the sidecars live in the state
dir, under the photo's absolute path (`…/sidecars/srv/photos/IMG_1 (1).jpg.json`); with
`where: folder`, in a hidden `.dupwatch/` folder beside the photo, which scanners skip.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from dupwatch.config import Config
from dupwatch.record import Notice
from dupwatch.report import json_line
from dupwatch.sinks.base import Alert, DeliveryError

FOLDER = ".dupwatch"


class Sidecar:
    key = "sidecar"
    alerts = False
    records = False

    def __init__(self, root: Path | None) -> None:
        self.root = root  # None: beside the photo
        self.label = f"notices.sidecar ({root if root is not None else FOLDER + '/ beside each photo'})"

    @classmethod
    def configured(cls, config: Config) -> list[Sidecar]:
        sidecar = config.notices.sidecar
        if not sidecar.enabled:
            return []
        return [cls(sidecar.root() if sidecar.where == "state" else None)]

    def path_for(self, photo: str) -> Path:
        if self.root is None:
            folder, name = os.path.split(photo)
            return Path(folder, FOLDER, name + ".json")
        return self.root / (photo.lstrip("/") + ".json")

    def send(self, item: Alert) -> None:
        assert isinstance(item, Notice)
        target = self.path_for(item.match.path)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json_line(item.to_json()) + "\n", encoding="ascii")
            temporary.replace(target)  # readers see the old sidecar or the new one, never half
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            # A folder that is read-only or gone is about this one photo: the next goes on.
            raise DeliveryError(f"cannot write {target}: {exc.strerror or exc}", retry=False) from None
