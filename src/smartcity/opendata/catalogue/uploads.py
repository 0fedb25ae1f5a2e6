"""Uploaded resource files, kept under the data directory: ``uploads/<resource id>/<name>``.

Checks before anything is kept: the size limit (also enforced while the request streams in,
``ckan/requests.py``), a file type from an allow-list by extension, and content that agrees
with it: binary formats must start with their signature, and text formats must not hold
NUL bytes (an executable renamed ``.csv`` is refused). Files are served as downloads
(``Content-Disposition: attachment``, ``nosniff``), never rendered by the browser.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from smartcity.opendata.errors import ValidationFailed

TEXT = None  # a text format: no signature, no NUL bytes
ZIP = (b"PK\x03\x04", b"PK\x05\x06")
# extension → (format shown, media type, accepted leading bytes or TEXT)
FILE_TYPES: dict[str, tuple[str, str, tuple[bytes, ...] | None]] = {
    "csv": ("CSV", "text/csv", TEXT),
    "tsv": ("TSV", "text/tab-separated-values", TEXT),
    "txt": ("TXT", "text/plain", TEXT),
    "json": ("JSON", "application/json", TEXT),
    "geojson": ("GeoJSON", "application/geo+json", TEXT),
    "jsonld": ("JSON-LD", "application/ld+json", TEXT),
    "xml": ("XML", "application/xml", TEXT),
    "rdf": ("RDF", "application/rdf+xml", TEXT),
    "ttl": ("TTL", "text/turtle", TEXT),
    "kml": ("KML", "application/vnd.google-earth.kml+xml", TEXT),
    "gml": ("GML", "application/gml+xml", TEXT),
    "ics": ("ICS", "text/calendar", TEXT),
    "xlsx": ("XLSX", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ZIP),
    "docx": (
        "DOCX",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ZIP,
    ),
    "ods": ("ODS", "application/vnd.oasis.opendocument.spreadsheet", ZIP),
    "kmz": ("KMZ", "application/vnd.google-earth.kmz", ZIP),
    "zip": ("ZIP", "application/zip", ZIP),
    "xls": ("XLS", "application/vnd.ms-excel", (b"\xd0\xcf\x11\xe0",)),
    "pdf": ("PDF", "application/pdf", (b"%PDF-",)),
    "png": ("PNG", "image/png", (b"\x89PNG\r\n\x1a\n",)),
    "jpg": ("JPEG", "image/jpeg", (b"\xff\xd8\xff",)),
    "jpeg": ("JPEG", "image/jpeg", (b"\xff\xd8\xff",)),
    "gif": ("GIF", "image/gif", (b"GIF87a", b"GIF89a")),
    "parquet": ("Parquet", "application/vnd.apache.parquet", (b"PAR1",)),
    "gpkg": ("GeoPackage", "application/geopackage+sqlite3", (b"SQLite format 3\x00",)),
}
HEAD = 8192
_UNSAFE = re.compile(r"[^\w.\-]+")


@dataclass(frozen=True)
class StoredFile:
    filename: str
    format: str
    mimetype: str
    size: int
    sha256: str


def safe_filename(name: str) -> str:
    """The last path segment, NFKC, with anything but letters, digits, ``.-_`` made ``-``."""
    base = unicodedata.normalize("NFKC", name.replace("\\", "/").rsplit("/", 1)[-1])
    cleaned = _UNSAFE.sub("-", base).strip(".-")[:200]
    return cleaned or "upload"


def file_type(filename: str) -> tuple[str, str, tuple[bytes, ...] | None]:
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    found = FILE_TYPES.get(ext)
    if found is None:
        raise ValidationFailed.one(
            "upload",
            f"files of type {('.' + ext) if ext else '(no extension)'} are not accepted; "
            f"upload one of: {', '.join(sorted(FILE_TYPES))}",
        )
    return found


def check_content(filename: str, head: bytes) -> None:
    _, _, signatures = file_type(filename)
    if signatures is TEXT:
        if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16
            raise ValidationFailed.one(
                "upload", f"{filename} is named as a text file but holds binary data"
            )
    elif not head.startswith(signatures):
        raise ValidationFailed.one(
            "upload", f"{filename}: the content is not what its extension says"
        )


class UploadStore:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def path(self, resource_id: str, filename: str) -> Path | None:
        candidate = self.root / resource_id / safe_filename(filename)
        return candidate if candidate.is_file() else None

    def stage(self, source: BinaryIO, filename: str) -> tuple[Path, StoredFile]:
        """Copy an upload into a temporary file beside the store after checking it; the
        caller ``commit``s it once the database agrees, or ``discard``s it."""
        name = safe_filename(filename)
        fmt, mimetype, _ = file_type(name)
        self.root.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=".upload-", dir=self.root)
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                head = source.read(HEAD)
                check_content(name, head)
                chunk = head
                while chunk:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise ValidationFailed.one(
                            "upload", f"the file is larger than {self.max_bytes} bytes"
                        )
                    digest.update(chunk)
                    out.write(chunk)
                    chunk = source.read(1 << 20)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return Path(temp), StoredFile(name, fmt, mimetype, size, "sha256:" + digest.hexdigest())

    def commit(self, staged: Path, resource_id: str, stored: StoredFile) -> None:
        folder = self.root / resource_id
        if folder.exists():  # the resource's previous file goes
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        os.replace(staged, folder / stored.filename)

    @staticmethod
    def discard(staged: Path | None) -> None:
        if staged is not None:
            staged.unlink(missing_ok=True)

    def remove(self, resource_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.root / resource_id)
