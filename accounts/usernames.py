"""Usernames that look like someone else's.

A roster shows usernames, so ``lеarner1`` (with a Cyrillic е) or ``ｌearner1``
(fullwidth) would let one learner pass for another. A new username (sign-up,
Django admin) is therefore

1. NFKC-normalised, as Django does: fullwidth and other compatibility forms
   become their plain letters (``ｌearner1`` is ``learner1``, and taken);
2. refused if it mixes scripts: its letters must come from one script, plus
   digits and the punctuation usernames allow (Unicode's Common and Inherited
   characters), except the combinations Unicode TR39 calls *highly
   restrictive*: Latin with Han, Hiragana and Katakana (Japanese), with Han
   and Bopomofo (Chinese) or with Han and Hangul (Korean);
3. refused if its *skeleton* (what it looks like, after TR39's idea of a
   skeleton) equals an existing account's: ``раураl`` in Cyrillic looks like
   ``paypal``, ``Iearner1`` like ``learner1``.

No maintained confusables package is installed, so the script of a character
is read from its Unicode name (``CYRILLIC SMALL LETTER IE`` is Cyrillic) and
the skeleton uses the table below: the letters of Cyrillic, Greek and
Armenian that look like Latin ones, and Latin's own look-alikes (``0``/``o``,
``1``/``I``/``l``, ``rn``/``m``). It is deliberately small and explicit, not
the whole of Unicode's confusables data.
"""

import unicodedata

# Scripts that may share a username (TR39 "highly restrictive").
ALLOWED_SCRIPT_SETS = (
    frozenset({"Latin", "Han", "Hiragana", "Katakana"}),
    frozenset({"Latin", "Han", "Bopomofo"}),
    frozenset({"Latin", "Han", "Hangul"}),
)

# Unicode name prefixes whose script is not simply the first word.
_NAME_SCRIPTS = {"CJK": "Han", "IDEOGRAPHIC": "Han", "KATAKANA-HIRAGANA": "Katakana"}
# Letters named after something other than a script (MODIFIER LETTER APOSTROPHE):
# shared by every script, like digits.
_COMMON_PREFIXES = {"MODIFIER"}

# Look-alikes, to lower-case Latin. Keys in both cases where both look alike.
_CONFUSABLES = {
    # Cyrillic
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "ѕ": "s", "і": "i",
    "ј": "j", "ԁ": "d", "һ": "h", "ӏ": "l", "ԛ": "q", "ԝ": "w", "ү": "y", "ɡ": "g",
    "А": "a", "В": "b", "Е": "e", "К": "k", "М": "m", "Н": "h", "О": "o", "Р": "p", "С": "c", "Т": "t",
    "У": "y", "Х": "x", "Ѕ": "s", "І": "l", "Ј": "j", "Ԁ": "d", "Ү": "y", "Ӏ": "l", "Ԛ": "q", "Ԝ": "w",
    # Greek
    "α": "a", "ο": "o", "ν": "v", "ρ": "p", "ι": "i", "κ": "k", "υ": "u", "χ": "x", "γ": "y", "η": "n", "ϲ": "c",
    "ϳ": "j", "τ": "t",
    "Α": "a", "Β": "b", "Ε": "e", "Ζ": "z", "Η": "h", "Ι": "l", "Κ": "k", "Μ": "m", "Ν": "n", "Ο": "o",
    "Ρ": "p", "Τ": "t", "Υ": "y", "Χ": "x", "Ϲ": "c",
    # Armenian
    "օ": "o", "ս": "u", "ց": "g", "հ": "h", "ո": "n", "զ": "q",
    # Latin's own
    "0": "o", "1": "l", "I": "l", "ı": "i", "ɩ": "i", "ɑ": "a", "m": "rn", "M": "rn",
}
_CONFUSABLE_TABLE = str.maketrans(_CONFUSABLES)


def username_normalize(username: str) -> str:
    """NFKC, as ``AbstractBaseUser.normalize_username``: the form stored."""
    return unicodedata.normalize("NFKC", username)


def character_script(char: str) -> str | None:
    """The script of one character as this module counts it, or None for a
    character every script shares (digits, punctuation, combining marks)."""
    category = unicodedata.category(char)
    if category.startswith("M") or not category.startswith(("L", "N")) or char.isascii() and not char.isalpha():
        return None
    name = unicodedata.name(char, "")
    if not name:
        return f"U+{ord(char):04X}"  # an unnamed letter counts as a script of its own
    first = name.split(" ", 1)[0]
    if first in _COMMON_PREFIXES:
        return None
    return _NAME_SCRIPTS.get(first, first.title())


def username_scripts(username: str) -> set[str]:
    """The scripts of the letters of ``username`` (normalised first)."""
    return {s for s in map(character_script, username_normalize(username)) if s is not None}


def username_mixes_scripts(username: str) -> bool:
    """Whether ``username`` mixes scripts beyond the combinations TR39 allows."""
    scripts = username_scripts(username)
    return len(scripts) > 1 and not any(scripts <= allowed for allowed in ALLOWED_SCRIPT_SETS)


def username_skeleton(username: str) -> str:
    """What ``username`` looks like, ignoring case: two usernames with the same
    skeleton can pass for each other. NFKC, the look-alike table (before
    case-folding, so that a capital I reads as l), case-folding, the table
    again; decomposed (NFD) throughout, so that ``ё`` reads as ``ë``."""
    text = unicodedata.normalize("NFD", username_normalize(username)).translate(_CONFUSABLE_TABLE)
    text = unicodedata.normalize("NFD", text.casefold()).translate(_CONFUSABLE_TABLE)
    return unicodedata.normalize("NFD", text)
