"""Fast plain inserts of many rows.

On PostgreSQL the rows go in as one ``INSERT ... SELECT FROM unnest(...)`` with
one array parameter per column: one statement and a handful of parameters,
whatever the row count. Rows are plain dicts of attribute values, so no model
instance is built per row (for tens of thousands of rows that is most of the
cost of ``bulk_create``). Elsewhere (SQLite, the embedded default) the rows go
through ``bulk_create``. No ids come back: use it for append-only rows such as
audit entries and outbox messages."""

from django.db import connection, models

# Values of these fields go to the driver as they are; others pass through the field.
_PLAIN = (models.CharField, models.TextField, models.BooleanField, models.IntegerField, models.UUIDField, models.DateTimeField, models.ForeignKey)


def bulk_insert(
    model,
    rows: list[dict],
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
            model.objects.bulk_create(objs, update_conflicts=True, unique_fields=unique_fields, update_fields=update_fields)
        else:
            model.objects.bulk_create(objs, ignore_conflicts=ignore_conflicts)
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    columns, arrays, values = [], [], []
    for field in fields:
        default = field.get_default() if not all(field.attname in row for row in rows) else None
        column = [row.get(field.attname, default) for row in rows]
        if not isinstance(field, _PLAIN) or isinstance(field, models.DateTimeField) and any(
            v is not None and getattr(v, "tzinfo", None) is None for v in column
        ):
            column = [field.get_db_prep_save(v, connection) for v in column]
        columns.append(connection.ops.quote_name(field.column))
        arrays.append(f"%s::{field.db_type(connection)}[]")
        values.append(column)
    table = connection.ops.quote_name(model._meta.db_table)
    sql = f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest({', '.join(arrays)})"  # noqa: S608 (names come from the model)
    if unique_fields:
        quote = connection.ops.quote_name
        conflict = ", ".join(quote(model._meta.get_field(f).column) for f in unique_fields)
        updates = ", ".join(f"{quote(model._meta.get_field(f).column)} = EXCLUDED.{quote(model._meta.get_field(f).column)}" for f in update_fields)
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
