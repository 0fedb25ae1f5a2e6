"""The loader reads a CSV batch a column at a time through narrow converters
(``fields.fast_text_column``) and falls back to ``to_python`` row by row: whatever the fast
converters accept, they must read exactly as ``to_python`` does."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from smartcity.opendata.datastore.fields import BadValue, fast_text_column, to_python

KINDS = ["text", "int", "float", "date", "bool", "timestamp", "json"]

cells = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.dates().map(lambda d: d.isoformat()),
    st.dates().map(lambda d: f"{d.year:04}/{d.month}/{d.day}"),
    st.sampled_from(
        [
            "",
            " ",
            " 12 ",
            "1,234",
            "1_000",
            "+5",
            "٣",
            "１２",
            "2024-02-30",
            "20240101",
            "2024-1-5",
            "nan",
            "inf",
            "yes",
            "1e3",
            "007",
        ]
    ),
    st.text(max_size=12),
)


@given(st.sampled_from(KINDS), st.lists(cells, min_size=1, max_size=8))
def test_a_fast_column_reads_as_to_python_or_not_at_all(kind: str, column: list[str]) -> None:
    try:
        fast = list(fast_text_column(kind)(column))
    except ValueError:
        return  # the batch goes row by row through to_python
    expected = []
    for cell in column:
        try:
            expected.append(to_python(kind, cell))
        except BadValue:
            raise AssertionError(f"{cell!r} read fast as a {kind}, refused by to_python") from None
    assert fast == expected
    assert [type(v) for v in fast] == [type(v) for v in expected]
