"""Page numbers for long lists: parse the ``page`` parameter leniently, build prev/next links."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode


def page_number(raw: str | None) -> int:
    """A 1-based page number; anything unusable is page 1 (a bad link should still work)."""
    try:
        return max(1, min(int(raw or 1), 100_000))
    except ValueError:
        return 1


@dataclass(frozen=True)
class Pager:
    page: int
    per_page: int
    total: int
    base: str  # the page's path
    params: tuple[tuple[str, str], ...] = ()  # the other query parameters, kept across pages

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def current(self) -> int:
        return min(self.page, self.pages)

    @property
    def offset(self) -> int:
        return (self.current - 1) * self.per_page

    @property
    def first_item(self) -> int:
        return self.offset + 1 if self.total else 0

    @property
    def last_item(self) -> int:
        return min(self.offset + self.per_page, self.total)

    def url(self, page: int) -> str:
        params = [(k, v) for k, v in self.params if v]
        if page > 1:
            params.append(("page", str(page)))
        return f"{self.base}?{urlencode(params)}" if params else self.base

    @property
    def prev_url(self) -> str | None:
        return self.url(self.current - 1) if self.current > 1 else None

    @property
    def next_url(self) -> str | None:
        return self.url(self.current + 1) if self.current < self.pages else None
