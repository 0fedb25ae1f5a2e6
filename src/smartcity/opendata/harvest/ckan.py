"""Reading another CKAN: ``package_search`` paged with ``rows``/``start`` until every dataset is
read. DATA.GOV.HK answers in one language per path (``/en-data``, ``/tc-data``, ``/sc-data``):
when the source has those paths, each page is read in the three and the answers merged into
one trilingual dataset (texts matched by dataset id, resources by id, else by position).
A source that sends ``*_translated`` (ckanext-fluent, or this platform) is taken at its word.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx

from smartcity.opendata.catalogue.reference import FREQUENCIES
from smartcity.opendata.catalogue.schemas import TAG_RE
from smartcity.opendata.harvest.http import get_json
from smartcity.opendata.harvest.model import HarvestError, RemoteDataset

LANG_PATHS = {"en": "/en-data", "zh-Hant": "/tc-data", "zh-Hans": "/sc-data"}
KEPT_FIELDS = (
    "license_id",
    "url",
    "version",
    "author",
    "author_email",
    "maintainer",
    "maintainer_email",
    "temporal_start",
    "temporal_end",
    "metadata_created",
    "metadata_modified",
)


def _search(session: httpx.Client, api: str, start: int, rows: int) -> dict[str, Any]:
    answer = get_json(
        session,
        f"{api}/api/3/action/package_search",
        {"rows": rows, "start": start, "sort": "metadata_created asc, id asc"},
    )
    if not isinstance(answer, dict) or not answer.get("success"):
        error = answer.get("error") if isinstance(answer, dict) else None
        raise HarvestError(f"{api}: package_search failed: {error or answer!r}")
    result: dict[str, Any] = answer["result"]
    return result


def languages_of(session: httpx.Client, base: str) -> dict[str, str]:
    """The source's API roots per language: DATA.GOV.HK's three if it has them, else one."""
    try:
        _search(session, base + LANG_PATHS["zh-Hant"], 0, 0)
    except HarvestError:
        return {"": base}
    return {lang: base + path for lang, path in LANG_PATHS.items()}


def read_ckan(
    session: httpx.Client,
    url: str,
    *,
    rows: int = 100,
    total: Callable[[int], None] | None = None,
) -> Iterator[RemoteDataset]:
    base = url.rstrip("/")
    for suffix in ("/api/3/action/package_search", "/api/3", "/api"):
        base = base.removesuffix(suffix)
    for path in LANG_PATHS.values():
        base = base.removesuffix(path)
    apis = languages_of(session, base)
    start = 0
    seen: set[Any] = set()
    while True:
        pages = {lang: _search(session, api, start, rows) for lang, api in apis.items()}
        main = pages.get("en") or pages[""]
        if start == 0 and total is not None:
            total(int(main.get("count", 0)))
        found = main.get("results") or []
        if not found:
            return
        ids = {d.get("id") for d in found}
        if ids <= seen:
            # A source that ignores `start` would be read forever: stop, and say so.
            raise HarvestError(
                f"{base}: package_search answered start={start} with datasets it already "
                "sent: the source does not page with start/rows"
            )
        seen |= ids
        # Matched by id, else by name (the same dataset under each language's path).
        by_lang = {
            lang: {
                **{("name", d.get("name")): d for d in page.get("results") or []},
                **{("id", d.get("id")): d for d in page.get("results") or []},
            }
            for lang, page in pages.items()
        }
        for dataset in found:
            answers = {
                lang: known.get(("id", dataset.get("id")))
                or known.get(("name", dataset.get("name")))
                for lang, known in by_lang.items()
            }
            yield merged(base, {k: v for k, v in answers.items() if v is not None})
        start += len(found)


def _texts(
    answers: dict[str, dict[str, Any]], key: str, pick: Callable[[dict[str, Any]], Any]
) -> Any:
    """``*_translated`` if the source sends it, else each language's plain value."""
    main = answers.get("en") or answers.get("") or next(iter(answers.values()))
    given = main.get(f"{key}_translated") if key else None
    if isinstance(given, dict) and any(given.values()):
        return {k: v for k, v in given.items() if v}
    out = {}
    for lang, answer in answers.items():
        value = pick(answer)
        if value:
            out[lang or "en"] = value
    return out


