"""``CityDatasets``: publish the city's own data as datasets whose resources stay live.

* ``publish_type``: a hub entity type becomes a dataset with an NGSI-LD query link, CSV and
  GeoJSON downloads of the current state, the temporal API link and the history as daily CSV
  files, all generated on request (``citydata/endpoints.py``), so nothing is ever copied by
  hand. Its data dictionary is the type's attributes; a type a Hong Kong connector fills
  carries that feed's DATA.GOV.HK provenance (and its department as the default publisher).
* ``publish_portal``: the portal's measures with their progress, its KPIs and its moderated
  public comments, as datasets linking the portal's own CSV and JSON exports.

Publishing again updates the dataset in place (same name, same resource ids); every write
goes through ``CatalogueService``, so roles, the audit trail and the search index apply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from smartcity.hub.contexts import city_context
from smartcity.hub.runtime import Hub
from smartcity.opendata.catalogue import repository as repo
from smartcity.opendata.catalogue import tables
from smartcity.opendata.catalogue.access import Principal
from smartcity.opendata.catalogue.service import CatalogueService
from smartcity.opendata.citydata.exports import EntityType
from smartcity.opendata.citydata.provenance import Provenances
from smartcity.opendata.errors import ValidationFailed

TYPE_EXTRA = "hub_entity_type"
TENANT_EXTRA = "hub_tenant"
DEFAULT_LICENCE = "datagovhk-terms"
SAMPLE = 100  # entities read for the data dictionary's attribute types and units


def kebab(name: str) -> str:
    """``OffStreetParking`` → ``off-street-parking`` (a CKAN name's spelling)."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name.rsplit("/", 1)[-1].rsplit("#", 1)[-1])
    return re.sub(r"[^a-z0-9_-]+", "-", words.lower()).strip("-")[:80] or "entities"


def tri(en: str, tc: str, sc: str) -> dict[str, str]:
    return {"en": en, "zh-Hant": tc, "zh-Hans": sc}


@dataclass(frozen=True)
class PortalSet:
    """A portal export published as a dataset (the paths are the portal's public API)."""

    name: str
    title: dict[str, str]
    notes: dict[str, str]
    tags: tuple[str, ...]
    group: str
    resources: tuple[tuple[str, str, str, dict[str, str]], ...]  # (path, format, mime, name)


PORTAL_SETS: dict[str, PortalSet] = {
    "measures": PortalSet(
        "blueprint-measures",
        tri(
            "Smart city blueprint measures and progress",
            "智慧城市藍圖措施及進度",
            "智慧城市蓝图措施及进度",
        ),
        tri(
            "Every measure of the Smart City Blueprint with its area, status, progress (0-100) "
            "and responsible bureaux, as the portal shows them now.",
            "智慧城市藍圖每項措施的範疇、狀態、進度（0 至 100）及負責政策局，"
            "與平台現時顯示的相同。",
            "智慧城市蓝图每项措施的范畴、状态、进度（0 至 100）及负责政策局，"
            "与平台现时显示的相同。",
        ),
        ("smart-city", "blueprint", "measures"),
        "city-management",
        (
            (
                "/api/v1/measures.csv",
                "CSV",
                "text/csv",
                tri("Measures (CSV)", "措施（CSV）", "措施（CSV）"),
            ),
            (
                "/api/v1/measures?limit=1000",
                "JSON",
                "application/json",
                tri("Measures (JSON API)", "措施（JSON API）", "措施（JSON API）"),
            ),
            (
                "/api/v1/areas",
                "JSON",
                "application/json",
                tri("Progress by area (JSON)", "各範疇進度（JSON）", "各范畴进度（JSON）"),
            ),
        ),
    ),
    "kpis": PortalSet(
        "blueprint-kpis",
        tri(
            "Smart city key performance indicators", "智慧城市關鍵績效指標", "智慧城市关键绩效指标"
        ),
        tri(
            "The current-situation figures of the Smart City Blueprint by area, with their "
            "units and dates.",
            "智慧城市藍圖各範疇的現況數字，連同單位及日期。",
            "智慧城市蓝图各范畴的现况数字，连同单位及日期。",
        ),
        ("smart-city", "blueprint", "kpi"),
        "city-management",
        (
            (
                "/api/v1/kpis.csv",
                "CSV",
                "text/csv",
                tri("KPIs (CSV)", "指標（CSV）", "指标（CSV）"),
            ),
            (
                "/api/v1/kpis",
                "JSON",
                "application/json",
                tri("KPIs (JSON API)", "指標（JSON API）", "指标（JSON API）"),
            ),
        ),
    ),
    "comments": PortalSet(
        "blueprint-public-comments",
        tri(
            "Public comments on the smart city blueprint",
            "公眾對智慧城市藍圖的意見",
            "公众对智慧城市蓝图的意见",
        ),
        tri(
            "The published (moderated) public comments on the blueprint's measures and areas, "
            "with official replies. Without personal data: no names, e-mail addresses or "
            "identifiers of the people who wrote them.",
            "已發布（經審核）的公眾對藍圖措施及範疇的意見及官方回覆。不含個人資料：沒有撰寫人的姓名、電郵地址或識別碼。",
            "已发布（经审核）的公众对蓝图措施及范畴的意见及官方回复。不含个人资料：没有撰写人的姓名、电邮地址或识别码。",
        ),
        ("smart-city", "blueprint", "public-comments"),
        "city-management",
        (
            (
                "/api/v1/comments.csv",
                "CSV",
                "text/csv",
                tri("Published comments (CSV)", "已發布意見（CSV）", "已发布意见（CSV）"),
            ),
            (
                "/api/v1/comments.json",
                "JSON",
                "application/json",
                tri("Published comments (JSON)", "已發布意見（JSON）", "已发布意见（JSON）"),
            ),
        ),
    ),
}


class CityDatasets:
    def __init__(self, catalogue: CatalogueService, hub: Hub, provenances: Provenances) -> None:
        self.catalogue = catalogue
        self.hub = hub
        self.provenances = provenances

    # -- hub entity types ---------------------------------------------------------------------

    def entity_types(self, tenant: str = "") -> list[tuple[str, int]]:
        """The hub's entity types (the city @context's short names where it has them) with
        their entity counts: what ``publish_type`` can publish."""
        ctx = city_context()
        return sorted((ctx.compact(iri), n) for iri, n in self.hub.entities.types(tenant))

    def publish_type(
        self,
        p: Principal,
        base_url: str,
        entity_type: str,
        *,
        org: str | None = None,
        name: str | None = None,
        private: bool = False,
        tenant: str = "",
    ) -> dict[str, Any]:
        # Who may is checked before what is sent: no one else learns the hub's types here.
        p.require_writer("publish live city datasets")
        if org:
            with self.catalogue.db.read() as conn:
                found = repo.find_named(conn, tables.organisations, org)
            if found is not None:
                p.require(found.id, "editor", f"publish datasets in {found.name}")
        if not entity_type.strip():
            raise ValidationFailed.one("type", "give an entity type, e.g. OffStreetParking")
        ctx = city_context()
        iri = ctx.expand(entity_type.strip())
        short = ctx.compact(iri)
        details = self.hub.entities.type_details(tenant, iri)
        if details is None:
            known = ", ".join(ctx.compact(t) for t, _n in self.hub.entities.types(tenant)[:30])
            raise ValidationFailed.one(
                "type",
                f"the hub has no entities of type {entity_type!r}"
                + (f"; its types are: {known}" if known else "; it holds no entities yet"),
            )
        count, attrs = details
        feeds = self.provenances.for_type(short)
        owner = org or next((f.organisation for f in feeds if f.organisation), None)
        if not owner:
            raise ValidationFailed.one(
                "owner_org", "say which organization publishes the dataset (--org / owner_org)"
            )
        slug = name or f"live-{kebab(short)}"
        extras = {TYPE_EXTRA: iri, **Provenances.extras(feeds)}
        if tenant:
            extras[TENANT_EXTRA] = tenant
        publishers = "; ".join(sorted({f.publisher for f in feeds}))
        source_note = f" The data comes from DATA.GOV.HK ({publishers})." if feeds else ""
        data: dict[str, Any] = {
            "name": slug,
            "owner_org": owner,
            "title_translated": tri(
                f"{short} (live city data)", f"{short}（實時城市數據）", f"{short}（实时城市数据）"
            ),
            "notes_translated": tri(
                f"Every {short} entity in the city data hub ({count} when published), live: the "
                "current state as an NGSI-LD query, CSV and GeoJSON, and the history through the "
                f"temporal API and as one CSV file per day.{source_note}",
                f"城市數據樞紐中所有 {short} 實體（發布時共 {count} 個）的實時數據："
                "現況可經 NGSI-LD "
                "查詢或以 CSV 及 GeoJSON 下載，歷史數據可經時序 API 或每日 CSV 檔案取得。",
                f"城市数据枢纽中所有 {short} 实体（发布时共 {count} 个）的实时数据："
                "现况可经 NGSI-LD "
                "查询或以 CSV 及 GeoJSON 下载，历史数据可经时序 API 或每日 CSV 文件取得。",
            ),
            "tags": [{"name": "live"}, {"name": "ngsi-ld"}, {"name": kebab(short)}],
            "license_id": DEFAULT_LICENCE,
            "frequency": "continuous",
            "private": private,
            "data_dictionary": self._dictionary(tenant, iri, attrs),
            "extras": [{"key": k, "value": v} for k, v in sorted(extras.items())],
        }
        if feeds:
            data["author"] = publishers
        dataset = self._upsert(p, base_url, data)
        resources = self._type_resources(dataset["id"], iri)
        return self._set_resources(p, base_url, dataset, resources)

    def _dictionary(self, tenant: str, iri: str, attrs: list[str]) -> list[dict[str, Any]]:
        """Each attribute's name, NGSI-LD type and unit, from a sample of the entities."""
        ctx = city_context()
        seen: dict[str, tuple[str, str | None]] = {}
        docs, _ = self.hub.entities.find(tenant, EntityType(iri, tenant).query, limit=SAMPLE)
        for doc in docs:
            for attr, instances in doc["attrs"].items():
                if attr not in seen and instances:
                    first = instances[0]
                    seen[attr] = (first.get("type", "Property"), first.get("unitCode"))
        fields: list[dict[str, Any]] = [
            {"name": "id", "type": "text", "description": "the entity's id (a URN)"},
            {"name": "type", "type": "text", "description": "the entity's type"},
        ]
        for attr in sorted(attrs, key=ctx.compact):
            kind, unit = seen.get(attr, ("Property", None))
            fields.append(
                {
                    "name": ctx.compact(attr),
                    "type": _field_type(kind),
                    "unit": unit,
                    "description": f"NGSI-LD {kind} {attr}",
                }
            )
        return fields

    @staticmethod
    def _type_resources(dataset_id: str, iri: str) -> list[dict[str, Any]]:
        query = urlencode({"type": iri})
        live = f"/dataset/{quote(dataset_id)}/live"
        return [
            {
                "kind": "hub-query",
                "url": f"/ngsi-ld/v1/entities?{query}",
                "format": "JSON-LD",
                "mimetype": "application/ld+json",
                "name_translated": tri(
                    "Current state (NGSI-LD API)", "現況（NGSI-LD API）", "现况（NGSI-LD API）"
                ),
            },
            {
                "kind": "live",
                "url": f"{live}/current.csv",
                "format": "CSV",
                "mimetype": "text/csv",
                "name_translated": tri("Current state (CSV)", "現況（CSV）", "现况（CSV）"),
            },
            {
                "kind": "live",
                "url": f"{live}/current.geojson",
                "format": "GeoJSON",
                "mimetype": "application/geo+json",
                "name_translated": tri(
                    "Current state (GeoJSON)", "現況（GeoJSON）", "现况（GeoJSON）"
                ),
            },
            {
                "kind": "hub-query",
                "url": f"/ngsi-ld/v1/temporal/entities?{query}",
                "format": "JSON-LD",
                "mimetype": "application/ld+json",
                "name_translated": tri(
                    "History (NGSI-LD temporal API)",
                    "歷史（NGSI-LD 時序 API）",
                    "历史（NGSI-LD 时序 API）",
                ),
            },
            {
                "kind": "live",
                "url": f"{live}/history",
                "format": "JSON",
                "mimetype": "application/json",
                "name_translated": tri(
                    "History, one CSV file per day (index)",
                    "歷史，每日一個 CSV 檔案（索引）",
                    "历史，每日一个 CSV 文件（索引）",
                ),
                "description_translated": tri(
                    "The days and their CSV files: /history/YYYY-MM-DD.csv (Hong Kong days).",
                    "各日及其 CSV 檔案：/history/YYYY-MM-DD.csv（香港時間）。",
                    "各日及其 CSV 文件：/history/YYYY-MM-DD.csv（香港时间）。",
                ),
            },
        ]

    # -- the portal's datasets ----------------------------------------------------------------

    def publish_portal(
        self, p: Principal, base_url: str, which: str, *, org: str
    ) -> dict[str, Any]:
        spec = PORTAL_SETS.get(which)
        if spec is None:
            raise ValidationFailed.one(
                "dataset", f"unknown portal dataset {which!r}; choose {', '.join(PORTAL_SETS)}"
            )
        data: dict[str, Any] = {
            "name": spec.name,
            "owner_org": org,
            "title_translated": spec.title,
            "notes_translated": spec.notes,
            "tags": [{"name": tag} for tag in spec.tags],
            "license_id": DEFAULT_LICENCE,
            "frequency": "continuous",
            "extras": [{"key": "portal_export", "value": which}],
        }
        with self.catalogue.db.read() as conn:
            if repo.find_named(conn, tables.groups, spec.group) is not None:
                data["groups"] = [{"name": spec.group}]
        dataset = self._upsert(p, base_url, data)
        resources = [
            {"kind": "live", "url": path, "format": fmt, "mimetype": mime, "name_translated": title}
            for path, fmt, mime, title in spec.resources
        ]
        return self._set_resources(p, base_url, dataset, resources)

    # -- writes -------------------------------------------------------------------------------

    def _upsert(self, p: Principal, base_url: str, data: dict[str, Any]) -> dict[str, Any]:
        with self.catalogue.db.read() as conn:
            exists = repo.find_dataset(conn, data["name"]) is not None
        if exists:
            return self.catalogue.package_patch(p, "en", base_url, {**data, "id": data["name"]})
        return self.catalogue.package_create(p, "en", base_url, data)

    def _set_resources(
        self,
        p: Principal,
        base_url: str,
        dataset: dict[str, Any],
        wanted: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """The live resources, keeping the ids of those already there (matched by URL) and
        any resource an editor added by hand."""
        ours = {r["url"].removeprefix(base_url.rstrip("/")) for r in wanted}
        by_url = {r["url"].removeprefix(base_url.rstrip("/")): r for r in dataset["resources"]}
        keep = [
            {"id": r["id"]}
            for url, r in by_url.items()
            if url not in ours and r["kind"] not in ("live", "hub-query")
        ]
        resources = [
            {**r, **({"id": by_url[r["url"]]["id"]} if r["url"] in by_url else {})} for r in wanted
        ]
        return self.catalogue.package_patch(
            p, "en", base_url, {"id": dataset["id"], "resources": resources + keep}
        )


def _field_type(kind: str) -> str:
    return {
        "GeoProperty": "geojson",
        "Relationship": "uri",
        "ListRelationship": "json",
        "LanguageProperty": "json",
        "JsonProperty": "json",
        "ListProperty": "json",
        "VocabProperty": "uri",
    }.get(kind, "text")
