"""Fast inserts and upserts of many rows.

On PostgreSQL the rows go in as one ``INSERT ... SELECT FROM unnest(...)`` with
one array parameter per column: one statement and a handful of parameters,
whatever the row count. Rows are plain dicts of attribute values, so no model
instance is built per row (for tens of thousands of rows that is most of the
cost of ``bulk_create``). Elsewhere (SQLite, the embedded default) the rows go
through ``bulk_create``, or plain ``INSERT ... VALUES`` statements as large as
the backend allows.

``bulk_insert`` returns nothing: use it for append-only rows such as audit
entries and outbox messages. ``bulk_upsert_changed`` and ``bulk_insert_new``
report which rows their statement actually inserted or changed, for callers
that must decide what happened from the write itself (a row another
transaction wrote meanwhile is not theirs to report, audit or announce).

``sqlite_write_lock`` makes a transaction on SQLite take the database's write
lock before it reads what it will decide on."""

from typing import Any

from django.db import connection, models

# Values of these fields go to the driver as they are; others pass through the field.
_PLAIN = (models.CharField, models.TextField, models.BooleanField, models.IntegerField, models.UUIDField, models.DateTimeField, models.ForeignKey)


def bulk_insert(
    model: type[models.Model],
    rows: list[dict[str, Any]],
    *,
    ignore_conflicts: bool = False,
    unique_fields: list[str] | None = None,
    update_fields: list[str] | None = None,
) -> None:
    """Insert ``rows`` (dicts keyed by field attname; missing fields take their
    default). With ``unique_fields`` and ``update_fields`` a row that conflicts
    on the unique fields updates those fields instead (an upsert)."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        objs = [model(**row) for row in rows]
        if unique_fields:
            model._default_manager.bulk_create(objs, update_conflicts=True, unique_fields=unique_fields, update_fields=update_fields)
        else:
            model._default_manager.bulk_create(objs, ignore_conflicts=ignore_conflicts)
        return
    sql, values = _unnest_insert(model, rows)
    if unique_fields:
        quote = connection.ops.quote_name
        conflict = ", ".join(quote(_column(model, f)) for f in unique_fields)
        updates = ", ".join(f"{quote(_column(model, f))} = EXCLUDED.{quote(_column(model, f))}" for f in update_fields or ())
        sql += f" ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
    elif ignore_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    with _server_binding_cursor() as cursor:
        cursor.execute(sql, values)


def bulk_upsert_changed(
    model: type[models.Model],
    rows: list[dict[str, Any]],
    *,
    unique_fields: list[str],
    update_fields: list[str],
    changed: str,
    key: str,
) -> dict[Any, bool | None]:
    """Insert ``rows``; a row that conflicts on ``unique_fields`` with one
    whose ``changed`` field already holds the proposed value is left alone,
    any other conflicting row gets the ``update_fields``. One statement on
    PostgreSQL (a few on SQLite, by its parameter limit).

    Returns the rows the statement inserted or updated, by their ``key``
    attribute: True for inserted, False for updated, and None where the
    database cannot tell the two apart (SQLite; its callers hold the write
    lock since before their reads, see ``sqlite_write_lock``). A row left
    alone is missing: typically one a concurrent transaction wrote between
    the caller's read and this write (the statement waits for that
    transaction to end, then sees its row)."""
    if not rows:
        return {}
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    conflict = ", ".join(quote(_column(model, f)) for f in unique_fields)
    updates = ", ".join(f"{quote(_column(model, f))} = excluded.{quote(_column(model, f))}" for f in update_fields)
    column = quote(_column(model, changed))
    # "IS DISTINCT FROM" on PostgreSQL, "IS NOT" on SQLite: both treat NULLs as values.
    differs = "IS DISTINCT FROM" if connection.vendor == "postgresql" else "IS NOT"
    upsert = f" ON CONFLICT ({conflict}) DO UPDATE SET {updates} WHERE {table}.{column} {differs} excluded.{column}"
    key_column = f"{table}.{quote(_column(model, key))}"
    if connection.vendor == "postgresql":
        sql, values = _unnest_insert(model, rows)
        # xmax is 0 on a row version this statement inserted, and this
        # transaction's id on one it updated (it holds the row's lock).
        with _server_binding_cursor() as cursor:
            cursor.execute(f"{sql}{upsert} RETURNING {key_column}, ({table}.xmax = 0)", values)
            return dict(cursor.fetchall())
    return dict.fromkeys(_values_insert_returning(model, rows, f"{upsert} RETURNING {key_column}"))


def bulk_insert_new(model: type[models.Model], rows: list[dict[str, Any]], *, key: str) -> set:
    """Insert ``rows``, skipping any that conflict with an existing row (any
    unique constraint), and return the ``key`` attribute of those inserted:
    what this statement added, not what a concurrent transaction added first
    (the statement waits for that transaction to end, then skips its row)."""
    if not rows:
        return set()
    quote = connection.ops.quote_name
    suffix = f" ON CONFLICT DO NOTHING RETURNING {quote(model._meta.db_table)}.{quote(_column(model, key))}"
    if connection.vendor == "postgresql":
        sql, values = _unnest_insert(model, rows)
        with _server_binding_cursor() as cursor:
            cursor.execute(sql + suffix, values)
            return {row_key for (row_key,) in cursor.fetchall()}
    return set(_values_insert_returning(model, rows, suffix))


def _values_insert_returning(model: type[models.Model], rows: list[dict[str, Any]], suffix: str) -> list:
    """Not PostgreSQL: ``INSERT ... VALUES (...), ...<suffix>`` in as few
    statements as the backend's parameter limit allows; the first column of
    every row the statements return (``suffix`` ends in ``RETURNING <key>``)."""
    quote = connection.ops.quote_name
    fields = _fields(model)
    names = ", ".join(quote(f.column) for f in fields)
    returned: list = []
    size = max(connection.ops.bulk_batch_size(fields, rows), 1)
    with connection.cursor() as cursor:
        for start in range(0, len(rows), size):
            part = rows[start : start + size]
            placeholders = ", ".join(["(" + ", ".join(["%s"] * len(fields)) + ")"] * len(part))
            params = [field.get_db_prep_save(value, connection) for field, value in _row_values(fields, part)]
            sql = f"INSERT INTO {quote(model._meta.db_table)} ({names}) VALUES {placeholders}{suffix}"  # noqa: S608 (names come from the model)
            cursor.execute(sql, params)
            returned += [row[0] for row in cursor.fetchall()]
    return returned


def sqlite_write_lock(model: type[models.Model]) -> None:
    """On SQLite, take the database's write lock now (a write that changes
    nothing to ``model``'s table). A transaction there reads without the
    lock until its first write, so two of them could both read the same
    state and decide on it; holding the lock from before the reads, they
    queue instead. PostgreSQL needs nothing: its writers see each other's
    rows through row locks and the unique indexes."""
    if connection.vendor != "sqlite":
        return
    quote = connection.ops.quote_name
    pk = quote(model._meta.pk.column)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {quote(model._meta.db_table)} SET {pk} = {pk} WHERE 0")  # noqa: S608 (names come from the model)


def _fields(model: type[models.Model]) -> list[models.Field]:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


def _row_values(fields: list[models.Field], rows: list[dict[str, Any]]):
    """(field, value) for every field of every row, row by row; a missing value takes the field's default."""
    for row in rows:
        for field in fields:
            yield field, row[field.attname] if field.attname in row else field.get_default()


