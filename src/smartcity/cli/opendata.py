"""``smartcity opendata ...``: seed the catalogue, name its sysadmins, grant roles.

Lives with the commands (not in ``smartcity.opendata``) because ``seed`` takes the
organisations from the portal's blueprint, and the two features do not import each other.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from smartcity.commandline import DatabaseOpt, open_database

if TYPE_CHECKING:
    from smartcity.opendata.catalogue.organisations import OrganisationService

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
