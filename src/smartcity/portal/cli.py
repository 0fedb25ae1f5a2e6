"""``smartcity blueprint ...`` (load, export, import) and ``smartcity users ...``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from smartcity.commandline import DatabaseOpt, open_database

if TYPE_CHECKING:
    from smartcity.portal.blueprint.model import Blueprint
    from smartcity.storage.engine import Database

blueprint_app = typer.Typer(
    help="The blueprint's measures: load the shipped data, export and import progress.",
    no_args_is_help=True,
)
users_app = typer.Typer(help="Portal accounts (admin, editor, moderator).", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _db(url: str | None) -> Database:
    return open_database(url, current=True)


def _read_source(source: Path) -> Blueprint:
    import orjson
    import yaml
    from pydantic import ValidationError

    from smartcity.portal.blueprint.model import Blueprint

    try:
        raw = source.read_text(encoding="utf-8-sig")
        data = orjson.loads(raw) if source.suffix == ".json" else yaml.safe_load(raw)
        return Blueprint.model_validate(data)
    except (OSError, orjson.JSONDecodeError, yaml.YAMLError, ValidationError) as exc:
        err.print(f"[red]error:[/] {source} is not a usable blueprint: {exc}")
        raise typer.Exit(1) from None


@blueprint_app.command("load")
def blueprint_load(
    database: DatabaseOpt = None,
    source: Annotated[
        Path | None,
        typer.Option(help="A whole blueprint as one YAML/JSON file (default: the shipped data)"),
    ] = None,
) -> None:
    """Load the blueprint into the database; safe to re-run (progress entered is kept)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from smartcity.portal.measures.loader import load

    if source is not None:
        blueprint = _read_source(source)
    else:
        from smartcity.portal.blueprint.dataset import load_blueprint

        blueprint = load_blueprint()
    db = _db(database)
    tasks: dict[str, object] = {}
    with Progress(
        TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn(), console=console
    ) as bar:

        def tick(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total or 1)
            bar.update(tasks[stage], completed=done if total else 1)  # type: ignore[arg-type]

        report = load(db, blueprint, tick)
    db.dispose()
    table = Table("what", "inserted", "updated")
    for name in dict.fromkeys([*report.inserted, *report.updated]):
        table.add_row(name, str(report.inserted.get(name, "-")), str(report.updated.get(name, "-")))
    console.print(table)
    if report.not_in_data:
        console.print(
            f"[yellow]kept {len(report.not_in_data)} measure(s) not in the data:[/] "
            + ", ".join(report.not_in_data)
        )
    console.print("loaded" if report.changed else "nothing changed: already up to date")


@blueprint_app.command("export")
def blueprint_export(
    format: Annotated[str, typer.Option("--format", help="csv or json")] = "csv",
    output: Annotated[Path | None, typer.Option(help="File to write (default: stdout)")] = None,
    database: DatabaseOpt = None,
) -> None:
    """Write every measure with its progress in the import schema."""
    from smartcity.portal.measures import csvio
    from smartcity.portal.measures.service import MeasureService

    if format not in ("csv", "json"):
        err.print("[red]error:[/] --format must be csv or json")
        raise typer.Exit(2)
    db = _db(database)
    measures = MeasureService(db).list_measures()
    db.dispose()
    data = csvio.to_csv(measures).encode() if format == "csv" else csvio.to_json(measures) + b"\n"
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    # A file gets a byte order mark so Excel opens it as UTF-8; import ignores it.
    output.write_bytes(b"\xef\xbb\xbf" + data if format == "csv" else data)
    err.print(f"wrote {len(measures)} measures to {output}")


