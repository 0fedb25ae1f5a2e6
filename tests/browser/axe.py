"""axe-core (WCAG 2.1 A and AA) on the page a browser test has open: ``violations(page)`` is
an empty string when there are none, else one line per rule with the first elements it
failed on, ready for the assertion message."""

from __future__ import annotations

from typing import Any

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def violations(page: Any) -> str:
    # Closed <details> are not rendered: open them so axe checks every form and table.
    page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG_TAGS}})
    return "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']} -> "
        + "; ".join(str(n["target"]) for n in v["nodes"][:5])
        for v in results.response["violations"]
    )
