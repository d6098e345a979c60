"""The course roster's search: a trigram GIN index over username, email and
full name, so that a part of any of them (prefix or substring, any case) is
found without reading every account. PostgreSQL only (pg_trgm); on SQLite the
migration does nothing and the roster's search scans, which is fine at the
sizes SQLite serves.

The indexed expression is exactly what ``enrollments.selectors.roster``
compares (``roster_search_text`` under ``icontains``): keep the two the same,
or the planner stops using the index."""

from django.db import migrations

INDEX = "accounts_user_search_trgm"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON accounts_user USING gin "
        "((UPPER((username || ' ' || email || ' ' || first_name || ' ' || last_name)::text)) gin_trgm_ops)"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0007_user_email_key_unique")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