@blueprint_app.command("import")
def blueprint_import(
    file: Annotated[Path, typer.Argument(help="A CSV or JSON file from `blueprint export`")],
    format: Annotated[
        str | None, typer.Option("--format", help="csv or json (default: by extension)")
    ] = None,
    database: DatabaseOpt = None,
) -> None:
    """Apply a file of measures and progress: every row is checked, and nothing is applied
    unless all rows are valid."""
    from smartcity.portal.measures import csvio
    from smartcity.portal.measures.importer import import_records

    kind = format or ("json" if file.suffix.lower() == ".json" else "csv")
    if kind not in ("csv", "json"):
        err.print("[red]error:[/] --format must be csv or json")
        raise typer.Exit(2)
    try:
        data = file.read_bytes()
    except OSError as exc:
        err.print(f"[red]error:[/] cannot read {file}: {exc.strerror}")
        raise typer.Exit(2) from None
    db = _db(database)
    try:
        if kind == "csv":
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                err.print(f"[red]error:[/] {file} is not UTF-8 text")
                raise typer.Exit(1) from None
            records = csvio.read_csv(text)
        else:
            records = csvio.read_json(data)
        report = import_records(db, records)
    except csvio.ImportFailed as exc:
        table = Table("row", "column", "problem", title="nothing was imported")
        for e in exc.errors:
            table.add_row(str(e.row), e.column, e.message)
        err.print(table)
        raise typer.Exit(1) from None
    finally:
        db.dispose()
    c = report.counts
    console.print(
        f"imported {file}: {c['inserted']} inserted, {c['updated']} updated, "
        f"{c['unchanged']} unchanged"
    )


# -- users --------------------------------------------------------------------------------------


def _password(from_stdin: bool) -> str:
    """The password: the first line of standard input with --password-stdin or when input is
    not a terminal (a pipe: prompting there would only print getpass's warnings), else asked
    for twice without echo."""
    if from_stdin or not sys.stdin.isatty():
        value = sys.stdin.readline().rstrip("\r\n")
        if not value:
            err.print("[red]error:[/] no password on standard input (one line expected)")
            raise typer.Exit(2)
        return value
    asked: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return asked


@users_app.command("create")
def users_create(
    username: str,
    role: Annotated[str, typer.Option(help="admin, editor or moderator")],
    department: Annotated[
        str | None, typer.Option(help="Organisation code, e.g. TD (required for editors)")
    ] = None,
    display_name: Annotated[str | None, typer.Option(help="Name shown in timelines")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
    database: DatabaseOpt = None,
) -> None:
    """Create an account (prompts for the password twice unless --password-stdin)."""
    from smartcity.portal.users.service import UserError, UserService

    db = _db(database)
    try:
        user = UserService(db).create(
            username, _password(password_stdin), role, department, display_name
        )
    except UserError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    finally:
        db.dispose()
    dept = f", {user.department}" if user.department else ""
    console.print(f"created user {user.username} (id {user.id}, {user.role}{dept})")


@users_app.command("list")
def users_list(database: DatabaseOpt = None) -> None:
    """List accounts (never their passwords)."""
    from smartcity.portal.users.service import UserService

    db = _db(database)
    table = Table("id", "username", "role", "department", "name", "active")
    for u in UserService(db).list():
        table.add_row(
            str(u.id), u.username, u.role, u.department or "", u.display_name or "",
            "yes" if u.active else "no",
        )  # fmt: skip
    db.dispose()
    console.print(table)


def _user_id(db: Database, username: str) -> int:
    from smartcity.portal.users.service import UserService

    user = UserService(db).get_by_username(username)
    if user is None:
        err.print(f"[red]error:[/] no user {username!r}; see `smartcity users list`")
        raise typer.Exit(1)
    return user.id


@users_app.command("deactivate")
def users_deactivate(username: str, database: DatabaseOpt = None) -> None:
    """Stop an account from logging in (its history is kept)."""
    from smartcity.portal.users.service import UserService

    db = _db(database)
    UserService(db).deactivate(_user_id(db, username))
    db.dispose()
    console.print(f"deactivated {username}")


@users_app.command("set-password")
def users_set_password(
    username: str,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
    database: DatabaseOpt = None,
) -> None:
    """Set a new password for an account."""
    from smartcity.portal.users.service import UserError, UserService

    db = _db(database)
    try:
        UserService(db).set_password(_user_id(db, username), _password(password_stdin))
    except UserError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    finally:
        db.dispose()
    console.print(f"password set for {username}")
