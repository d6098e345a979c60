"""One guard for every CSV the product writes.

A spreadsheet treats a cell that starts with ``= + - @``, tab, carriage return
or line feed as a formula; an email such as ``=HYPERLINK(...)@x.org`` or a
course name could then run in a course team member's spreadsheet. Such text
cells get a leading apostrophe. Numbers, booleans and dates stay native values.
"""

import csv
import datetime
import io
from collections.abc import Iterable

TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")


def safe_cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, datetime.date):
        return value.isoformat()
    text = str(value)
    if text.startswith(TRIGGERS):
        return "'" + text
    return text


def safe_row(values: Iterable) -> list:
    return [safe_cell(v) for v in values]


def write_csv(rows: Iterable[Iterable]) -> str:
    """The rows as CSV text (RFC 4180 quoting), every cell guarded."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow(safe_row(row))
    return buffer.getvalue()
