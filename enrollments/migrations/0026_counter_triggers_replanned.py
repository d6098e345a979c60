from django.db import migrations

from enrollments import counters


class Migration(migrations.Migration):
    """The counter triggers again, their statements planned on every call
    (``counters._pg_function``): a plan cached for empty transition tables made
    a large unenroll quadratic. The same counts as before; SQLite's are unchanged."""

    dependencies = [
        ('enrollments', '0025_verbose_names'),
    ]

    operations = [
        migrations.RunPython(counters.reinstall, migrations.RunPython.noop),
    ]