def merged(base: str, answers: dict[str, dict[str, Any]]) -> RemoteDataset:
    main = answers.get("en") or answers.get("") or next(iter(answers.values()))
    package: dict[str, Any] = {k: main.get(k) for k in KEPT_FIELDS if main.get(k)}
    package["title_translated"] = _texts(answers, "title", lambda a: a.get("title"))
    package["notes_translated"] = _texts(answers, "notes", lambda a: a.get("notes"))
    frequency = str(main.get("frequency") or "").strip().lower()
    if frequency in FREQUENCIES:
        package["frequency"] = frequency
    if isinstance(main.get("spatial"), dict):
        package["spatial"] = main["spatial"]
    if isinstance(main.get("data_dictionary"), list):
        package["data_dictionary"] = [
            f for f in main["data_dictionary"] if isinstance(f, dict) and f.get("name")
        ]
    tags: dict[str, None] = {}
    for answer in answers.values():
        for tag in answer.get("tags") or []:
            name = str(tag.get("name", "")).strip()
            if TAG_RE.match(name):
                tags[name] = None
    package["tags"] = [{"name": name} for name in tags]
    package["resources"] = _resources(answers)
    org = main.get("organization") or {}
    organization = None
    if org.get("name"):
        organization = {
            "name": org["name"],
            "title_translated": _texts(
                {lang: a.get("organization") or {} for lang, a in answers.items()},
                "title",
                lambda o: o.get("title"),
            ),
        }
    groups: list[dict[str, Any]] = []
    for group in main.get("groups") or []:
        if not group.get("name"):
            continue
        same: dict[str, dict[str, Any]] = {
            lang: next((g for g in a.get("groups") or [] if g.get("name") == group["name"]), {})
            for lang, a in answers.items()
        }
        groups.append(
            {
                "name": group["name"],
                "title_translated": _texts(same, "title", lambda g: g.get("title")),
            }
        )
    extras = [
        {"key": str(e["key"]), "value": str(e.get("value", ""))}
        for e in main.get("extras") or []
        if isinstance(e, dict) and e.get("key") and not str(e["key"]).startswith("harvest_")
    ]
    return RemoteDataset(
        remote_id=str(main.get("id") or main.get("name")),
        remote_name=str(main.get("name")),
        modified=main.get("metadata_modified"),
        package=package,
        organization=organization,
        groups=groups,
        extras=extras,
        page_url=f"{base}/dataset/{main.get('name')}",
    )


def _resources(answers: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    main = answers.get("en") or answers.get("") or next(iter(answers.values()))
    out = []
    for position, resource in enumerate(main.get("resources") or []):
        if not resource.get("url"):
            continue
        same = {}
        for lang, answer in answers.items():
            theirs = answer.get("resources") or []
            match = next((r for r in theirs if r.get("id") == resource.get("id")), None)
            if match is None and position < len(theirs):
                match = theirs[position]
            if match is not None:
                same[lang] = match
        kind = resource.get("kind") or resource.get("resource_type")
        out.append(
            {
                "remote_id": str(resource.get("id") or position),
                "url": resource["url"],
                # A harvested file stays at its source: a link; an API (or a hub query of
                # another instance) stays a call to that source.
                "kind": "api" if kind in ("api", "hub-query") else "link",
                "name_translated": _texts(same, "name", lambda r: r.get("name")),
                "description_translated": _texts(
                    same, "description", lambda r: r.get("description")
                ),
                "format": str(resource.get("format") or "")[:100] or None,
                "mimetype": resource.get("mimetype") or None,
                "size": resource.get("size") if isinstance(resource.get("size"), int) else None,
                "last_modified": resource.get("last_modified") or None,
                "created": resource.get("created") or None,
            }
        )
    return out
