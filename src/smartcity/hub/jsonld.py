"""JSON-LD term expansion and compaction for NGSI-LD payloads.

Why not a general JSON-LD processor (pyld): NGSI-LD documents have a fixed shape in which only
entity types, attribute names and a few vocabulary values are IRIs. Expanding a whole document
with pyld costs milliseconds per entity, on every request; here an @context is processed once
into a term table and cached, after which expanding or compacting a name is a dict lookup.
The term-definition rules follow JSON-LD 1.1 §4.2 (create term definition / IRI expansion) for
the features @contexts use in practice: string and expanded term definitions, compact IRIs,
``@vocab``, ``@type``, ``@container``, ``@protected`` and ``@import``; scoped contexts are
ignored (NGSI-LD payloads do not need them for attribute names).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from smartcity.hub.errors import BadRequestData

_GEN_DELIMS = (":", "/", "?", "#", "[", "]", "@")


@dataclass(frozen=True)
class Term:
    iri: str
    type: str | None = None  # "@vocab", "@id", "@json", a datatype IRI, or None
    container: str | None = None
    prefix: bool = False  # usable as the prefix of a compact IRI


@dataclass
class ActiveContext:
    terms: dict[str, Term] = field(default_factory=dict)
    vocab: str | None = None
    _reverse: dict[str, str] | None = None
    _expand_cache: dict[str, str] = field(default_factory=dict)
    _compact_cache: dict[str, str] = field(default_factory=dict)

    def copy(self) -> ActiveContext:
        return ActiveContext(terms=dict(self.terms), vocab=self.vocab)

    # -- expansion -------------------------------------------------------------------------
    def expand(self, name: str) -> str:
        """Expand an attribute name or type (vocabulary-relative) to an absolute IRI."""
        hit = self._expand_cache.get(name)
        if hit is not None:
            return hit
        iri = _expand_iri(name, self.terms, self.vocab)
        if len(self._expand_cache) < 100_000:
            self._expand_cache[name] = iri
        return iri

    def term(self, name: str) -> Term | None:
        return self.terms.get(name)

    # -- compaction ------------------------------------------------------------------------
    def compact(self, iri: str) -> str:
        """The shortest name this context gives the IRI: a term, a vocab-relative name,
        a compact IRI, or the IRI itself."""
        hit = self._compact_cache.get(iri)
        if hit is not None:
            return hit
        name = self._compact_uncached(iri)
        if len(self._compact_cache) < 100_000:
            self._compact_cache[iri] = name
        return name

    def _compact_uncached(self, iri: str) -> str:
        term: str | None
        if self._reverse is None:
            reverse: dict[str, str] = {}
            for term, definition in self.terms.items():
                best = reverse.get(definition.iri)
                if best is None or (len(term), term) < (len(best), best):
                    reverse[definition.iri] = term
            self._reverse = reverse
        term = self._reverse.get(iri)
        if term is not None:
            return term
        if self.vocab and iri.startswith(self.vocab):
            suffix = iri[len(self.vocab) :]
            if suffix and ":" not in suffix and suffix not in self.terms:
                return suffix
        best_compact: str | None = None
        for term, definition in self.terms.items():
            if not definition.prefix or not iri.startswith(definition.iri) or iri == definition.iri:
                continue
            candidate = f"{term}:{iri[len(definition.iri) :]}"
            if best_compact is None or (len(candidate), candidate) < (
                len(best_compact),
                best_compact,
            ):
                best_compact = candidate
        return best_compact or iri


def _expand_iri(value: str, terms: Mapping[str, Term], vocab: str | None) -> str:
    if value.startswith("@"):
        return value
    definition = terms.get(value)
    if definition is not None:
        return definition.iri
    if ":" in value:
        prefix, suffix = value.split(":", 1)
        if prefix == "_" or suffix.startswith("//"):
            return value
        prefix_def = terms.get(prefix)
        if prefix_def is not None and prefix_def.prefix:
            return prefix_def.iri + suffix
        return value  # already an absolute IRI (urn:, http:, ...)
    if vocab is not None:
        return vocab + value
    raise BadRequestData(
        f"'{value}' cannot be expanded to an IRI: the @context defines no term for it and no "
        "@vocab. Add the term to your @context."
    )


ContextLoader = Callable[[str], Any]


def process_context(
    active: ActiveContext,
    local: Any,
    load: ContextLoader,
    *,
    _depth: int = 0,
) -> ActiveContext:
    """Apply a local context (URL, object, or list of them) to ``active``; returns a new context."""
    if _depth > 16:
        raise BadRequestData("@context nesting is deeper than 16 levels (recursive @import?)")
    result = active.copy()
    items = local if isinstance(local, list) else [local]
    for item in items:
        if item is None:
            result = ActiveContext()
        elif isinstance(item, str):
            document = load(item)
            inner = document.get("@context") if isinstance(document, dict) else None
            if inner is None:
                raise BadRequestData(f"the document at {item} has no @context member")
            result = process_context(result, inner, load, _depth=_depth + 1)
        elif isinstance(item, dict):
            result = _apply_object(result, item, load, _depth)
        else:
            raise BadRequestData(
                f"@context entries must be URLs or objects, not {type(item).__name__}"
            )
    return result


def _apply_object(
    result: ActiveContext, obj: dict[str, Any], load: ContextLoader, depth: int
) -> ActiveContext:
    if "@import" in obj:
        url = obj["@import"]
        if not isinstance(url, str):
            raise BadRequestData("@import must be a URL string")
        imported = load(url).get("@context")
        if isinstance(imported, dict):
            obj = {**imported, **{k: v for k, v in obj.items() if k != "@import"}}
    if "@vocab" in obj:
        vocab = obj["@vocab"]
        if vocab is None:
            result.vocab = None
        elif isinstance(vocab, str):
            result.vocab = (
                _expand_iri(vocab, result.terms, result.vocab)
                if ":" in vocab or (vocab in result.terms)
                else vocab
            )
        else:
            raise BadRequestData("@vocab must be a string or null")
    pending = {k: v for k, v in obj.items() if not k.startswith("@")}
    defined: dict[str, Term | None] = {}

    def define(term: str, stack: frozenset[str]) -> None:
        if term in defined:
            return
        if term in stack:
            raise BadRequestData(f"cyclic IRI mapping for term '{term}' in @context")
        raw = pending[term]
        if raw is None:
            defined[term] = None
            return
        if isinstance(raw, str):
            raw = {"@id": raw}
        if not isinstance(raw, dict):
            raise BadRequestData(f"the definition of term '{term}' must be a string or an object")
        iri_raw = raw.get("@id")
        if iri_raw is None and "@reverse" in raw:
            iri_raw = raw["@reverse"]
        if iri_raw is None:
            iri = _resolve(term, term, stack)
        elif not isinstance(iri_raw, str):
            raise BadRequestData(f"the @id of term '{term}' must be a string")
        else:
            iri = _resolve(iri_raw, term, stack)
        type_raw = raw.get("@type")
        term_type = None
        if isinstance(type_raw, str):
            term_type = type_raw if type_raw.startswith("@") else _resolve(type_raw, term, stack)
        container = raw.get("@container")
        if isinstance(container, list):
            container = container[0] if container else None
        simple = isinstance(pending[term], str)
        is_prefix = bool(raw.get("@prefix")) or (simple and iri.endswith(_GEN_DELIMS))
        defined[term] = Term(iri=iri, type=term_type, container=container, prefix=is_prefix)

    def _resolve(value: str, term: str, stack: frozenset[str]) -> str:
        if value.startswith("@"):
            return value
        if ":" in value:
            prefix = value.split(":", 1)[0]
            if prefix in pending and prefix != term:
                define(prefix, stack | {term})
        elif value in pending and value != term:
            define(value, stack | {term})
        terms = {**result.terms, **{k: v for k, v in defined.items() if v is not None}}
        return _expand_iri(value, terms, result.vocab)

    for term in pending:
        define(term, frozenset())
    for term, definition in defined.items():
        if definition is None:
            result.terms.pop(term, None)
        else:
            result.terms[term] = definition
    result._reverse = None
    return result
