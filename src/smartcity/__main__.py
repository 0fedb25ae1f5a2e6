"""``python -m smartcity`` is the same as the ``smartcity`` command."""

from smartcity.cli.main import app

app()
