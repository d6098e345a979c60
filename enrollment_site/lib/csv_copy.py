"""CSV straight from PostgreSQL: ``COPY (query) TO STDOUT`` with every cell
formatted and guarded in SQL exactly as ``safe_csv`` does it in Python, and the
stream written to a file as it arrives.

The bytes are the ones ``csv.writer`` + ``safe_row`` would write for the same
rows, so a report reads the same whichever path produced it:

- text: ``NULL`` and ``''`` are an empty unquoted cell (PostgreSQL quotes an
  empty string to tell it from ``NULL``; Python's writer does not), a cell
  starting with a formula trigger (``safe_csv.TRIGGERS``) gets a leading ``'``;
- booleans ``true``/``false``, date-times ``YYYY-MM-DD HH:MM:SS`` in UTC
  (what Django hands Python with ``USE_TZ``; fractions cut, not rounded),
  dates ``YYYY-MM-DD``, numbers as PostgreSQL prints them;
- quoting: both quote a cell holding a comma, a quote, CR or LF, and double
  the quotes inside (PostgreSQL also quotes a lone ``\\.``, but only in a
  one-column COPY);
- rows end with CRLF as Python's writer ends them (PostgreSQL ends them with LF).

``copy_csv`` reads the COPY on the Django connection's own psycopg 3
connection: libpq hands over one row at a time, each row is copied into a
chunk of about ``CHUNK_BYTES`` and each chunk is written before the next is
filled, so memory stays flat however many rows there are."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import IO

from django.db import connection as default_connection
from django.db.models import QuerySet

from .safe_csv import TRIGGERS

TEXT = "text"  # guarded like safe_cell guards a string; NULL and '' are empty
PLAIN = "plain"  # as it is: a number, or text already guarded (or that cannot start with a trigger), NULL for empty
BOOL = "bool"
DATETIME = "datetime"
DATE = "date"

CHUNK_BYTES = 1 << 20
TRIGGER_CODES = ", ".join(str(ord(trigger)) for trigger in TRIGGERS)

# Every character Python's str.strip() removes (str.isspace()), for btrim():
# a name joined in SQL is stripped exactly as the Python path strips it.
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def _cell(kind: str, column: str) -> str:
    """The SQL of one formatted cell of ``column`` (a plain column reference,
    so naming it three times costs nothing)."""
    if kind == TEXT:
        # ascii() is the first character's code point: integers compared, nothing allocated per row
        return f"CASE WHEN ascii({column}) IN ({TRIGGER_CODES}) THEN '''' || {column} ELSE nullif({column}, '') END"
    if kind == PLAIN:
        return column
    if kind == BOOL:
        return f"CASE WHEN {column} THEN 'true' WHEN NOT {column} THEN 'false' END"
    if kind == DATETIME:
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"
    if kind == DATE:
        return f"to_char({column}, 'YYYY-MM-DD')"
    raise ValueError(f"Unknown cell kind {kind!r}")


def csv_select(queryset: QuerySet, kinds: Sequence[str]) -> tuple[str, list]:
    """A SELECT of the formatted, guarded cells of ``queryset``, and its parameters.

    ``queryset`` is a ``values_list`` whose first value is the row order (its
    primary key, say: it is not output) followed by one value per column, of
    the kinds ``kinds`` names. Its SQL becomes a subquery, so a computed value
    is computed once even when its cell names it three times; the subquery
    keeps its ORDER BY (PostgreSQL does not flatten a sorted subquery), which
    then serves the outer ORDER BY without a second sort."""
    sql, params = queryset.query.sql_with_params()
    columns = [f"c{i}" for i in range(1, len(kinds) + 1)]
    cells = ", ".join(_cell(kind, f"r.{column}") for kind, column in zip(kinds, columns, strict=True))
    select = f"SELECT {cells} FROM ({sql}) AS r(k, {', '.join(columns)}) ORDER BY r.k"  # noqa: S608 (SQL compiled by Django, values as parameters)
    return select, list(params)


def copy_csv(sql: str, params: list, out: IO[bytes], *, on_chunk: Callable[[int], None] | None = None, connection=None) -> int:
    """Stream ``COPY (sql) TO STDOUT`` as CSV rows ended by CRLF into ``out``;
    returns the number of rows. ``on_chunk(rows so far)`` is called after each
    chunk of about ``CHUNK_BYTES`` is written.

    The COPY holds the connection until it ends: ``on_chunk`` must not use it
    (record progress from another thread, which has a connection of its own)."""
    import psycopg  # PostgreSQL only: an SQLite install need not have it

    connection = connection or default_connection
    connection.ensure_connection()
    rows = 0
    chunk = bytearray()
    # Bound on the client whatever the connection's options: COPY takes no server-side parameters.
    with psycopg.ClientCursor(connection.connection) as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", params) as copy:
        # libpq hands over exactly one row at a time, ended by PostgreSQL's LF
        # (a line break inside a quoted cell is never the last byte).
        for rows, row in enumerate(copy, 1):  # noqa: B007 (the count is the loop's result)
            chunk += row[:-1]
            chunk += b"\r\n"
            if len(chunk) >= CHUNK_BYTES:
                out.write(chunk)
                chunk.clear()
                if on_chunk is not None:
                    on_chunk(rows)
    out.write(chunk)
    return rows
