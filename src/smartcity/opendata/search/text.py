"""How text becomes search tokens, the same way for what is indexed and what is asked.

* Folding: Unicode NFKC (full-width letters and digits become ASCII), case folding, and
  Traditional → Simplified Chinese with OpenCC (``t2s``): 停車場 and 停车场 fold to one form,
  so each script finds the other. The many-to-one direction is the safe one (s2t would
  have to guess between 發 and 髮 for 发).
* Chinese (and Japanese, Korean) runs have no spaces, so they are indexed as single
  characters and character pairs: 停車 finds 停車場空置車位 without a dictionary, and a
  query of three or more characters is also checked as a phrase on the folded text.
* Other words are split on anything that is not a letter or digit; English words lose
  their ending with the Snowball stemmer (parks, parking → park), and the commonest
  English words are dropped.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator

import opencc
import snowballstemmer

MAX_TOKEN = 64
# CJK ideographs (with extensions and compatibility forms), kana, Hangul: scripts written
# without spaces between words.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f"
_TOKENS = re.compile(rf"(?P<cjk>[{_CJK}]+)|(?P<word>[^\W_{_CJK}]+)")
_NOT_WORD = re.compile(rf"[^\w{_CJK}]+|_+")
_LATIN = re.compile(r"^[a-z]+$")
STOPWORDS = frozenset(
    {
        *("a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "into"),
        *("is", "it", "of", "on", "or", "that", "the", "this", "to", "was", "were"),
        *("will", "with"),
    }
)

_stemmer = snowballstemmer.stemmer("english")
_to_simplified = opencc.OpenCC("t2s.json")


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    return _stemmer.stemWord(word) if _LATIN.match(word) else word


def fold(text: str) -> str:
    """NFKC, case-folded, Simplified: the one form both index and query are compared in."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _to_simplified.convert(folded) if _has_cjk(folded) else folded


def _has_cjk(text: str) -> bool:
    return any("\u3040" <= ch <= "\u9fff" or ch >= "\uf900" for ch in text)


def surface(text: str) -> str:
    """Folded text with every run of punctuation and spaces made one space: what phrases are
    looked for in (``"car  parks!"`` → ``car parks``)."""
    return _NOT_WORD.sub(" ", fold(text)).strip()


def tokens(text: str) -> Iterator[str]:
    """The index tokens of ``text``: stemmed words, CJK characters and character pairs."""
    for match in _TOKENS.finditer(fold(text)):
        run = match.group("cjk")
        if run:
            for i, ch in enumerate(run):
                yield ch
                if i + 1 < len(run):
                    yield run[i : i + 2]
            continue
        word = match.group("word")
        if word in STOPWORDS:
            continue
        yield stem(word)[:MAX_TOKEN]


def query_tokens(text: str) -> tuple[list[str], bool]:
    """The tokens a query term needs (all of them) and whether it must also be checked as a
    phrase: a CJK run is asked for by its pairs (停車場 → 停车, 车场; one character by
    itself), and a run of three or more characters, or several words, is a phrase."""
    needed: list[str] = []
    pieces = 0
    for match in _TOKENS.finditer(fold(text)):
        pieces += 1
        run = match.group("cjk")
        if run:
            if len(run) == 1:
                needed.append(run)
            else:
                needed.extend(run[i : i + 2] for i in range(len(run) - 1))
            if len(run) > 2:
                pieces += 1
            continue
        word = match.group("word")
        if word not in STOPWORDS:
            needed.append(stem(word)[:MAX_TOKEN])
    return list(dict.fromkeys(needed)), pieces > 1
