"""The one place a fingerprint is made on demand, from the file, outside the workers.

Two cases: a candidate indexed before its method was configured (or, in the default mode, a
file whose geometry features no pair had needed yet), which is fingerprinted once and its
fingerprint stored for every later search; and the photo being matched, when a method only a
rare pair needs (geometry's features in the default mode) asks for it, whose fingerprint is kept
here until the `Library` stores it with the photo. The matching stages ask this; they neither read
files to fingerprint them nor write the catalog themselves.
"""

from __future__ import annotations

from dataclasses import replace

from dupwatch.errors import SkipFile
from dupwatch.fingerprint import Plan, fingerprint_now
from dupwatch.methods.base import Method
from dupwatch.record import Photo
from dupwatch.store.base import Catalog


class OnDemand:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        # The photo being matched (one at a time): what was made for it, by method key.
        self._photo = ""
        self._made: dict[str, bytes] = {}

    def stored(self, file_id: int, path: str, method: Method) -> bytes | None:
        """An indexed file's fingerprint of `method`: from the catalog, or made from the file
        and stored when it has none. None when the file cannot be read now, or is too small or
        plain to carry one."""
        data = self.catalog.fingerprint(file_id, method.key)
        if data is None:
            data = _made(path, method)
            if data is not None:
                self.catalog.put_fingerprint(file_id, method.key, data)
        return data

    def of(self, photo: Photo, method: Method) -> bytes | None:
        """The photo being matched: its fingerprint of `method`, from the workers or made now."""
        if photo.path != self._photo:
            self._photo, self._made = photo.path, {}
        data = photo.fingerprints.get(method.key) or self._made.get(method.key)
        if data is None:  # a file gone since is a SkipFile in `_made`: None
            data = _made(photo.path, method)
            if data is not None:
                self._made[method.key] = data
        return data

    def with_made(self, photo: Photo) -> Photo:
        """`photo` with the fingerprints made for it while it was matched, to be stored with it."""
        if photo.path != self._photo or not self._made:
            return photo
        made, self._photo, self._made = self._made, "", {}
        return replace(photo, fingerprints={**made, **photo.fingerprints})


def _made(path: str, method: Method) -> bytes | None:
    try:
        photo = fingerprint_now(path, Plan((method.name,), method.options))
    except SkipFile:
        return None
    return None if photo.exact_only is not None else photo.fingerprints[method.key]
