"""The dataset and resource forms of the editor pages, as CKAN's dicts and back.

The forms post what a person types (a text per language, tags separated by commas, a
checkbox per category); ``dataset_data`` and ``resource_data`` turn that into the dicts the
Action API takes, and the catalogue service checks them exactly as it checks an API call
(``package_create`` / ``package_patch`` / ``resource_create`` ...): the form adds no rule of its
own, so the form and the API cannot disagree. ``field_errors`` puts the service's per-field
messages next to the form's fields, in the page's language where the message is a known one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smartcity.opendata.catalogue.schemas import NAME_MESSAGE
from smartcity.opendata.errors import ValidationFailed
from smartcity.opendata.languages import LANGS
from smartcity.web.nav import N_

Form = Mapping[str, list[str]]  # a posted form: every value of each name

# The text fields written in each language: the form's names are "<field>_<lang>".
TEXT_LANGS = (("en", "English"), ("zh-Hant", "繁體中文"), ("zh-Hans", "简体中文"))
PLAIN_FIELDS = (
    "name",
    "owner_org",
    "license_id",
    "frequency",
    "temporal_start",
    "temporal_end",
    "url",
    "version",
    "author",
    "author_email",
    "maintainer",
    "maintainer_email",
)
# The service's field names → the form's (the error is shown next to that field).
FIELD_OF = {
    "title_translated": "title_en",
    "title": "title_en",
    "notes_translated": "notes_en",
    "notes": "notes_en",
    "tags": "tag_string",
    "tag_string": "tag_string",
    "private": "visibility",
    "state": "publication",
    "name_translated": "name_en",
    "description_translated": "description_en",
    "description": "description_en",
}
# The service's messages (English, as the API says them) that the pages say in their language.
KNOWN_MESSAGES = {
    NAME_MESSAGE: N_(
        "The URL name must be 2 to 100 characters: lowercase letters a to z, digits, "
        "hyphens (-) and underscores (_)."
    ),
    "That URL is already in use.": N_("That URL name is already in use: choose another."),
    "Missing value": N_("Enter a value."),
    "A dataset belongs to an organization: send owner_org (its id or name)": N_(
        "Choose the organisation that publishes the dataset."
    ),
    "say which organization publishes the dataset (--org / owner_org)": N_(
        "Choose the organisation that publishes the dataset."
    ),
    "must be an ISO 8601 date (2024-01-31) or date and time": N_(
        "Enter a date as YYYY-MM-DD, for example 2024-01-31."
    ),
}
KNOWN_PARTS = {  # messages that carry a value: recognised by their start or end
    "Tag must be": N_(
        "Each tag is 1 to 100 characters: letters, digits, spaces, hyphens, underscores and "
        "full stops. Separate tags with commas."
    ),
    "the file is larger than": N_("The file is larger than the largest upload this portal takes."),
    "the content is not what its extension says": N_(
        "The file's content does not match its extension (for example a .csv that is not text)."
    ),
    "holds binary data": N_(
        "The file's content does not match its extension (for example a .csv that is not text)."
    ),
    "are not accepted; upload one of": N_(
        "Files of this type are not accepted: upload a data file such as .csv, .json, "
        ".geojson, .xml, .xlsx, .ods, .zip or .pdf."
    ),
    "the request is larger than": N_(
        "The file is larger than the largest upload this portal takes."
    ),
    "does not exist": N_("Choose one of the listed options."),
}


def first(form: Form, name: str) -> str:
    values = form.get(name) or [""]
    return values[0]


def _texts(form: Form, field: str) -> dict[str, str]:
    return {lang: first(form, f"{field}_{lang}").strip() for lang in LANGS}


def dataset_data(form: Form) -> dict[str, Any]:
    """The posted dataset form as ``package_create``'s dict (``package_patch``'s too)."""
    data: dict[str, Any] = {name: first(form, name).strip() for name in PLAIN_FIELDS}
    for field in ("title", "notes"):
        data[f"{field}_translated"] = _texts(form, field)
        data[field] = None  # only the translations: a plain text would win for one language
    data["tags"] = [
        {"name": tag.strip()} for tag in first(form, "tag_string").split(",") if tag.strip()
    ]
    data["groups"] = [{"name": g} for g in form.get("groups", []) if g]
    data["private"] = first(form, "visibility") == "private"
    data["state"] = "draft" if first(form, "publication") == "draft" else "active"
    return data


def dataset_values(package: Mapping[str, Any]) -> dict[str, Any]:
    """A dataset (``package_show``) as the form's initial values."""
    values: dict[str, Any] = {name: package.get(name) or "" for name in PLAIN_FIELDS}
    values["owner_org"] = (package.get("organization") or {}).get("name") or ""
    for field in ("title", "notes"):
        texts = package.get(f"{field}_translated") or {}
        for lang in LANGS:
            values[f"{field}_{lang}"] = texts.get(lang) or ""
    values["tag_string"] = ", ".join(t["name"] for t in package.get("tags") or [])
    values["groups"] = [g["name"] for g in package.get("groups") or []]
    values["visibility"] = "private" if package.get("private") else "public"
    values["publication"] = "draft" if package.get("state") == "draft" else "active"
    for name in ("temporal_start", "temporal_end"):
        values[name] = str(values[name])[:10]
    return values


def posted_values(form: Form) -> dict[str, Any]:
    """What the person sent, to show again with the errors (nothing they typed is lost)."""
    values: dict[str, Any] = {name: values[0] for name, values in form.items() if values}
    values["groups"] = list(form.get("groups", []))
    return values


def resource_data(form: Mapping[str, Any]) -> dict[str, Any]:
    """The posted resource form (multipart: one value per name) as ``resource_create``'s
    dict; an empty link is left out, so an edit that sends no new link keeps the old one."""
    data: dict[str, Any] = {"format": str(form.get("format") or "").strip()}
    url = str(form.get("url") or "").strip()
    if url:
        data["url"] = url
    for field in ("name", "description"):
        data[f"{field}_translated"] = {
            lang: str(form.get(f"{field}_{lang}") or "").strip() for lang in LANGS
        }
    return data


def resource_values(resource: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {
        "format": resource.get("format") or "",
        "url": resource.get("url") if resource.get("url_type") != "upload" else "",
    }
    for field in ("name", "description"):
        texts = resource.get(f"{field}_translated") or {}
        for lang in LANGS:
            values[f"{field}_{lang}"] = texts.get(lang) or ""
    return values


def message_id(message: str) -> str | None:
    """The page's msgid for one of the service's messages, if it is a known one."""
    bare = message.split(": ", 1)[1] if message.startswith("#") and ": " in message else message
    if bare in KNOWN_MESSAGES:
        return KNOWN_MESSAGES[bare]
    return next((msgid for part, msgid in KNOWN_PARTS.items() if part in bare), None)


def field_errors(exc: ValidationFailed, translate: Any, fields: set[str]) -> dict[str, str]:
    """The service's messages keyed by the form's field names (``fields``); a message about a
    field the form does not have goes at the top of the form (``_form``)."""
    errors: dict[str, str] = {}
    for name, messages in exc.errors.items():
        target = FIELD_OF.get(name, name)
        if target not in fields:
            target = "_form"
        shown = []
        for message in messages:
            msgid = message_id(message)
            shown.append(translate(msgid) if msgid else message)
        text = " ".join(dict.fromkeys(shown))
        errors[target] = f"{errors[target]} {text}" if target in errors else text
    return errors