def _unnest_insert(model: type[models.Model], rows: list[dict[str, Any]]) -> tuple[str, list[object]]:
    """PostgreSQL: ``INSERT INTO <table> (...) SELECT ... FROM unnest(...)`` for
    ``rows`` and its parameters (to run on ``_server_binding_cursor``)."""
    fields = _fields(model)
    quote = connection.ops.quote_name
    columns: list[str] = []
    selected: list[str] = []
    arrays: list[str] = []
    aliases: list[str] = []
    scalars: list[object] = []  # one value each, for the columns the same in every row
    values: list[object] = []  # one array each, for the others
    # The keys any row has, found in C: a field no row names is its default in
    # every row, without a pass over the rows.
    named = set().union(*rows)
    for index, field in enumerate(fields):
        # A missing value takes the field's default (computed once: the same for every such row).
        default = field.get_default()
        column = [row.get(field.attname, default) for row in rows] if field.attname in named else [default] * len(rows)
        first = column[0]
        # count() and set() run in C: a column is told constant or not without a Python loop per row.
        constant = column.count(first) == len(column) and len(set(map(type, column))) == 1
        if not isinstance(field, _PLAIN) or isinstance(field, models.DateTimeField) and any(
            v is not None and getattr(v, "tzinfo", None) is None for v in ([first] if constant else column)
        ):
            if constant:
                first = field.get_db_prep_save(first, connection)
            else:
                column = [field.get_db_prep_save(v, connection) for v in column]
        columns.append(quote(field.column))
        db_type = field.db_type(connection)
        if constant:
            # The same value in every row (the course, the actor, the time...):
            # sent once, not as an array of ten thousand copies.
            selected.append(f"%s::{db_type}")
            scalars.append(first)
        else:
            alias = f"c{index}"
            selected.append(alias)
            # %b: the array goes in PostgreSQL's binary format, its elements
            # copied as they are rather than quoted and escaped one by one
            # (for 10,000 texts or times, a fifth to a tenth of the text format's cost).
            arrays.append(f"%b::{db_type}[]")
            aliases.append(alias)
            values.append(column)
    table = quote(model._meta.db_table)
    if arrays:
        source = f" FROM unnest({', '.join(arrays)}) AS u({', '.join(aliases)})"
    else:
        source = " FROM generate_series(1, %s)"
        values.append(len(rows))
    sql = f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(selected)}{source}"  # noqa: S608 (names come from the model)
    return sql, scalars + values


def array_cursor():
    """PostgreSQL: a cursor for a hand-written statement with large array
    parameters (``unnest(%b::text[], ...)``: ``%b`` sends one in binary, much
    cheaper to build than its text form), bound as ``bulk_insert`` binds them
    (see ``_server_binding_cursor``)."""
    return _server_binding_cursor()


def _server_binding_cursor():
    """A cursor on Django's connection (same transaction, counted and logged like
    any other) that sends parameters separately from the SQL, in binary: Django's
    default client-side binding would quote every array element into the SQL
    text, which costs more than the insert itself for tens of thousands of rows."""
    import psycopg

    connection.ensure_connection()
    return connection._prepare_cursor(psycopg.Cursor(connection.connection))


def _column(model: type[models.Model], name: str) -> str:
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field) and field.column, f"{name} is not a concrete field"
    return field.column
