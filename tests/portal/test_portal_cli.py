"""``smartcity blueprint ...`` and ``smartcity users ...`` against a temporary SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smartcity.cli.main import app
from smartcity.portal.measures.sample import sample_data
from smartcity.portal.measures.service import MeasureService
from smartcity.portal.users.service import UserService
from smartcity.storage.engine import Database

runner = CliRunner()


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    result = runner.invoke(app, ["db", "upgrade", "--database", url])
    assert result.exit_code == 0, result.output
    return url


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "sample.json"
    path.write_text(json.dumps(sample_data(), ensure_ascii=False), encoding="utf-8")
    return path


def _run(*args: str, input: str | None = None) -> str:
    result = runner.invoke(app, list(args), input=input)
    assert result.exit_code == 0, result.output
    return result.output


def test_load_is_idempotent(url: str, source: Path) -> None:
    out = _run("blueprint", "load", "--database", url, "--source", str(source))
    assert "measures" in out and "loaded" in out
    out = _run("blueprint", "load", "--database", url, "--source", str(source))
    assert "nothing changed" in out
    db = Database(url)
    assert MeasureService(db).count_measures() == 5
    db.dispose()


def test_load_shipped_data(url: str) -> None:
    pytest.importorskip("smartcity.portal.blueprint.dataset")
    _run("blueprint", "load", "--database", url)
    assert "nothing changed" in _run("blueprint", "load", "--database", url)
    db = Database(url)
    assert MeasureService(db).count_measures() >= 130
    db.dispose()


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_import_round_trip(url: str, source: Path, tmp_path: Path, fmt: str) -> None:
    _run("blueprint", "load", "--database", url, "--source", str(source))
    db = Database(url)
    admin = UserService(db).create("ada", "correct horse battery", "admin")
    MeasureService(db).update_progress("living-01", user=admin, status="ongoing")
    first = tmp_path / f"first.{fmt}"
    _run("blueprint", "export", "--format", fmt, "--output", str(first), "--database", url)
    MeasureService(db).update_progress("living-01", user=admin, status="suspended", progress=5)
    out = _run("blueprint", "import", str(first), "--database", url)
    assert "1 updated" in out and "4 unchanged" in out
    assert MeasureService(db).get_measure("living-01").status == "ongoing"
    second = tmp_path / f"second.{fmt}"
    _run("blueprint", "export", "--format", fmt, "--output", str(second), "--database", url)
    assert first.read_bytes() == second.read_bytes()
    if fmt == "csv":
        assert first.read_bytes().startswith(b"\xef\xbb\xbf")
    stdout = _run("blueprint", "export", "--format", fmt, "--database", url)
    assert "living-01" in stdout
    db.dispose()


def test_import_bad_file_reports_rows_and_applies_nothing(
    url: str, source: Path, tmp_path: Path
) -> None:
    _run("blueprint", "load", "--database", url, "--source", str(source))
    good = tmp_path / "good.csv"
    _run("blueprint", "export", "--output", str(good), "--database", url)
    lines = good.read_bytes().decode("utf-8-sig").split("\r\n")
    lines[1] = lines[1].replace(",planned,0.0,", ",in_progress,75.0,")  # valid on its own
    lines[3] = lines[3].replace(",planned,0.0,", ",planned,-3,")
    bad = tmp_path / "bad.csv"
    bad.write_bytes("\r\n".join(lines).encode())
    result = runner.invoke(app, ["blueprint", "import", str(bad), "--database", url])
    assert result.exit_code == 1
    assert "nothing was imported" in result.output
    assert "progress" in result.output and "4" in result.output
    db = Database(url)
    assert MeasureService(db).get_measure("mobility-01").status == "planned"
    db.dispose()
    result = runner.invoke(app, ["blueprint", "export", "--format", "xml", "--database", url])
    assert result.exit_code == 2


def test_users_commands(url: str) -> None:
    out = _run(
        "users", "create", "td-editor", "--role", "editor", "--department", "TD",
        "--password-stdin", "--database", url, input="correct horse battery\n",
    )  # fmt: skip
    assert "created user td-editor" in out and "editor, TD" in out
    # Without --password-stdin, input that is not a terminal is read as the password.
    out = _run(
        "users", "create", "ada", "--role", "admin", "--database", url,
        input="another good pass\nanother good pass\n",
    )  # fmt: skip
    assert "created user ada" in out and "another good pass" not in out
    result = runner.invoke(
        app,
        ["users", "create", "ed", "--role", "editor", "--password-stdin", "--database", url],
        input="correct horse battery\n",
    )
    assert result.exit_code == 1 and "department" in result.output
    listing = _run("users", "list", "--database", url)
    assert "td-editor" in listing and "ada" in listing and "argon2" not in listing
    _run("users", "deactivate", "td-editor", "--database", url)
    db = Database(url)
    users = UserService(db)
    assert users.authenticate("td-editor", "correct horse battery") is None
    assert users.authenticate("ada", "another good pass") is not None
    db.dispose()
    result = runner.invoke(app, ["users", "deactivate", "nobody", "--database", url])
    assert result.exit_code == 1 and "no user" in result.output


def test_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["users", "list", "--database", f"sqlite:///{tmp_path / 'empty.db'}"]
    )
    assert result.exit_code == 2
    assert "smartcity db upgrade" in " ".join(result.output.split())
