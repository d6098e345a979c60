# A person's company and department move from accounts.User to Placement, so
# that accounts no longer refers to organisations. This migration copies the
# values across; accounts 0004 then drops the user's columns. ``run_before``
# orders the two from this side: the lower app's migration names nothing here.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models import Q

BATCH = 2000


def placements_from_users(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    Placement = apps.get_model("organisations", "Placement")
    placed = (
        User.objects.filter(Q(company__isnull=False) | Q(department__isnull=False))
        .order_by("pk").values_list("pk", "company_id", "department_id")
    )
    Placement.objects.bulk_create(
        (Placement(user_id=pk, company_id=company, department_id=department) for pk, company, department in placed.iterator()),
        batch_size=BATCH,
    )
    if schema_editor.connection.vendor == "postgresql":
        # A table filled in one go has no statistics until autovacuum comes by:
        # meanwhile PostgreSQL guesses a department holds a few dozen people and
        # plans rule matching for that (a plain NOT IN subplan: seconds, not ms).
        schema_editor.execute("ANALYZE organisations_placement")


def users_from_placements(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    Placement = apps.get_model("organisations", "Placement")
    users = [
        User(pk=pk, company_id=company, department_id=department)
        for pk, company, department in Placement.objects.order_by("user_id").values_list("user_id", "company_id", "department_id")
    ]
    User.objects.bulk_update(users, ["company", "department"], batch_size=BATCH)


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0003_user_organisation"),
        ("organisations", "0004_orgimport_results_file"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]
    run_before = [("accounts", "0004_remove_user_company_department")]

    operations = [
        migrations.CreateModel(
            name="Placement",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("company", models.ForeignKey(blank=True, limit_choices_to={"kind": "company"}, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="company_placements", to="organisations.orgunit")),
                ("department", models.ForeignKey(blank=True, limit_choices_to={"kind": "department"}, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="department_placements", to="organisations.orgunit")),
                ("user", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name="placement", to=settings.AUTH_USER_MODEL)),
            ],
        ),
        migrations.RunPython(placements_from_users, users_from_placements),
    ]
