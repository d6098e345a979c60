"""Parsing of pasted identifier lists (usernames or emails).

Tokens are separated by commas, white space or new lines. Zero-width characters
and byte-order marks are dropped and text is NFC-normalised, so that lists
copied out of spreadsheets and word processors parse the way they look.
Duplicates and case variants count once: the first spelling is kept.
"""

import csv
import functools
import io
import itertools
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.utils.translation import gettext

from .emails import email_key
from .upload_reader import sniff_delimiter

SEPARATORS = re.compile(r"[\s,;]+")
INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)
MAX_IDENTIFIER_LENGTH = 320
_validate_email = EmailValidator()


class Kind:
    EMAIL = "email"
    USERNAME = "username"
    INVALID = "invalid"


@dataclass(frozen=True)
class Identifier:
    text: str  # as typed (first spelling)
    key: str  # comparison key: lower-cased; for emails, email_key (punycode domain)
    kind: str


def split_identifiers(raw: str) -> list[str]:
    if raw and raw.isascii() and SEPARATORS.search(raw) is None:
        # One ASCII token (an API call's list item, a token split before): nothing to drop,
        # normalise or split, and a list of 10,000 is split up to three times per request.
        return [raw]
    text = unicodedata.normalize("NFC", (raw or "").translate(INVISIBLE))
    return [token for token in SEPARATORS.split(text) if token]


def normalize_email(text: str) -> str | None:
    """The comparison key of an email address (``enrollment_site.lib.emails.email_key``),
    or None if it is not a valid address."""
    if len(text) > MAX_IDENTIFIER_LENGTH or text.count("@") != 1:
        return None
    key = email_key(text)
    try:
        _validate_email(key)
    except ValidationError:
        return None
    return key


# A pasted list is parsed twice in one request (by its form or serializer, then
# by the service), and validating an email is most of the cost: the second
# pass finds every token here. Identifiers are immutable, so sharing is safe.
@functools.lru_cache(maxsize=20_000)
def classify(token: str) -> Identifier:
    if "@" in token:
        key = normalize_email(token)
        if key is None:
            return Identifier(token[:MAX_IDENTIFIER_LENGTH], token[:MAX_IDENTIFIER_LENGTH].lower(), Kind.INVALID)
        return Identifier(token, key, Kind.EMAIL)
    if len(token) > 150:
        return Identifier(token[:MAX_IDENTIFIER_LENGTH], token[:MAX_IDENTIFIER_LENGTH].lower(), Kind.INVALID)
    return Identifier(token, token.lower(), Kind.USERNAME)


def split_all(raw: str | list[str]) -> list[str]:
    """The tokens of a text, or of a list's items in order. A list is split as
    one text, its items joined by new lines: one pass of the expression instead
    of a call per item (an API call's 10,000), with the same tokens, as a new
    line separates them and nothing is dropped or composed across it."""
    return split_identifiers(raw if isinstance(raw, str) else "\n".join(raw))


def parse_identifiers(raw: str | list[str]) -> list[Identifier]:
    """Distinct identifiers in the order first seen."""
    return distinct_identifiers(split_all(raw))


def distinct_identifiers(tokens: Iterable[str]) -> list[Identifier]:
    """The distinct identifiers of tokens already split (``split_all``), in
    the order first seen."""
    seen: set[tuple[str, str]] = set()
    result = []
    for token in tokens:
        ident = classify(token)
        marker = (ident.kind if ident.kind != Kind.INVALID else "invalid", ident.key)
        if marker in seen:
            continue
        seen.add(marker)
        result.append(ident)
    return result


def count_tokens(raw: str) -> int:
    """How many tokens a paste holds, cheaply, for the size cap."""
    return len(split_identifiers(raw))


# Column headings that name the identifier column, by preference when a file
# has several: an explicit "identifier" column, then emails (which also invite
# people without an account), then usernames. Compared without case, spaces,
# hyphens or underscores, so "E-mail address" and "user_name" match.
IDENTIFIER_HEADINGS = {
    "identifier": ("identifier", "identifiers"),
    "email": ("email", "emails", "emailaddress", "emailaddresses", "mail"),
    "username": ("username", "usernames", "user", "login"),
}
# Headings of other columns: a first row made of these is a heading row even
# though it names no identifier column, so it is refused rather than enrolled.
OTHER_HEADINGS = {"name", "names", "firstname", "lastname", "fullname", "givenname", "surname", "familyname", "displayname", "first", "last"}


class NoIdentifierColumn(ValueError):
    """The file has a heading row but no column of emails or usernames."""


