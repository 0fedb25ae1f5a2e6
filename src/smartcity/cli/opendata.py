"""``smartcity opendata ...``: seed the catalogue, name its sysadmins, grant roles, publish
live city datasets.

Lives with the commands (not in ``smartcity.opendata``) because ``seed`` takes the
organisations from the portal's blueprint, and the two features do not import each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from smartcity.commandline import DatabaseOpt, open_database

if TYPE_CHECKING:
    from smartcity.opendata.catalogue.organisations import OrganisationService
    from smartcity.opendata.citydata.publish import CityDatasets
    from smartcity.opendata.runtime import OpenData

opendata_app = typer.Typer(
    help="The open data portal (CKAN Action API at /api/3/action): catalogue set-up and roles.",
    no_args_is_help=True,
)
sysadmin_app = typer.Typer(help="Who may do everything in the catalogue.", no_args_is_help=True)
member_app = typer.Typer(
    help="Roles in organizations (admin, editor, member).", no_args_is_help=True
)
archive_app = typer.Typer(
    help="The historical archive (/api/v1/historical-archive): snapshots and retention.",
    no_args_is_help=True,
)
opendata_app.add_typer(sysadmin_app, name="sysadmin")
opendata_app.add_typer(member_app, name="member")
harvest_app = typer.Typer(
    help="Harvest datasets from another CKAN (DATA.GOV.HK's three languages merged) or a DCAT "
    "catalogue; repeated harvests update in place.",
    no_args_is_help=True,
)
opendata_app.add_typer(archive_app, name="archive")
opendata_app.add_typer(harvest_app, name="harvest")
console = Console()
err = Console(stderr=True)


def _opendata(database: str | None) -> OpenData:
    from smartcity.config import OpenDataSettings, Settings
    from smartcity.opendata.runtime import build_opendata

    db = open_database(database, current=True)
    forbid = Settings.from_env(db.url).forbid_private_targets
    return build_opendata(db, OpenDataSettings.from_env(), forbid_private_targets=forbid)


def _service(database: str | None) -> OrganisationService:
    return _opendata(database).organisations


def organisation_slug(code: str) -> str:
    """A blueprint organisation code as a CKAN name: ``C&ED`` → ``c-and-ed``."""
    return code.lower().replace("&", "-and-")


@opendata_app.command("seed")
def seed(database: DatabaseOpt = None) -> None:
    """Create the blueprint's bureaux and departments as organizations, DATA.GOV.HK's 18
    categories as groups, and the licences; safe to re-run (keeps what exists)."""
    from smartcity.opendata.catalogue.organisations import SeedOrganisation
    from smartcity.portal.blueprint.dataset import load_blueprint

    organisations = [
        SeedOrganisation(organisation_slug(org.code), org.name.model_dump(by_alias=True))
        for org in load_blueprint().organisations
    ]
    created = _service(database).seed(organisations)
    table = Table("what", "created")
    for name, count in created.items():
        table.add_row(name, str(count))
    console.print(table)


@sysadmin_app.command("add")
def sysadmin_add(
    name: Annotated[str, typer.Argument(help="The user: an API key's name")],
    database: DatabaseOpt = None,
) -> None:
    """Make NAME a sysadmin (keys named NAME may then do everything)."""
    _service(database).set_sysadmin(name, True)
    console.print(f"{name} is a sysadmin")


@sysadmin_app.command("remove")
def sysadmin_remove(name: str, database: DatabaseOpt = None) -> None:
    """Take NAME's sysadmin rights away."""
    _service(database).set_sysadmin(name, False)
    console.print(f"{name} is no longer a sysadmin")


@sysadmin_app.command("list")
def sysadmin_list(database: DatabaseOpt = None) -> None:
    """List the sysadmins."""
    for name in _service(database).sysadmins():
        print(name)


@member_app.command("add")
def member_add(
    organization: Annotated[str, typer.Argument(help="The organization's name or id")],
    name: Annotated[str, typer.Argument(help="The user: an API key's name")],
    role: Annotated[str, typer.Option(help="admin, editor or member")] = "editor",
    database: DatabaseOpt = None,
) -> None:
    """Give NAME a role in ORGANIZATION (as organization_member_create does)."""
    from smartcity.opendata.catalogue.access import NO_AUTH
    from smartcity.opendata.errors import OpenDataError

    try:
        _service(database).member_create(NO_AUTH, organization, name, role)
    except OpenDataError as exc:
        err.print(f"[red]error:[/] {exc.message}")
        raise typer.Exit(1) from None
    console.print(f"{name} is {role} of {organization}")


