"""A measure's first status, from what the blueprint itself says about it.

The blueprint describes each measure in one sentence, and that sentence says where the measure
stands in December 2020: "The trial ... has been completed", "Continue to ...", "Since 2018
...", or a measure marked 新 (new in Blueprint 2.0). ``blueprint load`` seeds each measure's
status from it, and keeps the sentence and the reason with the progress row so the measure page
can show why a measure starts as it does. The words are matched in the English text (a reviewed
translation of the official Chinese, which the tests check carries the same marker: 繼續, 已,
自 ... 起). A data file may state ``status`` outright, which wins over the words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from smartcity.portal.blueprint.model import Measure, Text

Reason = Literal["done", "continuing", "new", "under-way", "stated"]

# "has been completed", "have been fully launched", "has been put in place" ...
_DONE = re.compile(
    r"\b(?:has|have) been (?:fully )?(?:completed|launched|put in place|provided|set up)\b"
    r"|^Since \d{4}\b",
    re.IGNORECASE,
)
# "Continue to ...", "continue the trial", "we will continue", "Progressively ..."
_CONTINUING = re.compile(r"(?:^|[;,.] |\bwill )continue\b|^Progressively\b", re.IGNORECASE)


@dataclass(frozen=True)
class Seed:
    status: str  # a status code of the city's catalogue
    reason: Reason
    basis: Text  # the blueprint's sentence the status comes from

    def as_json(self) -> dict[str, object]:
        return {"reason": self.reason, "text": self.basis.model_dump(by_alias=True)}


def seed(measure: Measure) -> Seed:
    """The status the blueprint's own words give ``measure``.

    done, and nothing said to continue: completed; continuing (or done and continuing):
    ongoing; new in Blueprint 2.0: planned; anything else carried over from Blueprint 1.0 is
    under way: in progress.
    """
    if measure.status is not None:
        return Seed(measure.status, "stated", measure.text)
    words = measure.text.en
    done = bool(_DONE.search(words))
    continuing = bool(_CONTINUING.search(words))
    if continuing or (done and re.search(r"\b(?:will|since)\b", words, re.IGNORECASE)):
        return Seed("ongoing", "continuing", measure.text)  # in place, and kept going
    if done and not re.search(r"\bexpected to\b", words):  # "... and X is expected to"
        return Seed("completed", "done", measure.text)
    if done:
        return Seed("in_progress", "under-way", measure.text)
    if measure.is_new:
        return Seed("planned", "new", measure.text)
    return Seed("in_progress", "under-way", measure.text)
