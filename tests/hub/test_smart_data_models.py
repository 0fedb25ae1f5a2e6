"""Every Smart Data Models example in ../shared loads into the hub and reads back unchanged.

The examples use the models' public @contexts; the test preloads each subject's context.jsonld
under its public URL (as `smartcity contexts add` would), so nothing is fetched.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
MODELS = SHARED / "smart-data-models"
EXAMPLES = sorted(MODELS.glob("*/*/examples/example-normalized.jsonld")) if MODELS.exists() else []
REL = "http://www.w3.org/ns/json-ld#context"
JSON = {"Content-Type": "application/json"}


def subject_context_url(subject: str) -> str:
    return f"https://raw.githubusercontent.com/smart-data-models/dataModel.{subject}/master/context.jsonld"


@pytest.mark.skipif(not EXAMPLES, reason="../shared/smart-data-models is not present")
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.parts[-3])
def test_example_round_trips_unchanged(client: TestClient, path: Path) -> None:
    subject = path.parts[-4]
    url = subject_context_url(subject)
    context_doc = json.loads((MODELS / subject / "context.jsonld").read_text(encoding="utf-8"))
    client.app.state.hub.contexts.add(url, context_doc)  # type: ignore[attr-defined]
    example = json.loads(path.read_text(encoding="utf-8"))

    r = client.post(
        "/ngsi-ld/v1/entities", json=example, headers={"Content-Type": "application/ld+json"}
    )
    assert r.status_code == 201, r.text

    link = {"Link": f'<{url}>; rel="{REL}"; type="application/ld+json"'}
    got = client.get(f"/ngsi-ld/v1/entities/{example['id']}", headers=link)
    assert got.status_code == 200
    expected = {k: v for k, v in example.items() if k != "@context"}
    assert got.json() == expected

    # Without the model's context the names come back as full IRIs; posting that expanded form
    # under another id and reading it with the context gives the example again.
    expanded = client.get(f"/ngsi-ld/v1/entities/{example['id']}").json()
    assert any(name.startswith("https://smartdatamodels.org/") for name in expanded)
    copy_id = example["id"] + ":copy"
    r = client.post("/ngsi-ld/v1/entities", json={**expanded, "id": copy_id}, headers=JSON)
    assert r.status_code == 201, r.text
    again = client.get(f"/ngsi-ld/v1/entities/{copy_id}", headers=link).json()
    assert again == {**expected, "id": copy_id}
