"""``smartcity opendata ...``: seed the catalogue, name its sysadmins, grant roles, publish
live city datasets.

Lives with the commands (not in ``smartcity.opendata``) because ``seed`` takes the
organisations from the portal's blueprint, and the two features do not import each other.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from smartcity.commandline import DatabaseOpt, open_database

if TYPE_CHECKING:
    from smartcity.opendata.catalogue.organisations import OrganisationService
    from smartcity.opendata.citydata.publish import CityDatasets

opendata_app = typer.Typer(
    help="The open data portal (CKAN Action API at /api/3/action): catalogue set-up and roles.",
    no_args_is_help=True,
)
sysadmin_app = typer.Typer(help="Who may do everything in the catalogue.", no_args_is_help=True)
member_app = typer.Typer(
    help="Roles in organizations (admin, editor, member).", no_args_is_help=True
)
opendata_app.add_typer(sysadmin_app, name="sysadmin")
opendata_app.add_typer(member_app, name="member")
console = Console()
err = Console(stderr=True)


def _service(database: str | None) -> OrganisationService:
    from smartcity.config import OpenDataSettings
    from smartcity.opendata.runtime import build_opendata

    db = open_database(database, current=True)
    return build_opendata(db, OpenDataSettings.from_env()).organisations


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
