from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_fill_email_keys"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="user",
            constraint=models.UniqueConstraint(
                condition=models.Q(("email_key_clash", False)), fields=("email_key",), name="accounts_user_email_key_unique"
            ),
        ),
    ]
