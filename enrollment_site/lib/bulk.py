"""Fast plain inserts of many rows.

On PostgreSQL the rows go in as one ``INSERT ... SELECT FROM unnest(...)`` with
one array parameter per column: one statement and a handful of parameters,
whatever the row count. Rows are plain dicts of attribute values, so no model
instance is built per row (for tens of thousands of rows that is most of the
cost of ``bulk_create``). Elsewhere (SQLite, the embedded default) the rows go
through ``bulk_create``. No ids come back: use it for append-only rows such as
audit entries and outbox messages."""

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
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    columns: list[str] = []
    selected: list[str] = []
    arrays: list[str] = []
    aliases: list[str] = []
    scalars: list[object] = []  # one value each, for the columns the same in every row
    values: list[object] = []  # one array each, for the others
    for index, field in enumerate(fields):
        default = field.get_default() if not all(field.attname in row for row in rows) else None
        column = [row.get(field.attname, default) for row in rows]
        if not isinstance(field, _PLAIN) or isinstance(field, models.DateTimeField) and any(
            v is not None and getattr(v, "tzinfo", None) is None for v in column
        ):
            column = [field.get_db_prep_save(v, connection) for v in column]
        columns.append(quote(field.column))
        db_type = field.db_type(connection)
        first = column[0]
        if all(v == first and type(v) is type(first) for v in column):
            # The same value in every row (the course, the actor, the time...):
            # sent once, not as an array of ten thousand copies.
            selected.append(f"%s::{db_type}")
            scalars.append(first)
        else:
            alias = f"c{index}"
            selected.append(alias)
            arrays.append(f"%s::{db_type}[]")
            aliases.append(alias)
            values.append(column)
    table = quote(model._meta.db_table)
    if arrays:
        source = f" FROM unnest({', '.join(arrays)}) AS u({', '.join(aliases)})"
    else:
        source = " FROM generate_series(1, %s)"
        values.append(len(rows))
    sql = f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(selected)}{source}"  # noqa: S608 (names come from the model)
    values = scalars + values
    if unique_fields:
        conflict = ", ".join(quote(_column(model, f)) for f in unique_fields)
        updates = ", ".join(f"{quote(_column(model, f))} = EXCLUDED.{quote(_column(model, f))}" for f in update_fields or ())
        sql += f" ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
    elif ignore_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    with _server_binding_cursor() as cursor:
        cursor.execute(sql, values)


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
