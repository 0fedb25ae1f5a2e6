"""CKAN dataset dicts → a DCAT-AP 3 graph (rdflib), for the catalogue and for one dataset.

Every node the DCAT-AP 3.0.0 SHACL shapes constrain with ``sh:class`` carries its type
explicitly (publishers are ``foaf:Agent``, licences ``dct:LicenseDocument``, themes
``skos:Concept`` ...), even the access URLs (``rdfs:Resource``): a validator that does no RDFS
inference, as pyshacl by default, would otherwise count each as a violation. Texts are
language-tagged literals in the three languages the catalogue keeps (``en``, ``zh-Hant``,
``zh-Hans``).

Names of things: a dataset is ``{site}/dataset/{id}`` (ids survive renames), its
distributions ``{site}/dataset/{id}/resource/{resource id}``, a publisher
``{site}/organization/{name}``, the catalogue ``{site}/catalog``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import RDF, RDFS, XSD
from shapely.geometry import shape

from smartcity.opendata.dcat import vocab as v
from smartcity.opendata.languages import LANGS

SITE_TITLE = {
    "en": "Hong Kong City Data Catalogue",
    "zh-Hant": "香港城市數據目錄",
    "zh-Hans": "香港城市数据目录",
}
SITE_DESCRIPTION = {
    "en": "Open datasets of the city's bureaux and departments, and live city data from the "
    "platform's hub, described with DCAT-AP 3.",
    "zh-Hant": "政策局及部門的開放數據集，以及平台數據樞紐的實時城市數據，以 DCAT-AP 3 描述。",
    "zh-Hans": "政策局及部门的开放数据集，以及平台数据枢纽的实时城市数据，以 DCAT-AP 3 描述。",
}
SITE_PUBLISHER = {
    "en": "Smart City Open Data Portal",
    "zh-Hant": "智慧城市開放數據平台",
    "zh-Hans": "智慧城市开放数据平台",
}


@dataclass(frozen=True)
class Page:
    """Where a page of the catalogue sits, for Hydra's paging links."""

    number: int
    size: int
    total: int
    url: str  # the page's URL without the page parameter (format and filters kept)

    @property
    def last(self) -> int:
        return max(1, -(-self.total // self.size))

    def link(self, number: int) -> URIRef:
        joiner = "&" if "?" in self.url else "?"
        return URIRef(f"{self.url}{joiner}page={number}")


def bind(graph: Graph) -> Graph:
    for prefix, ns in (
        ("dcat", v.DCAT),
        ("dct", v.DCT),
        ("foaf", v.FOAF),
        ("vcard", v.VCARD),
        ("spdx", v.SPDX),
        ("hydra", v.HYDRA),
        ("locn", v.LOCN),
        ("gsp", v.GSP),
        ("prov", v.PROV),
        ("skos", v.SKOS),
    ):
        graph.bind(prefix, ns)
    return graph


def _texts(graph: Graph, subject: Any, predicate: URIRef, texts: Mapping[str, str]) -> bool:
    found = False
    for lang in LANGS:
        text = (texts.get(lang) or "").strip()
        if text:
            graph.add((subject, predicate, Literal(text, lang=lang)))
            found = True
    return found


def _typed(graph: Graph, node: URIRef | BNode, cls: URIRef) -> URIRef | BNode:
    graph.add((node, RDF.type, cls))
    return node


def _datetime(iso: str | None) -> Literal | None:
    return Literal(iso + "Z" if "+" not in iso else iso, datatype=XSD.dateTime) if iso else None


# The site's APIs, listed as dcat:DataService (DCAT-AP 3 asks a service for its endpoint URL and
# title; its description and the datasets it serves are recommended). Keyed by what they are.
SERVICES: dict[str, tuple[str, str, dict[str, str]]] = {
    # key: (endpoint path, description path, title)
    "ckan": (
        "/api/3/action/",
        "/api/3/action/help_show?name=package_search",
        {
            "en": "Catalogue API (CKAN Action API)",
            "zh-Hant": "目錄 API（CKAN Action API）",
            "zh-Hans": "目录 API（CKAN Action API）",
        },
    ),
    "datastore": (
        "/api/3/action/datastore_search",
        "/api/3/action/help_show?name=datastore_search",
        {
            "en": "DataStore API: search the tables of the datasets",
            "zh-Hant": "DataStore API：搜尋數據集的表格",
            "zh-Hans": "DataStore API：搜寻数据集的表格",
        },
    ),
    "ngsi-ld": (
        "/ngsi-ld/v1/",
        "/openapi.json",
        {
            "en": "City data hub (NGSI-LD API)",
            "zh-Hant": "城市數據樞紐（NGSI-LD API）",
            "zh-Hans": "城市数据枢纽（NGSI-LD API）",
        },
    ),
}


class CatalogueGraph:
    """Builds one graph: the catalogue node, datasets, and the shared nodes they point to."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")
        self.graph = bind(Graph())
        self._concepts: set[str] = set()

    # -- shared nodes -------------------------------------------------------------------------

    def _concept(self, iri: str, label: str, scheme: str | None = None) -> URIRef:
        node = URIRef(iri)
        if iri not in self._concepts:
            self._concepts.add(iri)
            _typed(self.graph, node, v.SKOS.Concept)
            self.graph.add((node, v.SKOS.prefLabel, Literal(label, lang="en")))
            if scheme:
                self.graph.add((node, v.SKOS.inScheme, URIRef(scheme)))
        return node

    def _language(self, key: str) -> URIRef:
        code = v.LANGUAGES[key]
        node = URIRef(v.LANGUAGE[code])
        _typed(self.graph, node, v.DCT.LinguisticSystem)
        return node

    def _publisher(self, org: Mapping[str, Any] | None) -> URIRef:
        if org is None:
            node = URIRef(self.base + "/")
            _typed(self.graph, node, v.FOAF.Agent)
            _texts(self.graph, node, v.FOAF.name, SITE_PUBLISHER)
            return node
        node = URIRef(f"{self.base}/organization/{org['name']}")
        _typed(self.graph, node, v.FOAF.Agent)
        _typed(self.graph, node, v.FOAF.Organization)
        if not _texts(self.graph, node, v.FOAF.name, org.get("title_translated") or {}):
            self.graph.add((node, v.FOAF.name, Literal(org.get("title") or org["name"])))
        return node

    def _resource(self, url: str) -> URIRef:
        node = URIRef(url)
        _typed(self.graph, node, RDFS.Resource)
        return node

    def _document(self, url: str) -> URIRef:
        node = URIRef(url)
        _typed(self.graph, node, v.FOAF.Document)
        return node

    def _service(self, key: str) -> URIRef:
        endpoint, description, title = SERVICES[key]
        node = URIRef(self.base + endpoint)
        if (node, RDF.type, v.DCAT.DataService) not in self.graph:
            _typed(self.graph, node, v.DCAT.DataService)
            _texts(self.graph, node, v.DCT.title, title)
            self.graph.add((node, v.DCAT.endpointURL, self._resource(self.base + endpoint)))
            self.graph.add(
                (node, v.DCAT.endpointDescription, self._resource(self.base + description))
            )
        return node

    def _licence(self, package: Mapping[str, Any]) -> URIRef | None:
        licence_id = package.get("license_id")
        if not licence_id:
            return None
        node = URIRef(package.get("license_url") or f"{self.base}/licence/{licence_id}")
        _typed(self.graph, node, v.DCT.LicenseDocument)
        self.graph.add((node, RDFS.label, Literal(package.get("license_title") or licence_id)))
        return node

    # -- the catalogue ------------------------------------------------------------------------

    def catalogue(self, page: Page | None, modified: str | None) -> URIRef:
        g = self.graph
        node = URIRef(self.base + "/catalog")
        _typed(g, node, v.DCAT.Catalog)
        _texts(g, node, v.DCT.title, SITE_TITLE)
        _texts(g, node, v.DCT.description, SITE_DESCRIPTION)
        g.add((node, v.DCT.publisher, self._publisher(None)))
        g.add((node, v.FOAF.homepage, self._document(self.base + "/")))
        for key in ("en", "zh-Hant"):
            g.add((node, v.DCT.language, self._language(key)))
        scheme = URIRef(v.THEME_SCHEME)
        _typed(g, scheme, v.SKOS.ConceptScheme)
        g.add((scheme, v.DCT.title, Literal("Data theme", lang="en")))
        g.add((node, v.DCAT.themeTaxonomy, scheme))
        stamp = _datetime(modified)
        if stamp is not None:
            g.add((node, v.DCT.modified, stamp))
        for key in SERVICES:  # the APIs every dataset of the site is reachable through
            g.add((node, v.DCAT.service, self._service(key)))
        if page is not None:
            self._paging(node, page)
        return node

    def _paging(self, catalogue: URIRef, page: Page) -> None:
        """Hydra's paging, both spellings harvesters read: the older ``hydra:PagedCollection``
        (ckanext-dcat's) and the current ``hydra:PartialCollectionView``."""
        g = self.graph
        here = page.link(page.number)
        _typed(g, here, v.HYDRA.PagedCollection)
        _typed(g, here, v.HYDRA.PartialCollectionView)
        g.add((here, v.HYDRA.totalItems, Literal(page.total, datatype=XSD.integer)))
        g.add((here, v.HYDRA.itemsPerPage, Literal(page.size, datatype=XSD.integer)))
        links = {"first": 1, "last": page.last}
        if page.number > 1:
            links["previous"] = min(page.number - 1, page.last)
        if page.number < page.last:
            links["next"] = page.number + 1
        old = {"first": "firstPage", "last": "lastPage", "previous": "previousPage"}
        for name, number in links.items():
            g.add((here, v.HYDRA[name], page.link(number)))
            g.add((here, v.HYDRA[old.get(name, "nextPage")], page.link(number)))
        g.add((catalogue, v.HYDRA.view, here))
        g.add((catalogue, v.HYDRA.totalItems, Literal(page.total, datatype=XSD.integer)))

    # -- datasets -----------------------------------------------------------------------------

    def dataset(self, package: Mapping[str, Any], catalogue: URIRef | None = None) -> URIRef:
        g = self.graph
        node = URIRef(f"{self.base}/dataset/{package['id']}")
        _typed(g, node, v.DCAT.Dataset)
        if catalogue is not None:
            g.add((catalogue, v.DCAT.dataset, node))
        if not _texts(g, node, v.DCT.title, package.get("title_translated") or {}):
            g.add((node, v.DCT.title, Literal(package.get("title") or package["name"])))
        # dct:description is mandatory: a dataset without notes is described by its title.
        described = _texts(g, node, v.DCT.description, package.get("notes_translated") or {})
        if not described:
            described = _texts(g, node, v.DCT.description, package.get("title_translated") or {})
        if not described:
            g.add((node, v.DCT.description, Literal(package["name"])))
        g.add((node, v.DCT.identifier, Literal(package["id"])))
        g.add((node, v.DCT.publisher, self._publisher(package.get("organization"))))
        g.add((node, v.DCAT.landingPage, self._document(f"{self.base}/dataset/{package['name']}")))
        for stamp_name, key in (("issued", "metadata_created"), ("modified", "metadata_modified")):
            stamp = _datetime(package.get(key))
            if stamp is not None:
                g.add((node, v.DCT[stamp_name], stamp))
        for tag in package.get("tags") or []:
            g.add((node, v.DCAT.keyword, Literal(tag["name"])))
        themes = {v.theme_of(group["name"]) for group in package.get("groups") or []}
        for code in sorted(themes or {v.DEFAULT_THEME}):
            g.add(
                (node, v.DCAT.theme, self._concept(v.THEME[code], v.THEMES[code], v.THEME_SCHEME))
            )
        for lang in self._languages(package):
            g.add((node, v.DCT.language, self._language(lang)))
        frequency = v.FREQUENCIES.get(package.get("frequency") or "")
        if frequency:
            freq = URIRef(v.FREQUENCY[frequency])
            _typed(g, freq, v.DCT.Frequency)
            g.add((node, v.DCT.accrualPeriodicity, freq))
        if package.get("version"):
            g.add((node, v.DCAT.version, Literal(package["version"])))
        self._temporal(node, package)
        self._spatial(node, package)
        self._contact(node, package)
        self._provenance(node, package)
        licence = self._licence(package)
        for resource in package.get("resources") or []:
            g.add((node, v.DCAT.distribution, self.distribution(package, resource, licence)))
        return node

    @staticmethod
    def _languages(package: Mapping[str, Any]) -> list[str]:
        """The languages the dataset is described in (both Chinese scripts are Chinese)."""
        title = package.get("title_translated") or {}
        return [lang for lang in LANGS if (title.get(lang) or "").strip()] or ["en"]

    def _temporal(self, node: URIRef, package: Mapping[str, Any]) -> None:
        start, end = package.get("temporal_start"), package.get("temporal_end")
        if not start and not end:
            return
        period = _typed(self.graph, BNode(), v.DCT.PeriodOfTime)
        for predicate, value in ((v.DCAT.startDate, start), (v.DCAT.endDate, end)):
            if value:
                kind = XSD.date if len(value) == 10 else XSD.dateTime
                self.graph.add((period, predicate, Literal(value, datatype=kind)))
        self.graph.add((node, v.DCT.temporal, period))

    def _spatial(self, node: URIRef, package: Mapping[str, Any]) -> None:
        geometry = package.get("spatial")
        if not geometry:
            return
        try:
            geom = shape(geometry)
        except (ValueError, TypeError, KeyError, AttributeError):
            return
        location = _typed(self.graph, BNode(), v.DCT.Location)
        # locn:geometry must be a node of its own in DCAT-AP 3; the bounding box and the
        # centroid are plain WKT literals, which harvesters read without a geometry model.
        self.graph.add(
            (location, v.DCAT.centroid, Literal(geom.centroid.wkt, datatype=v.GSP.wktLiteral))
        )
        if geom.geom_type != "Point":
            self.graph.add(
                (location, v.DCAT.bbox, Literal(geom.envelope.wkt, datatype=v.GSP.wktLiteral))
            )
        _texts(
            self.graph, location, v.SKOS.prefLabel, package.get("spatial_label_translated") or {}
        )
        self.graph.add((node, v.DCT.spatial, location))

    def _contact(self, node: URIRef, package: Mapping[str, Any]) -> None:
        name = package.get("maintainer") or package.get("author")
        email = package.get("maintainer_email") or package.get("author_email")
        if not name and not email:
            return
        kind = _typed(self.graph, BNode(), v.VCARD.Kind)
        _typed(self.graph, kind, v.VCARD.Organization)
        self.graph.add((kind, v.VCARD.fn, Literal(name or email)))
        if email:
            self.graph.add((kind, v.VCARD.hasEmail, URIRef(f"mailto:{email}")))
        self.graph.add((node, v.DCAT.contactPoint, kind))

    def _provenance(self, node: URIRef, package: Mapping[str, Any]) -> None:
        """Where the data comes from (live city datasets fed by the Hong Kong connectors name
        their DATA.GOV.HK sources in the extras ``provenance`` and ``source_url``)."""
        extras = {e["key"]: e["value"] for e in package.get("extras") or []}
        text = extras.get("provenance")
        if text:
            statement = _typed(self.graph, BNode(), v.DCT.ProvenanceStatement)
            self.graph.add((statement, RDFS.label, Literal(str(text), lang="en")))
            self.graph.add((node, v.DCT.provenance, statement))
        for url in str(extras.get("source_url") or "").split():
            self.graph.add((node, v.PROV.wasDerivedFrom, URIRef(url)))

    def distribution(
        self, package: Mapping[str, Any], resource: Mapping[str, Any], licence: URIRef | None
    ) -> URIRef:
        g = self.graph
        node = URIRef(f"{self.base}/dataset/{package['id']}/resource/{resource['id']}")
        _typed(g, node, v.DCAT.Distribution)
        url = resource.get("url") or node
        g.add((node, v.DCAT.accessURL, self._resource(str(url))))
        dataset = URIRef(f"{self.base}/dataset/{package['id']}")
        served = ["datastore"] if resource.get("datastore_active") else []
        if resource.get("kind") == "hub-query":
            served.append("ngsi-ld")
        for key in served:  # the API this distribution is also reached through
            service = self._service(key)
            g.add((node, v.DCAT.accessService, service))
            g.add((service, v.DCAT.servesDataset, dataset))
        if resource.get("kind") in ("upload", "live"):
            g.add((node, v.DCAT.downloadURL, self._resource(str(url))))
        _texts(g, node, v.DCT.title, resource.get("name_translated") or {})
        _texts(g, node, v.DCT.description, resource.get("description_translated") or {})
        fmt = (resource.get("format") or "").upper()
        if fmt in v.EU_FILE_TYPES:
            file_type = URIRef(v.FILE_TYPE[v.EU_FILE_TYPES[fmt]])
            _typed(g, file_type, v.DCT.MediaTypeOrExtent)
            g.add((node, v.DCT["format"], file_type))
        media = resource.get("mimetype") or v.MEDIA_TYPES.get(fmt)
        if media and "/" in media:
            media_node = URIRef(v.IANA + media.split(";")[0].strip())
            _typed(g, media_node, v.DCT.MediaType)
            g.add((node, v.DCAT.mediaType, media_node))
        if licence is not None:
            g.add((node, v.DCT.license, licence))
        for stamp_name, key in (("issued", "created"), ("modified", "last_modified")):
            stamp = _datetime(resource.get(key))
            if stamp is not None:
                g.add((node, v.DCT[stamp_name], stamp))
        if resource.get("size") is not None:
            g.add(
                (node, v.DCAT.byteSize, Literal(resource["size"], datatype=XSD.nonNegativeInteger))
            )
        digest = resource.get("hash") or ""
        if len(digest) == 64:
            checksum = _typed(g, BNode(), v.SPDX.Checksum)
            algorithm = URIRef(v.SPDX.checksumAlgorithm_sha256)
            _typed(g, algorithm, v.SPDX.ChecksumAlgorithm)
            g.add((checksum, v.SPDX.algorithm, algorithm))
            g.add((checksum, v.SPDX.checksumValue, Literal(digest, datatype=XSD.hexBinary)))
            g.add((node, v.SPDX.checksum, checksum))
        for lang in resource.get("language") or []:
            if lang in v.LANGUAGES:
                g.add((node, v.DCT.language, self._language(lang)))
        return node


def catalogue_graph(
    base_url: str,
    packages: Iterable[Mapping[str, Any]],
    *,
    page: Page | None,
    modified: str | None,
) -> Graph:
    built = CatalogueGraph(base_url)
    catalogue = built.catalogue(page, modified)
    for package in packages:
        built.dataset(package, catalogue)
    return built.graph


def dataset_graph(base_url: str, package: Mapping[str, Any]) -> Graph:
    built = CatalogueGraph(base_url)
    built.dataset(package)
    return built.graph
