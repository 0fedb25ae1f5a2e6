"""The web framework's pieces without a server: language negotiation, catalogues, formatting,
paging, and the live figure's robustness."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from smartcity.hub.service import EntityService
from smartcity.portal.blueprint.model import LiveLink, Text
from smartcity.portal.site import live
from smartcity.storage.engine import Database
from smartcity.web import catalogues, i18n
from smartcity.web.i18n import EN, LANGS, SC, TC, Formatter
from smartcity.web.pages import PageInfo, rest_of_path
from smartcity.web.paging import Pager, page_number


@given(st.text(max_size=200))
def test_negotiate_never_fails(header: str) -> None:
    assert i18n.negotiate(header) in LANGS


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["en", "en-US", "zh-HK", "zh-CN", "fr", "ja", "zh-Hant-TW", "*"]),
            st.sampled_from(["", ";q=0", ";q=0.3", ";q=1", ";q=bogus"]),
        ),
        max_size=5,
    )
)
def test_negotiate_picks_the_best_served_language(ranges: list[tuple[str, str]]) -> None:
    header = ", ".join(tag + q for tag, q in ranges)
    chosen = i18n.negotiate(header)

    def quality(q: str) -> float:
        try:
            return float(q.split("=")[1]) if q else 1.0
        except ValueError:
            return 0.0

    served = [(quality(q), tag) for tag, q in ranges if tag != "*" and tag not in ("fr", "ja")]
    served = [(w, tag) for w, tag in served if w > 0]
    if not served:
        assert chosen == EN
        return
    best = max(w for w, _ in served)
    first = next(tag for w, tag in served if w == best)
    expected = EN if first.startswith("en") else TC if first in ("zh-HK", "zh-Hant-TW") else SC
    assert chosen == expected


def test_every_ui_string_is_translated() -> None:
    for folder in catalogues.FOLDERS:
        assert catalogues.problems(folder) == [], folder


def test_form_macros_are_shared_not_shadowed() -> None:
    """Every feature imports the shared layer's form_macros.html; a feature's own copy would
    come first on its template path and shadow it (and its strings' catalogue)."""
    shared = catalogues.PACKAGE / "web" / "templates" / "form_macros.html"
    found = sorted(catalogues.PACKAGE.rglob("form_macros.html"))
    assert found == [shared]


def test_catalogues_compile_and_translate() -> None:
    assert i18n.translations(TC).gettext("Skip to main content") == "跳至主要內容"
    assert i18n.translations(SC).gettext("Skip to main content") == "跳至主要内容"
    assert i18n.translations(EN).gettext("Skip to main content") == "Skip to main content"


def test_dates_follow_the_locale() -> None:
    assert Formatter(EN).date("2020-06") == "June 2020"
    assert Formatter(TC).date("2020-06") == "2020年6月"
    assert Formatter(SC).date(dt.date(2024, 1, 5)) == "2024年1月5日"
    assert Formatter(TC).date("2021") == "2021年"
    assert Formatter(EN).date("not a date") == "not a date"
    assert Formatter(EN).percent(42.4) == "42%"
    # Shown in Hong Kong time.
    noon_utc = dt.datetime(2026, 1, 1, 4, 0, tzinfo=dt.UTC)
    assert "12:00" in Formatter(EN).datetime(noon_utc)


def test_paths_and_switch_urls() -> None:
    assert rest_of_path("/tc/areas/x") == "/areas/x"
    assert rest_of_path("/tc") == "/"
    info = PageInfo(lang=EN, rest="/search", query="q=%E6%B3%8A", base_url="http://h")
    assert info.url_in(TC) == "/tc/search?q=%E6%B3%8A"
    assert info.absolute_in(SC) == "http://h/sc/search?q=%E6%B3%8A"


def test_pager() -> None:
    pager = Pager(page=3, per_page=20, total=45, base="/en/search", params=(("q", "x"),))
    assert (pager.pages, pager.offset, pager.first_item, pager.last_item) == (3, 40, 41, 45)
    assert pager.prev_url == "/en/search?q=x&page=2" and pager.next_url is None
    assert Pager(page=99, per_page=20, total=45, base="/b").current == 3
    assert Pager(page=2, per_page=20, total=45, base="/b").url(1) == "/b"
    assert [page_number(x) for x in (None, "", "0", "-4", "x", "7")] == [1, 1, 1, 1, 1, 7]


def _link(**kw: object) -> LiveLink:
    label = Text.model_validate({"en": "x", "zh-Hant": "x", "zh-Hans": "x"})
    return LiveLink.model_validate({"entity_type": "OffStreetParking", "label": label, **kw})


def test_live_figure_is_robust(db: Database) -> None:
    entities = EntityService(db)
    # No entities: a count is 0, an average has no value.
    assert live.compute(entities, _link()).value == 0
    assert (
        live.compute(entities, _link(attribute="availableSpotNumber", aggregate="avg")).value
        is None
    )
    # A broken q in the data gives "no data", never an error page.
    broken = live.compute(entities, _link(q="((("))
    assert broken.value is None and broken.entities == 0
    # No hub at all.
    assert live.figures(None, [_link()])[0].value is None


def test_every_catalogue_says_optional_the_same_way() -> None:
    """A feature's catalogue comes before the shared one, so a feature that translates
    "(optional)" itself decides what its forms say: all of them must agree (the portal's
    moderation page once said 可選填 where every other form says 選填)."""
    for lang, want in ((TC, "（選填）"), (SC, "（选填）")):
        found = {}
        for folder in catalogues.FOLDERS:
            translated = i18n.translations(lang, (folder / "locale",)).gettext("(optional)")
            found[folder.name] = translated
        assert set(found.values()) == {want}, found
