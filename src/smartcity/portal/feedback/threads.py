"""Turning stored rows into what the public sees: threads with placeholders, never e-mail."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row

from smartcity.portal.feedback.model import (
    DELETED,
    MAX_DEPTH,
    PUBLISHED,
    PublicComment,
    Target,
)
from smartcity.portal.feedback.sanitize import render_comment_html


def _node(row: Row[Any], replies: list[PublicComment]) -> PublicComment | None:
    target = Target(row.target_kind, row.target_id)
    if row.status == PUBLISHED:
        return PublicComment(
            id=row.id,
            target=target,
            parent_id=row.parent_id,
            depth=row.depth,
            state="published",
            name=row.name,
            text=row.text,
            html=render_comment_html(row.text),
            stance=None if row.official else row.stance,
            language=row.language,
            created_at=row.created_at,
            votes=row.vote_count,
            official=bool(row.official),
            department=row.department,
            can_reply=row.depth < MAX_DEPTH,
            replies=replies,
        )
    if not replies:
        return None  # pending, hidden or deleted, and nothing visible hangs below it
    return PublicComment(
        id=row.id,
        target=target,
        parent_id=row.parent_id,
        depth=row.depth,
        state="deleted" if row.status == DELETED else "hidden",
        name=None,
        text=None,
        html=None,
        stance=None,
        language=row.language,
        created_at=row.created_at,
        votes=0,
        official=False,
        department=None,
        can_reply=False,
        replies=replies,
    )


def build_threads(roots: Sequence[Row[Any]], replies: Sequence[Row[Any]]) -> list[PublicComment]:
    """Nest replies under their parents; official answers first, then oldest first."""
    children: dict[int, list[Row[Any]]] = defaultdict(list)
    for row in replies:
        children[row.parent_id].append(row)
    for kids in children.values():
        kids.sort(key=lambda r: (not r.official, r.created_at, r.id))

    def build(row: Row[Any]) -> PublicComment | None:
        below = [n for n in (build(kid) for kid in children.get(row.id, [])) if n is not None]
        return _node(row, below)

    return [n for n in (build(root) for root in roots) if n is not None]


def find_in(threads: Sequence[PublicComment], comment_id: int) -> PublicComment | None:
    for node in threads:
        if node.id == comment_id:
            return node
        found = find_in(node.replies, comment_id)
        if found is not None:
            return found
    return None
