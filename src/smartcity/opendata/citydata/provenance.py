"""Where live city data comes from: the Hong Kong connectors' DATA.GOV.HK feeds.

The connectors (``smartcity.live.connectors``) declare who publishes each feed, the entity
types they write and the feeds' addresses; the app hands those declarations to the open data
portal as ``FeedProvenance`` (the two features do not import each other). A dataset published
from an entity type a connector fills carries that provenance: its publisher organisation by
default, a provenance statement, and the source URLs (DCAT ``dct:provenance`` and
``prov:wasDerivedFrom``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

SOURCE = "DATA.GOV.HK"


@dataclass(frozen=True)
class FeedProvenance:
    connector: str  # its command-line name, e.g. "carparks"
    description: str
    publisher: str  # e.g. "Transport Department, HKSAR"
    organisation: str  # the publisher's organisation in the catalogue ("" if none)
    entity_types: tuple[str, ...]  # short names in the city @context
    sources: tuple[str, ...]  # the feeds' URLs


class Provenances:
    def __init__(self, feeds: Iterable[FeedProvenance] = ()) -> None:
        self.feeds = tuple(feeds)

    def for_type(self, short_type: str) -> list[FeedProvenance]:
        return [feed for feed in self.feeds if short_type in feed.entity_types]

    @staticmethod
    def extras(feeds: list[FeedProvenance]) -> dict[str, str]:
        """The dataset extras that carry the provenance (read back by the DCAT output)."""
        if not feeds:
            return {}
        statement = "; ".join(
            f"{feed.description}, published by {feed.publisher} on {SOURCE}, read by the "
            f"platform's {feed.connector!r} connector"
            for feed in feeds
        )
        sources = sorted({url for feed in feeds for url in feed.sources})
        return {
            "source": SOURCE,
            "provenance": f"Collected from {SOURCE}: {statement}.",
            "source_url": " ".join(sources),
            "publisher_name": "; ".join(sorted({feed.publisher for feed in feeds})),
        }
