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
   and Bopomofo (Chinese) or with Han and Hangul (Korean). Within those, a
   letter that passes for a Latin one beside Latin letters (``〇`` for ``O``)
   is refused too: what django-registration's ``validate_confusables`` refuses
   (``is_dangerous``);
3. refused if its *skeleton* (what it looks like, after TR39's skeleton)
   equals an existing account's: ``раураl`` in Cyrillic looks like
   ``paypal``, ``Iearner1`` like ``learner1``, ``𝐥earner1`` (mathematical
   bold) or ``ꮮearner1`` (Cherokee) like ``learner1`` too.

Scripts and look-alikes come from Unicode's own data (Scripts.txt and the
confusables.txt of TR39), as the confusable-homoglyphs package ships it.
"""

import functools
import unicodedata
from collections import defaultdict

from confusable_homoglyphs import categories, confusables

# Scripts that may share a username (TR39 "highly restrictive").
ALLOWED_SCRIPT_SETS = (
    frozenset({"Latin", "Han", "Hiragana", "Katakana"}),
    frozenset({"Latin", "Han", "Bopomofo"}),
    frozenset({"Latin", "Han", "Hangul"}),
)
# Shared by every script: digits, punctuation (Common), combining marks (Inherited).
_SHARED_SCRIPTS = {"COMMON", "INHERITED"}
# confusable-homoglyphs keeps the left-to-right marks that confusables.txt puts
# around right-to-left characters in its comments (``\u200eו\u200e``).
_DIRECTION_MARKS = str.maketrans("", "", "\u200e\u200f")
# Rounds of look-alike mapping and case-folding: case-folding a prototype can
# give a letter with look-alikes of its own (``Ȼ`` takes three rounds). No
# character needs more than three (tests/accounts/test_usernames.py checks every
# one); the rest is margin.
_SKELETON_ROUNDS = 5
# The stored column's length (User.username_skeleton). A skeleton can be several
# times its username (a Hangul syllable is up to three letters in NFD, and some
# map to two or three characters): a longer one is cut, so two usernames whose
# skeletons share their first 300 characters (Korean ones of 43 syllables or
# more that begin alike) count as look-alikes.
SKELETON_MAX_LENGTH = 300


def username_normalize(username: str) -> str:
    """NFKC, as ``AbstractBaseUser.normalize_username``: the form stored."""
    return unicodedata.normalize("NFKC", username)


def _script_name(alias: str) -> str:
    return alias.replace("_", " ").title()  # OLD_ITALIC → Old Italic


def username_scripts(username: str) -> set[str]:
    """The scripts of the letters of ``username`` (normalised first), by
    Unicode's Scripts.txt: ``{"Latin", "Cyrillic"}`` for ``lеarner1``. Digits,
    punctuation and combining marks belong to every script and are left out; a
    character Unicode's data does not know counts as a script of its own,
    ``"Unknown"``."""
    aliases = categories.unique_aliases(username_normalize(username))
    return {_script_name(alias) for alias in aliases if alias.upper() not in _SHARED_SCRIPTS}


def username_mixes_scripts(username: str) -> bool:
    """Whether ``username`` mixes scripts beyond the combinations TR39 allows."""
    scripts = username_scripts(username)
    return len(scripts) > 1 and not any(scripts <= allowed for allowed in ALLOWED_SCRIPT_SETS)


def username_latin_lookalikes(username: str) -> list[str]:
    """The letters of another script that pass for Latin ones in a username
    that mixes them with Latin letters (``〇`` in ``tanaka〇``), in order of
    appearance; empty when there are none or the username has no Latin letter.
    A username whose scripts mix beyond TR39's combinations
    (``username_mixes_scripts``) is refused before this matters."""
    normalized = username_normalize(username)
    if "Latin" not in username_scripts(normalized) or not confusables.is_dangerous(normalized, preferred_aliases=["latin"]):
        return []
    found = confusables.is_confusable(normalized, greedy=True, preferred_aliases=["latin"]) or []
    # Digits and punctuation that look like letters (1 and l) are allowed in
    # every username; the skeleton compares them.
    return [f["character"] for f in found if f["alias"].upper() not in _SHARED_SCRIPTS]


@functools.cache
def _prototype_table() -> dict[int, str]:
    """Unicode's confusables as a ``str.translate`` table: each character that
    looks like others maps to the *prototype* of its set of look-alikes
    (``а`` Cyrillic, ``𝐚``, ``ɑ`` → ``a``; ``1``, ``I``, ``ｌ`` → ``l``;
    ``m`` → ``rn``). Built once, from the package's data.

    confusables.txt holds one line per look-alike, ``source → prototype``;
    confusable-homoglyphs stores each line in both directions (the prototype
    lists its sources, each source its prototype). Each set of look-alikes is
    therefore a star around its prototype: the member next to all others, or,
    in a set of two, the one of several characters (a source is one). Members
    are taken in NFD, the form the skeleton maps."""
    neighbours: defaultdict[str, set[str]] = defaultdict(set)
    for char, homoglyphs in confusables.confusables_data.items():
        char = unicodedata.normalize("NFD", char.translate(_DIRECTION_MARKS))
        for homoglyph in homoglyphs:
            other = unicodedata.normalize("NFD", homoglyph["c"].translate(_DIRECTION_MARKS))
            if other != char:
                neighbours[char].add(other)
                neighbours[other].add(char)
    table: dict[int, str] = {}
    seen: set[str] = set()
    for start in neighbours:
        if start in seen:
            continue
        members, pending = {start}, [start]
        while pending:
            for other in neighbours[pending.pop()] - members:
                members.add(other)
                pending.append(other)
        seen |= members
        prototype = min(members, key=lambda m: (-len(neighbours[m]), -len(m), m))
        table.update((ord(m), prototype) for m in members if len(m) == 1 and m != prototype)
    return table


def _skeleton_round(text: str) -> str:
    """Every character to its prototype (before case-folding, so that a
    capital I reads as l), then case-folded; NFD throughout, so that ``ё``
    reads as ``ë``."""
    mapped = unicodedata.normalize("NFD", text.translate(_prototype_table()))
    return unicodedata.normalize("NFD", mapped.casefold())


def username_skeleton(username: str) -> str:
    """What ``username`` looks like, ignoring case: two usernames with the same
    skeleton can pass for each other (``learner1``, ``Iearner1``, ``𝐥earner1``
    and ``lеarner1`` with a Cyrillic е are all ``learnerl``). NFKC, then
    rounds of ``_skeleton_round`` until nothing changes; at most
    ``SKELETON_MAX_LENGTH`` characters."""
    text = unicodedata.normalize("NFD", username_normalize(username))
    for _ in range(_SKELETON_ROUNDS):
        mapped = _skeleton_round(text)
        if mapped == text:
            break
        text = mapped
    return text[:SKELETON_MAX_LENGTH]