@dataclass(frozen=True)
class FileIdentifiers:
    """What was read from an uploaded file: the tokens, and how they were found."""

    tokens: list[str]
    rows: int  # rows (or lines) read, the heading row and blank rows excepted
    column: int | None = None  # 1-based column read; None for a plain text list
    heading: str = ""  # the heading of that column as written; "" without a heading row
    empty: int = 0  # rows with nothing in that column


def _heading_key(cell: str) -> str:
    return re.sub(r"[\s_\-]+", "", cell).lower()


def _identifier_column(cells: list[str]) -> int | None:
    keys = [_heading_key(cell) for cell in cells]
    for names in IDENTIFIER_HEADINGS.values():
        for index, key in enumerate(keys):
            if key in names:
                return index
    return None


def identifiers_from_csv_text(text: str) -> FileIdentifiers:
    """The identifiers of one column of a CSV file.

    The column is the one whose heading on the first row is identifier, email or
    username (in that preference, any position; the heading row is skipped);
    without such a heading, the first column, every row included. Other
    columns (names, departments) are never read. A first row of other headings
    only (``name,department``) raises NoIdentifierColumn; broken CSV raises
    csv.Error."""
    return identifiers_from_rows(csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(text), strict=True))


def identifiers_from_rows(table: Iterable[list[str]]) -> FileIdentifiers:
    """``identifiers_from_csv_text`` for rows already read (an upload read by
    ``enrollment_site.lib.uploads``): the same column choice and errors."""
    rows = (row for row in table if any(cell.strip() for cell in row))
    first = next(rows, None)
    if first is None:
        return FileIdentifiers(tokens=[], rows=0, column=1)
    cells = [cell.strip() for cell in first]
    column = _identifier_column(cells)
    heading = ""
    body: Iterator[list[str]]
    if column is not None:
        heading = cells[column]
        body = rows
    elif any(_heading_key(cell) in OTHER_HEADINGS for cell in cells) and not any("@" in cell for cell in cells):
        raise NoIdentifierColumn(
            gettext("The first row looks like column headings (%(headings)s), but none of them is "
                    "email, username or identifier. Head the column of emails or usernames with “email” or “username”.")
            % {"headings": ", ".join(c for c in cells if c)}
        )
    else:
        column = 0
        body = itertools.chain([first], rows)
    tokens: list[str] = []
    read = empty = 0
    for row in body:
        read += 1
        cell = row[column].strip() if column < len(row) else ""
        if not cell:
            empty += 1
        tokens.extend(split_identifiers(cell))
    return FileIdentifiers(tokens=tokens, rows=read, column=column + 1, heading=heading, empty=empty)


def identifiers_from_plain_text(text: str) -> FileIdentifiers:
    """A plain text list, read like the paste box; a first line that is just a
    heading such as ``email`` is skipped."""
    return identifiers_from_lines(text.splitlines())


def identifiers_from_lines(all_lines: Iterable[str]) -> FileIdentifiers:
    """``identifiers_from_plain_text`` for lines already read."""
    lines = [line for line in all_lines if line.strip()]
    if lines and _identifier_column([lines[0].strip()]) is not None:
        lines = lines[1:]
    return FileIdentifiers(tokens=[t for line in lines for t in split_identifiers(line)], rows=len(lines))


def default_column_choice(table: list[list[str]]) -> tuple[int, bool]:
    """The column (1-based) and whether the first row is a heading, as
    ``identifiers_from_rows`` would read ``table``: the column headed
    identifier, email or username; otherwise the first, with the first row a
    heading if it is made of other headings (``name,department``)."""
    first = next((row for row in table if any(cell.strip() for cell in row)), None)
    if first is None:
        return 1, False
    cells = [cell.strip() for cell in first]
    column = _identifier_column(cells)
    if column is not None:
        return column + 1, True
    looks_headed = any(_heading_key(cell) in OTHER_HEADINGS for cell in cells) and not any("@" in cell for cell in cells)
    return 1, looks_headed


def identifiers_from_column(table: list[list[str]], *, column: int, heading: bool) -> FileIdentifiers:
    """The identifiers of ``column`` (1-based) of ``table``, as the course team
    chose it, skipping the first non-blank row when ``heading``. Other columns
    are never read: a name beside an email never becomes an identifier."""
    rows = [row for row in table if any(cell.strip() for cell in row)]
    title = ""
    if heading and rows:
        first = rows.pop(0)
        title = first[column - 1].strip() if column - 1 < len(first) else ""
    tokens: list[str] = []
    empty = 0
    for row in rows:
        cell = row[column - 1].strip() if column - 1 < len(row) else ""
        if not cell:
            empty += 1
        tokens.extend(split_identifiers(cell))
    return FileIdentifiers(tokens=tokens, rows=len(rows), column=column, heading=title, empty=empty)
