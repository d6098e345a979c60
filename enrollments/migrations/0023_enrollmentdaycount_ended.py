from django.conf import settings
from django.db import migrations, models

from enrollments import counters


def uninstall(apps, schema_editor):
    # Dropped while the counter table changes: SQLite rebuilds a table to add a column with a default.
    counters.run(counters.uninstall_sql(schema_editor.connection.vendor), schema_editor.connection)


def install(apps, schema_editor):
    """The triggers that count ends too, then the ends of the past from the audit
    trail (a set-based recount into the new column; the other counters are left as they are)."""
    vendor, tz = schema_editor.connection.vendor, settings.TIME_ZONE
    counters.run(counters.install_sql(vendor, tz) + counters.ended_fix_sql(vendor, tz), schema_editor.connection)


def install_without_ended(apps, schema_editor):
    counters.run(counters.install_sql(schema_editor.connection.vendor, settings.TIME_ZONE, ended=False), schema_editor.connection)


class Migration(migrations.Migration):

    dependencies = [
        ('enrollments', '0022_notification_period_kinds'),
    ]

    operations = [
        migrations.RunPython(uninstall, install_without_ended),
        migrations.AddField(
            model_name='enrollmentdaycount',
            name='ended',
            field=models.BigIntegerField(db_default=0, default=0),
        ),
        migrations.RunPython(install, uninstall),
    ]