@opendata_app.command("reindex")
def reindex(database: DatabaseOpt = None) -> None:
    """Rewrite every dataset's search index: its words, facet values and the package dicts a
    search page is read from. Run it once after upgrading to migration 0029 (until then a
    dataset's page entry is built from its rows, as before), or to repair an index. Safe
    while the site runs: each batch of datasets is one transaction."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from sqlalchemy import select

    from smartcity.opendata.catalogue import tables as t
    from smartcity.opendata.search import index

    db = open_database(database, current=True)
    with db.read() as conn:
        ids = list(conn.execute(select(t.datasets.c.id).order_by(t.datasets.c.id)).scalars())
    with Progress(
        TextColumn("reindexing datasets"), BarColumn(), MofNCompleteColumn(), console=err
    ) as progress:
        task = progress.add_task("reindex", total=len(ids))
        for start in range(0, len(ids), REINDEX_BATCH):
            batch = ids[start : start + REINDEX_BATCH]
            with db.write() as conn:
                for dataset_id in batch:
                    index.reindex(conn, dataset_id)
            progress.advance(task, len(batch))
    console.print(f"reindexed {len(ids):,} dataset{'' if len(ids) == 1 else 's'}")


# Datasets per transaction of ``reindex``: a batch holds SQLite's write lock for ~0.4 s on a
# slow machine (10,000 datasets in 2.5 minutes), so the site's own writes wait little.
REINDEX_BATCH = 25


@archive_app.command("run")
def archive_run(database: DatabaseOpt = None) -> None:
    """Snapshot every resource now (links and APIs fetched, hub queries read from
    SMARTCITY_OPENDATA_SITE_URL), keeping a version where the content changed, then apply the
    retention settings. Exits 1 if any resource could not be read (the others are kept)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    od = _opendata(database)
    with Progress(
        TextColumn("archiving"), BarColumn(), MofNCompleteColumn(), console=err
    ) as progress:
        task = progress.add_task("archive", total=None)
        report = od.archive.run(
            progress=lambda _row: progress.advance(task),
            total=lambda n: progress.update(task, total=n),
        )
    table = Table("checked", "new versions", "unchanged", "failed", "versions pruned")
    table.add_row(
        str(report.checked),
        str(report.kept),
        str(report.unchanged),
        str(len(report.failed)),
        str(report.pruned),
    )
    console.print(table)
    for url, why in report.failed:
        err.print(f"[red]could not snapshot[/] {url}: {why}")
    if report.failed:
        raise typer.Exit(1)


@archive_app.command("prune")
def archive_prune(database: DatabaseOpt = None) -> None:
    """Apply the retention settings (SMARTCITY_OPENDATA_ARCHIVE_KEEP_VERSIONS, _KEEP_DAYS)
    and remove content no version needs any more."""
    pruned, removed = _opendata(database).archive.prune()
    console.print(f"{pruned} versions pruned, {removed} files removed")


OrganizationOpt = Annotated[
    str | None,
    typer.Option(help="Owner of the datasets whose source names no organisation"),
]


def _harvest(
    database: str | None,
    url: str,
    source_type: str,
    organization: str | None,
    read: Callable[..., Iterator[Any]],
) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from smartcity.opendata.harvest.http import client
    from smartcity.opendata.harvest.model import HarvestError
    from smartcity.opendata.harvest.service import Harvester

    od = _opendata(database)
    harvester = Harvester(od.catalogue, od.organisations)
    with Progress(
        TextColumn("harvesting"), BarColumn(), MofNCompleteColumn(), console=err
    ) as progress:
        task = progress.add_task("harvest", total=None)
        try:
            with client(od.archive.guard) as session:
                report = harvester.harvest(
                    url,
                    source_type,
                    read(session, url, lambda n: progress.update(task, total=n)),
                    organization=organization,
                    progress=lambda _d: progress.advance(task),
                )
        except HarvestError as exc:
            err.print(f"[red]error:[/] could not read {url}: {exc}")
            raise typer.Exit(1) from None
    table = Table("created", "updated", "unchanged", "withdrawn", "failed")
    table.add_row(
        str(report.created),
        str(report.updated),
        str(report.unchanged),
        str(report.deleted),
        str(len(report.failed)),
    )
    console.print(table)
    for name, why in report.failed:
        err.print(f"[red]not harvested[/] {name}: {why}")
    if report.failed:
        raise typer.Exit(1)


