"""Parsing of pasted identifier lists (usernames or emails).

Tokens are separated by commas, white space or new lines. Zero-width characters
and byte-order marks are dropped and text is NFC-normalised, so that lists
copied out of spreadsheets and word processors parse the way they look.
Duplicates and case variants count once: the first spelling is kept.
"""

import re
import unicodedata
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator

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
    key: str  # comparison key: lower-cased, IDNA domain for emails
    kind: str


def split_identifiers(raw: str) -> list[str]:
    text = unicodedata.normalize("NFC", (raw or "").translate(INVISIBLE))
    return [token for token in SEPARATORS.split(text) if token]


def normalize_email(text: str) -> str | None:
    """The comparison key of an email address, or None if it is not valid."""
    if len(text) > MAX_IDENTIFIER_LENGTH or text.count("@") != 1:
        return None
    local, domain = text.rsplit("@", 1)
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    candidate = f"{local}@{domain}"
    try:
        _validate_email(candidate)
    except ValidationError:
        return None
    return candidate.lower()


def classify(token: str) -> Identifier:
    if "@" in token:
        key = normalize_email(token)
        if key is None:
            return Identifier(token[:MAX_IDENTIFIER_LENGTH], token[:MAX_IDENTIFIER_LENGTH].lower(), Kind.INVALID)
        return Identifier(token, key, Kind.EMAIL)
    if len(token) > 150:
        return Identifier(token[:MAX_IDENTIFIER_LENGTH], token[:MAX_IDENTIFIER_LENGTH].lower(), Kind.INVALID)
    return Identifier(token, token.lower(), Kind.USERNAME)


def parse_identifiers(raw: str | list[str]) -> list[Identifier]:
    """Distinct identifiers in the order first seen."""
    tokens = split_identifiers(raw) if isinstance(raw, str) else [t for item in raw for t in split_identifiers(item)]
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


HEADER_NAMES = {"email", "emails", "e-mail", "username", "usernames", "identifier", "identifiers", "user"}


def tokens_from_csv_text(text: str) -> list[str]:
    """Every non-empty cell of a CSV (or plain text) file, a header row of
    column names such as ``email`` excepted. Raises csv.Error on broken CSV."""
    import csv
    import io

    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    tokens: list[str] = []
    for row_number, row in enumerate(reader):
        cells = [cell.strip() for cell in row if cell.strip()]
        if row_number == 0 and cells and all(cell.lower() in HEADER_NAMES for cell in cells):
            continue
        for cell in cells:
            tokens.extend(split_identifiers(cell))
    return tokens
