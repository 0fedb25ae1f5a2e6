"""What every `smartcity` command that touches the database shares: the `--database` option and
opening the database it names, with errors that say what to do next."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from smartcity.config import resolve_database_url

if TYPE_CHECKING:
    from smartcity.storage.engine import Database

err = Console(stderr=True)

DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="Database URL (default: $SMARTCITY_DATABASE_URL, else a SQLite file under "
        "$SMARTCITY_HOME)",
        show_default=False,
    ),
]


def open_database(url: str | None, *, current: bool = False) -> Database:
    """The database the command line names; with ``current``, refuse an out-of-date schema
    (naming the command to run). Exits with a message instead of a traceback."""
    from smartcity.storage import migrate
    from smartcity.storage.engine import Database

    try:
        db = Database(resolve_database_url(url))
        if current:
            migrate.ensure_current(db)
    except (ValueError, migrate.SchemaOutOfDate) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    return db
