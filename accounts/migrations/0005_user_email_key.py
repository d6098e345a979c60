from django.db import migrations, models


class Migration(migrations.Migration):
    """The email key and username skeleton columns (filled by 0006); the unique
    rule moves from the lower-cased address to the key (0007)."""

    dependencies = [
        ("accounts", "0004_remove_user_company_department"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="email_key",
            field=models.CharField(db_index=True, default="", editable=False, max_length=320),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="user",
            name="email_key_clash",
            field=models.BooleanField(
                default=False, editable=False, verbose_name="email shared with an older account",
                help_text="Found when email keys were introduced: an older account has the same address in another spelling. "
                          "Both are kept; give this one its own address (the flag clears when the address changes).",
            ),
        ),
        migrations.AddField(
            model_name="user",
            name="username_skeleton",
            field=models.CharField(db_index=True, default="", editable=False, max_length=300),
            preserve_default=False,
        ),
        migrations.RemoveConstraint(
            model_name="user",
            name="accounts_user_email_ci_unique",
        ),
    ]