@harvest_app.command("ckan")
def harvest_ckan(
    url: Annotated[str, typer.Argument(help="The CKAN site, e.g. https://data.gov.hk")],
    rows: Annotated[
        int, typer.Option(min=1, max=1000, help="Datasets per package_search page")
    ] = 100,
    organization: OrganizationOpt = None,
    database: DatabaseOpt = None,
) -> None:
    """Pull every public dataset of the CKAN at URL (package_search, paged). Where the site
    answers at /en-data, /tc-data and /sc-data (DATA.GOV.HK), the three are merged into one
    trilingual dataset. Datasets harvested before are updated, never duplicated."""
    from smartcity.opendata.harvest.ckan import read_ckan

    def read(session: Any, source: str, total: Callable[[int], None]) -> Iterator[Any]:
        return read_ckan(session, source, rows=rows, total=total)

    _harvest(database, url.rstrip("/"), "ckan", organization, read)


@harvest_app.command("dcat")
def harvest_dcat(
    url: Annotated[str, typer.Argument(help="The catalogue: Turtle, RDF/XML or JSON-LD")],
    organization: OrganizationOpt = None,
    database: DatabaseOpt = None,
) -> None:
    """Read the DCAT catalogue at URL (following hydra:next pages) into datasets here;
    publishers become organisations. Datasets harvested before are updated in place."""
    from smartcity.opendata.harvest.dcat import read_dcat

    def read(session: Any, source: str, _total: Callable[[int], None]) -> Iterator[Any]:
        return read_dcat(session, source)

    _harvest(database, url, "dcat", organization, read)


datastore_app = typer.Typer(
    help="The DataStore: load tabular files into resources' tables.", no_args_is_help=True
)
opendata_app.add_typer(datastore_app, name="datastore")


