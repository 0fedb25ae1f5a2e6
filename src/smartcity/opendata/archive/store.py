"""The archive's content, addressed by its SHA-256: ``archive/<first two hex>/<sha256>``.

A snapshot is streamed into a temporary file beside the store while it is hashed (bounded by
a byte limit, never held in memory), then moved to its address; if that address exists the
content is already kept and the copy is dropped. Files are never changed once written, so
readers need no locks; ``collect`` removes those no version points at any more.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from smartcity.opendata.errors import ValidationFailed


class TooLarge(ValidationFailed):
    def __init__(self, limit: int) -> None:
        super().__init__({"content": [f"larger than the archive's limit of {limit} bytes"]})


class BlobStore:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def put(self, chunks: Iterable[bytes]) -> tuple[str, int]:
        """Keep the content of ``chunks``; its SHA-256 (hex) and size."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=".snapshot-", dir=self.root)
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise TooLarge(self.max_bytes)
                    digest.update(chunk)
                    out.write(chunk)
            sha = digest.hexdigest()
            target = self.path(sha)
            if target.is_file():
                Path(temp).unlink()
            else:
                target.parent.mkdir(exist_ok=True)
                os.replace(temp, target)
            return sha, size
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def all(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for folder in self.root.iterdir():
            if folder.is_dir():
                for blob in folder.iterdir():
                    if not blob.name.startswith("."):
                        yield blob.name

    def collect(self, referenced: set[str]) -> int:
        """Remove the content no version refers to; how many files went."""
        removed = 0
        for sha in list(self.all()):
            if sha not in referenced:
                with contextlib.suppress(FileNotFoundError):
                    self.path(sha).unlink()
                    removed += 1
        return removed


def file_chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(size):
            yield chunk
