"""The catalogue's three languages, and how one text in three languages is read and written.

Texts are stored as JSON objects keyed ``en`` / ``zh-Hant`` / ``zh-Hans`` (the portal's keys).
DATA.GOV.HK serves each language under its own prefix (``/en-data``, ``/tc-data``,
``/sc-data``); a plain CKAN path (``/api/3/...``) answers in English.
"""

from __future__ import annotations

from typing import Any, Literal

Lang = Literal["en", "zh-Hant", "zh-Hans"]
LANGS: tuple[Lang, ...] = ("en", "zh-Hant", "zh-Hans")
DEFAULT: Lang = "en"
# DATA.GOV.HK's path prefixes → the language each answers in.
BY_PREFIX: dict[str, Lang] = {"en": "en", "tc": "zh-Hant", "sc": "zh-Hans"}
# Keys other tools send for the same languages (ckanext-fluent, locale names, DATA.GOV.HK).
_ALIASES: dict[str, Lang] = {
    "en": "en",
    "en-hk": "en",
    "en_hk": "en",
    "zh-hant": "zh-Hant",
    "zh_hant": "zh-Hant",
    "zh-hk": "zh-Hant",
    "zh_hk": "zh-Hant",
    "zh-tw": "zh-Hant",
    "zh_tw": "zh-Hant",
    "zh_hant_hk": "zh-Hant",
    "tc": "zh-Hant",
    "zh-hans": "zh-Hans",
    "zh_hans": "zh-Hans",
    "zh-cn": "zh-Hans",
    "zh_cn": "zh-Hans",
    "zh_hans_cn": "zh-Hans",
    "sc": "zh-Hans",
}

Texts = dict[str, str]  # {lang: text}, only the languages that have one


def lang_key(key: str) -> Lang | None:
    """The language a key names (``tc``, ``zh_Hant``, ``zh-HK`` ... all mean zh-Hant)."""
    return _ALIASES.get(key.strip().lower())


def pick(texts: Any, lang: Lang) -> str:
    """The text in ``lang``, else in English, else Traditional, else Simplified Chinese: a
    dataset described in one language still shows a title on every language's pages."""
    if not isinstance(texts, dict):
        return "" if texts is None else str(texts)
    for key in (lang, *LANGS):
        value = texts.get(key)
        if value:
            return str(value)
    return ""


def merge(
    current: Texts | None, translated: dict[str, Any] | None, plain: str | None, lang: Lang
) -> Texts:
    """What a write makes of a text: the stored one, then ``*_translated`` (keys in any of the
    spellings above), then the plain field, which is the request's language. The plain field
    wins over its language's translation, so a client that edits ``title`` from
    ``package_show`` and sends the whole dict back changes what it edited; a plain field equal
    to what ``pick`` shows (a fallback from another language) changes nothing, so a dump loaded
    back does not copy one language's text into another."""
    out: Texts = dict(current or {})
    for key, value in (translated or {}).items():
        target = lang_key(str(key))
        if target is None:
            continue
        if value is None or str(value).strip() == "":
            out.pop(target, None)
        else:
            out[target] = str(value)
    if plain is not None and plain != pick(out, lang):
        if plain.strip():
            out[lang] = plain
        else:
            out.pop(lang, None)
    return out


def translated(texts: Texts | None) -> dict[str, str]:
    """The ``*_translated`` object of an answer: every language, empty where none."""
    texts = texts or {}
    return {lang: texts.get(lang, "") for lang in LANGS}
