"""Keep the gettext catalogues (``locale/<lang>/LC_MESSAGES/messages.po``) in step with the code.

    python -m smartcity.web.catalogues update   # extract UI strings, add new ones to every .po
    python -m smartcity.web.catalogues check    # list strings missing a translation (exit 1)

Each feature folder with templates has its own ``locale`` folder (``smartcity/web``,
``smartcity/portal/site``, ...); ``FOLDERS`` finds them. English needs no translation: its
catalogue exists so every language is handled alike. Catalogues are compiled in memory at run
time (see ``smartcity.web.i18n``), so there is no build step.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from smartcity.web.i18n import DOMAIN, LANGS

PACKAGE = Path(__file__).resolve().parents[1]  # src/smartcity
# Feature folders that own UI strings: every folder with a ``locale`` folder next to its code
# (create ``<feature>/locale/`` and run ``update`` to start a feature's catalogues).
FOLDERS = sorted(p.parent for p in PACKAGE.rglob("locale") if p.is_dir())
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None, "tr": (2,)}
METHODS = [
    ("**/templates/**.html", "jinja2.ext:babel_extract"),
    ("**.py", "python"),
]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "false"}}


def extract(folder: Path) -> Catalog:
    catalog = Catalog(project="smartcity", charset="utf-8")
    for filename, lineno, message, comments, _context in extract_from_dir(
        str(folder), METHODS, keywords=KEYWORDS, options_map=OPTIONS, comment_tags=("NOTE:",)
    ):
        catalog.add(message, locations=[(filename, lineno)], auto_comments=comments)
    return catalog


def po_path(folder: Path, catalogue: str) -> Path:
    return folder / "locale" / catalogue / "LC_MESSAGES" / f"{DOMAIN}.po"


def update(folder: Path) -> None:
    template = extract(folder)
    for lang in LANGS:
        path = po_path(folder, lang.catalogue)
        if path.exists():
            with path.open("rb") as fh:
                catalog = read_po(fh, locale=lang.catalogue)
        else:
            catalog = Catalog(locale=lang.catalogue, project="smartcity", charset="utf-8")
        catalog.update(template, no_fuzzy_matching=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            write_po(fh, catalog, width=100, omit_header=False, ignore_obsolete=True)
        print(f"updated {path.relative_to(PACKAGE)} ({len(catalog)} messages)")


def problems(folder: Path) -> list[str]:
    """Messages the code uses that a Chinese catalogue lacks, leaves empty or marks fuzzy."""
    found: list[str] = []
    used = {m.id for m in extract(folder) if m.id}
    for lang in LANGS:
        if lang.prefix == "en":
            continue
        path = po_path(folder, lang.catalogue)
        if not path.exists():
            return [f"{path}: missing"]
        with path.open("rb") as fh:
            catalog = read_po(fh, locale=lang.catalogue)
        for msgid in sorted(used, key=str):
            message = catalog.get(msgid)
            strings = (
                message.string
                if message is not None and isinstance(message.string, tuple)
                else (message.string,)
                if message is not None
                else ("",)
            )
            if message is None or not all(strings) or message.fuzzy:
                found.append(f"{lang.catalogue}: {msgid!r}")
    return found


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "check"
    if command == "update":
        for folder in FOLDERS:
            update(folder)
        return 0
    missing = [p for folder in FOLDERS for p in problems(folder)]
    for line in missing:
        print(line)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
