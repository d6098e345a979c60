# Company and department now live in the Placement model a layer above; the
# migration that creates it copies them there first (it declares run_before
# this one, so this one names nothing above accounts).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0003_user_organisation"),
    ]

    operations = [
        migrations.RemoveField(model_name="user", name="company"),
        migrations.RemoveField(model_name="user", name="department"),
    ]