@datastore_app.command("load")
def datastore_load(
    resource_id: Annotated[str, typer.Argument(help="The resource (it must exist)")],
    file: Annotated[Path, typer.Argument(help="A CSV, TSV, XLSX or JSON (Lines) file")],
    type_: Annotated[
        list[str] | None,
        typer.Option("--type", help="FIELD=TYPE overriding the inferred type (repeatable)"),
    ] = None,
    encoding: Annotated[
        str | None, typer.Option(help="The file's encoding (default: detected)")
    ] = None,
    format_: Annotated[
        str | None, typer.Option("--format", help="CSV, TSV, XLSX or JSON (default: extension)")
    ] = None,
    primary_key: Annotated[
        list[str] | None, typer.Option("--primary-key", help="A primary key field (repeatable)")
    ] = None,
    database: DatabaseOpt = None,
) -> None:
    """Replace RESOURCE_ID's DataStore table with FILE's rows, with a progress bar. Bad rows
    are skipped and listed by line number; a load that fails leaves the table as it was."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    from smartcity.config import OpenDataSettings
    from smartcity.opendata.catalogue.access import NO_AUTH
    from smartcity.opendata.datastore.loader import LoadError, load_file, record_load
    from smartcity.opendata.errors import OpenDataError
    from smartcity.opendata.runtime import build_opendata

    types: dict[str, str] = {}
    for item in type_ or []:
        name, sep, kind = item.partition("=")
        if not sep:
            err.print(f"[red]error:[/] --type {item!r}: write FIELD=TYPE (e.g. code=text)")
            raise typer.Exit(2)
        types[name.strip()] = kind.strip()
    if not file.is_file():
        err.print(f"[red]error:[/] no file {file}")
        raise typer.Exit(2)
    od = build_opendata(open_database(database, current=True), OpenDataSettings.from_env())
    try:
        with od.datastore.db.read() as conn:
            od.datastore.resource(conn, NO_AUTH, resource_id, write=False)
    except OpenDataError as exc:
        err.print(f"[red]error:[/] {exc.message}: create it first (resource_create)")
        raise typer.Exit(1) from None
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err,
    ) as bar:
        task = bar.add_task(f"loading {file.name}", total=file.stat().st_size)
        try:
            report = load_file(
                od.datastore,
                resource_id,
                file,
                fmt=format_,
                encoding=encoding,
                types=types,
                primary_key=primary_key,
                progress=lambda done: bar.update(task, completed=done),
            )
        except (LoadError, OpenDataError) as exc:
            message = exc.message if isinstance(exc, OpenDataError) else str(exc)
            err.print(f"[red]error:[/] {message}; the table is unchanged")
            raise typer.Exit(1) from None
    record_load(od.datastore, resource_id, "complete", report, None)
    console.print(
        f"loaded {report.rows_loaded} rows into {resource_id}"
        + (f" ({report.encoding})" if report.encoding else "")
        + ": "
        + ", ".join(f"{f.id} {f.type}" for f in report.fields)
    )
    if report.bad_row_count:
        err.print(f"[yellow]{report.bad_row_count} bad rows skipped:[/]")
        for bad in report.bad_rows[:50]:
            err.print(f"  line {bad['line']}: {bad['error']}")
        if report.bad_row_count > 50:
            err.print("  ... (datastore_info lists the first 1,000)")


@contextmanager
def _city(database: str | None) -> Iterator[CityDatasets]:
    """Live city datasets with the hub, as the server builds them (app.py's provenance)."""
    from smartcity.app import connector_provenance
    from smartcity.config import Settings
    from smartcity.hub.runtime import open_hub
    from smartcity.opendata.runtime import build_opendata

    db = open_database(database, current=True)
    settings = Settings.from_env(db.url)
    with open_hub(settings, db) as hub:
        yield build_opendata(db, settings.opendata, hub, connector_provenance()).city


def _published(dataset: dict[str, Any]) -> None:
    console.print(f"published [bold]{dataset['name']}[/] ({dataset['id']}):")
    for resource in dataset["resources"]:
        console.print(f"  {resource['format']:8} {resource['name']}: {resource['url']}")


@opendata_app.command("publish-type")
def publish_type(
    entity_type: Annotated[
        str, typer.Argument(metavar="TYPE", help="An entity type in the hub, e.g. OffStreetParking")
    ],
    org: Annotated[
        str | None,
        typer.Option(help="The publishing organization (default: the feed's department)"),
    ] = None,
    name: Annotated[str | None, typer.Option(help="The dataset's name (live-<type>)")] = None,
    private: Annotated[bool, typer.Option(help="Visible to the organization only")] = False,
    site: Annotated[
        str, typer.Option(help="The site's address, for the links printed")
    ] = "http://127.0.0.1:8000",
    database: DatabaseOpt = None,
) -> None:
    """Publish (or refresh) a hub entity type as a live dataset: NGSI-LD query, CSV and
    GeoJSON of the current state, temporal API and daily history CSV, generated on request."""
    from smartcity.opendata.catalogue.access import NO_AUTH
    from smartcity.opendata.errors import OpenDataError

    try:
        with _city(database) as city:
            dataset = city.publish_type(
                NO_AUTH, site, entity_type, org=org, name=name, private=private
            )
    except OpenDataError as exc:
        err.print(f"[red]error:[/] {exc.message}")
        raise typer.Exit(1) from None
    _published(dataset)


@opendata_app.command("publish-portal")
def publish_portal(
    org: Annotated[str, typer.Option(help="The publishing organization, e.g. itb")],
    which: Annotated[
        list[str] | None,
        typer.Argument(metavar="[DATASET]...", help="measures, kpis, comments (default: all)"),
    ] = None,
    site: Annotated[
        str, typer.Option(help="The site's address, for the links printed")
    ] = "http://127.0.0.1:8000",
    database: DatabaseOpt = None,
) -> None:
    """Publish (or refresh) the portal's measures with their progress, its KPIs and its
    moderated public comments (without personal data) as live datasets."""
    from smartcity.opendata.catalogue.access import NO_AUTH
    from smartcity.opendata.citydata.publish import PORTAL_SETS
    from smartcity.opendata.errors import OpenDataError

    try:
        with _city(database) as city:
            for one in which or list(PORTAL_SETS):
                _published(city.publish_portal(NO_AUTH, site, one, org=org))
    except OpenDataError as exc:
        err.print(f"[red]error:[/] {exc.message}")
        raise typer.Exit(1) from None
