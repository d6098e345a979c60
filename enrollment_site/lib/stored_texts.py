"""Texts the product writes in English into the database and shows to people
later (an audit reason the system gave, a job's error, an undo's note),
translated when shown.

The stored value stays English: programs read it (the API, the CSV exports,
the admin's search), and the row has no reader's language when it is written
(a worker, a beat task). Each such text is a constant marked with
``gettext_noop`` and registered here with ``stored_text``, which returns it
unchanged for the writer; a count-dependent one is registered with
``plurals.ngettext`` (named so that makemessages extracts both forms as one
plural entry). ``shown(text)`` is the text in the active language:

- a registered text without placeholders is looked up in the catalog;
- a registered text with named placeholders (``"Import %(filename)s"``) is
  matched as a pattern (each placeholder any text), and its translation filled
  with the captured values, each itself ``shown`` (a reason that quotes
  another system reason reads translated throughout) unless the registration
  gives that placeholder its own display function (a stored English label);
- any other text (a reason a person typed, a name) is shown as it is.

Only registered texts are translated, so a person's own words are never
replaced by a catalog entry that happens to read the same."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from django.utils.formats import number_format
from django.utils.translation import gettext, ngettext

_PLACEHOLDER = re.compile(r"%\((?P<name>\w+)\)s")


@dataclass(frozen=True)
class _Entry:
    msgid: str
    plural: str = ""
    count: str = ""  # the placeholder that chooses the plural form
    values: dict[str, Callable[[str], str]] = field(default_factory=dict)

    def translate(self, captured: dict[str, str]) -> str:
        values = {name: self.values.get(name, shown)(value) for name, value in captured.items()}
        if not self.plural:
            return gettext(self.msgid) % values
        digits = re.sub(r"\D", "", captured[self.count])
        if not digits:  # not a number after all: the English form it was written in
            form = self.msgid if captured[self.count] == "1" else self.plural
            return gettext(form) % values
        n = int(digits)
        values[self.count] = number_format(n, force_grouping=True)
        return ngettext(self.msgid, self.plural, n) % values


_EXACT: set[str] = set()
# English text → (pattern, entry), most literal text first: the more specific pattern wins.
_PATTERNS: dict[str, tuple[re.Pattern[str], _Entry]] = {}


def _literal_length(text: str) -> int:
    return len(_PLACEHOLDER.sub("", text))


def _register(text: str, entry: _Entry) -> None:
    if not _PLACEHOLDER.sub("", text).strip():
        raise ValueError(f"A stored text needs some literal text to be recognised: {text!r}")
    _PATTERNS[text] = (_pattern_of(text), entry)
    ordered = sorted(_PATTERNS.items(), key=lambda item: -_literal_length(item[0]))
    _PATTERNS.clear()
    _PATTERNS.update(ordered)


def _pattern_of(text: str) -> re.Pattern[str]:
    parts, position = [], 0
    for match in _PLACEHOLDER.finditer(text):
        parts.append(re.escape(text[position:match.start()]))
        parts.append(f"(?P<{match.group('name')}>.*?)")
        position = match.end()
    parts.append(re.escape(text[position:]))
    return re.compile("".join(parts), re.DOTALL)


def stored_text(msgid: str, **values: Callable[[str], str]) -> str:
    """Register ``msgid`` (an English text marked with ``gettext_noop`` at the
    call site, placeholders named ``%(name)s``) as one the system stores, and
    return it unchanged. ``values``: for a placeholder, the function that shows
    its captured value (default: ``shown``). Idempotent."""
    if _PLACEHOLDER.search(msgid):
        _register(msgid, _Entry(msgid, values=dict(values)))
    else:
        _EXACT.add(msgid)
    return msgid


@dataclass(frozen=True)
class StoredPlural:
    """A count-dependent stored text: ``english(n, **values)`` is what is stored."""

    singular: str
    plural: str
    count: str

    def english(self, n: int, **values: object) -> str:
        # English's rule (one, other); the count grouped as English writes it.
        return (self.singular if n == 1 else self.plural) % {**values, self.count: f"{n:,}"}


class _Plurals:
    @staticmethod
    def ngettext(singular: str, plural: str, count: str, **values: Callable[[str], str]) -> StoredPlural:
        """Register a count-dependent stored text (both English forms;
        ``count`` names the placeholder holding the number)."""
        entry = _Entry(singular, plural, count, dict(values))
        _register(singular, entry)
        _register(plural, entry)
        return StoredPlural(singular, plural, count)


plurals = _Plurals()


def shown(text: str) -> str:
    """``text`` (as stored) in the active language when it is a registered
    system text, else as it is."""
    if not text:
        return text
    if text in _EXACT:
        return gettext(text)
    for pattern, entry in _PATTERNS.values():
        match = pattern.fullmatch(text)
        if match:
            return entry.translate(match.groupdict())
    return text


def shown_error(text: str) -> str:
    """A job's stored error in the active language: ``shown``, and besides, a
    message the job took as it is from a refusal (a marked ValidationError
    raised in a worker, so in English) looked up in the catalog. Nobody types
    a job's error, so any catalog entry that matches it is its translation."""
    translated = shown(text)
    if translated != text or not text:
        return translated
    return gettext(text)
