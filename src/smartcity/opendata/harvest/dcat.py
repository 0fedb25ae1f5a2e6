"""Reading a DCAT catalogue (Turtle, RDF/XML or JSON-LD, parsed by rdflib): each
``dcat:Dataset`` with its titles and descriptions per language (``@en``, ``@zh-Hant``/
``@zh-HK``/``@zh-TW``, ``@zh-Hans``/``@zh-CN``; untagged text is English), keywords as tags,
``dct:publisher`` as the organisation, ``dcat:distribution`` as link resources. Pages of a
Hydra-paged catalogue (``hydra:next``) are followed, up to ``max_pages``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterator
from typing import Any

import httpx
from rdflib import RDF, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF

from smartcity.opendata.catalogue.schemas import TAG_RE
from smartcity.opendata.harvest.http import get_bytes
from smartcity.opendata.harvest.model import HarvestError, RemoteDataset

HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")
ACCEPT = "text/turtle, application/rdf+xml;q=0.9, application/ld+json;q=0.8"
FORMATS = {
    "text/turtle": "turtle",
    "application/x-turtle": "turtle",
    "application/rdf+xml": "xml",
    "application/xml": "xml",
    "application/ld+json": "json-ld",
    "application/json": "json-ld",
}
LANGS = {"en": "en", "zh-hant": "zh-Hant", "zh-hk": "zh-Hant", "zh-tw": "zh-Hant",
         "zh-hans": "zh-Hans", "zh-cn": "zh-Hans", "zh-sg": "zh-Hans", "zh": "zh-Hant"}  # fmt: skip


def _parse(body: bytes, media: str, url: str) -> Graph:
    graph = Graph()
    guess = FORMATS.get(media)
    if guess is None:
        lowered = url.lower().split("?")[0]
        guess = next(
            (f for ext, f in ((".ttl", "turtle"), (".rdf", "xml"), (".jsonld", "json-ld"))
             if lowered.endswith(ext)),
            "turtle",
        )  # fmt: skip
    try:
        graph.parse(data=body, format=guess, publicID=url)
    except Exception as exc:  # rdflib raises many kinds; all mean "cannot read this"
        raise HarvestError(
            f"{url}: not a DCAT catalogue rdflib can read as {guess} ({type(exc).__name__}: "
            f"{str(exc)[:200]}); serve Turtle, RDF/XML or JSON-LD"
        ) from None
    return graph


def _texts(graph: Graph, subject: Any, predicate: URIRef) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in graph.objects(subject, predicate):
        if isinstance(value, Literal):
            lang = LANGS.get((value.language or "en").lower())
            if lang and lang not in out:
                out[lang] = str(value)
    return out


def slug(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", folded).strip("-")[:80]


def read_dcat(session: httpx.Client, url: str, *, max_pages: int = 1000) -> Iterator[RemoteDataset]:
    page: str | None = url
    seen: set[str] = set()
    while page and page not in seen and len(seen) < max_pages:
        seen.add(page)
        body, media = get_bytes(session, page, accept=ACCEPT)
        graph = _parse(body, media, page)
        datasets = list(graph.subjects(RDF.type, DCAT.Dataset))
        if not datasets and len(seen) == 1 and not list(graph.subjects(RDF.type, DCAT.Catalog)):
            raise HarvestError(f"{url}: no dcat:Catalog or dcat:Dataset in it")
        for subject in datasets:
            yield _dataset(graph, subject)
        following = [str(n) for n in graph.objects(None, HYDRA.next)]
        page = following[0] if following else None


def _dataset(graph: Graph, subject: Any) -> RemoteDataset:
    remote_id = str(subject)
    titles = _texts(graph, subject, DCTERMS.title)
    identifier = next((str(i) for i in graph.objects(subject, DCTERMS.identifier)), "")
    base = slug(identifier) or slug(titles.get("en", "")) or "dataset"
    # A stable name: the same dataset is named alike on every harvest.
    name = f"{base[:70]}-{hashlib.sha1(remote_id.encode()).hexdigest()[:8]}"
    tags: dict[str, None] = {}
    for keyword in graph.objects(subject, DCAT.keyword):
        text = str(keyword).strip()
        if TAG_RE.match(text):
            tags[text] = None
    modified = next((str(m) for m in graph.objects(subject, DCTERMS.modified)), None)
    issued = next((str(m) for m in graph.objects(subject, DCTERMS.issued)), None)
    package: dict[str, Any] = {
        "title_translated": titles,
        "notes_translated": _texts(graph, subject, DCTERMS.description),
        "tags": [{"name": t} for t in tags],
        "resources": [
            _distribution(graph, d, i)
            for i, d in enumerate(sorted(graph.objects(subject, DCAT.distribution), key=str))
        ],
    }
    if isinstance(subject, URIRef):
        package["url"] = remote_id
    licence = next((str(x) for x in graph.objects(subject, DCTERMS.license)), None)
    if licence:
        package["license_id"] = licence[:100]
    for key, value in (("metadata_created", issued), ("metadata_modified", modified)):
        if value:
            package[key] = value
    publisher = next(iter(graph.objects(subject, DCTERMS.publisher)), None)
    organization = None
    if publisher is not None:
        names = _texts(graph, publisher, FOAF.name)
        org_name = slug(names.get("en", "")) or slug(str(publisher).rstrip("/").rsplit("/", 1)[-1])
        if org_name:
            organization = {"name": org_name[:100], "title_translated": names}
    return RemoteDataset(
        remote_id=remote_id,
        remote_name=name,
        modified=modified,
        package=package,
        organization=organization,
        page_url=next((str(p) for p in graph.objects(subject, DCAT.landingPage)), remote_id),
    )


def _distribution(graph: Graph, node: Any, position: int) -> dict[str, Any]:
    url = next(
        (str(u) for p in (DCAT.downloadURL, DCAT.accessURL) for u in graph.objects(node, p)), ""
    )
    media = next((str(m) for m in graph.objects(node, DCAT.mediaType)), None)
    fmt = next((str(f) for f in graph.objects(node, DCTERMS["format"])), "")
    return {
        "remote_id": str(node) if isinstance(node, URIRef) else f"{position}:{url}",
        "url": url,
        "kind": "api" if list(graph.objects(node, DCAT.accessService)) else "link",
        "name_translated": _texts(graph, node, DCTERMS.title),
        "description_translated": _texts(graph, node, DCTERMS.description),
        "format": fmt.rstrip("/").rsplit("/", 1)[-1][:100] or None,
        "mimetype": media.rsplit("/", 2)[-2] + "/" + media.rsplit("/", 1)[-1]
        if media and media.startswith("http")
        else media,
    }
