"""Every shell example in README.md and docs/*.md runs, as written, against a real server.

The examples are the ```sh blocks. Each document's blocks run in order in one bash session
(variables set in one block are used by the next, as a reader would do), with ``set -e``:
a command that fails fails the test, naming the block. ``curl`` is run with
``--fail-with-body`` (an HTTP error is a failure, its body shown) and ``smartcity`` is this
checkout's CLI. The only rewrite: ``127.0.0.1:8000`` and ``localhost:8000`` become the test
server's address (port 8000 may be taken on a shared machine).

A block that cannot run here says so on the line before it, with the reason:
``<!-- docs-test: skip (a remote host) -->``. The server is ``smartcity serve`` on SQLite
with the blueprint and the open-data catalogue loaded, and a write key in
``.smartcity/demo-api-key`` (where the demo keeps its key) in the working directory.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.listening import listening_socket, port_of

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)
SKIP = re.compile(r"<!-- docs-test: skip \((.+?)\) -->\s*$")
PER_DOCUMENT_S = 120
PASSWORD = "a passphrase for the docs test"


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    code: str
    skip: str | None  # why it cannot run here

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = SKIP.search(before)
        found.append(Block(path, line, match.group(1), skip.group(1) if skip else None))
    return found


def test_every_example_is_run_or_says_why_not() -> None:
    every = [b for path in DOCS for b in blocks(path)]
    assert len(every) >= 30
    runnable = [b for b in every if b.skip is None]
    assert len(runnable) >= len(every) // 2, [b.where for b in every if b.skip]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, dict[str, str]]]:
    work = tmp_path_factory.mktemp("docs")
    home = work / ".smartcity"
    home.mkdir()
    bin_dir = work / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "smartcity"
    wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m smartcity "$@"\n')
    wrapper.chmod(0o755)
    # ckanapi (the test extra) as a reader who installed it has it, whatever PATH holds.
    ckanapi = bin_dir / "ckanapi"
    run_ckanapi = 'import sys; from ckanapi.cli.main import main; sys.argv[0] = "ckanapi"; main()'
    ckanapi.write_text(
        f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -c {shlex.quote(run_ckanapi)} "$@"\n'
    )
    ckanapi.chmod(0o755)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("SMARTCITY_") or k == "PYTHONPATH"
    }
    env.update(
        SMARTCITY_HOME=str(home),
        SMARTCITY_DATABASE_URL=f"sqlite:///{home / 'smartcity.db'}",
        PATH=f"{bin_dir}:{env.get('PATH', '')}",
        PASSWORD=PASSWORD,
    )
    for args in (["db", "upgrade"], ["blueprint", "load"], ["opendata", "seed"]):
        done = subprocess.run(
            [str(wrapper), *args], env=env, cwd=work, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
    key = subprocess.run(
        [str(wrapper), "keys", "create", "docs examples"],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert key.returncode == 0, key.stderr
    (home / "demo-api-key").write_text(key.stdout.strip().splitlines()[-1] + "\n")
    sock = listening_socket()
    port = port_of(sock)
    with sock:
        proc = subprocess.Popen(
            [str(wrapper), "serve", "--fd", str(sock.fileno()), "--log-level", "warning"],
            env=env,
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(sock.fileno(),),
        )
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server did not answer in 60 s"
            try:
                if httpx.get(f"http://{address}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield address, work, env
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def script(runnable: list[Block], address: str) -> str:
    lines = [
        "set -e -o pipefail",
        'curl() { command curl --fail-with-body -sS "$@"; echo; }',
    ]
    for block in runnable:
        code = block.code.replace("127.0.0.1:8000", address).replace("localhost:8000", address)
        lines += [f"echo '>>> {block.where}' >&2", code]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_the_examples_of_a_document_run_as_written(
    path: Path, server: tuple[str, Path, dict[str, str]]
) -> None:
    runnable = [b for b in blocks(path) if b.skip is None]
    if not runnable:
        pytest.skip(f"{path.name} has no example that can run here")
    address, work, env = server
    done = subprocess.run(
        ["bash", "-c", script(runnable, address)],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=PER_DOCUMENT_S,
    )
    failed_in = re.findall(r">>> (\S+)", done.stderr)
    assert done.returncode == 0, (
        f"an example in {failed_in[-1] if failed_in else path.name} failed:\n"
        f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    )


def test_no_document_names_a_path_of_one_machine() -> None:
    """docs/simulator.md named a checkout's absolute path instead of ``../shared`` (#9)."""
    machine = re.compile(r"(?<![\w.])/(?:work|home|Users|root|tmp/pytest)/\S+")
    found = [
        f"{path.relative_to(ROOT)}: {m.group(0)}"
        for path in DOCS
        for m in machine.finditer(path.read_text(encoding="utf-8"))
    ]
    assert found == []
