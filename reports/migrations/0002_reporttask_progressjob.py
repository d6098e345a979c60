"""ReportTask joins the shared job lifecycle (enrollment_site.lib.jobs.ProgressJob):
``state`` becomes ``status`` (data kept: a rename), the partial unique index and the
sweep's index follow the new column, and every row gets a ``public_id``."""

import uuid

from django.db import migrations, models


def give_public_ids(apps, schema_editor):
    ReportTask = apps.get_model("reports", "ReportTask")
    rows = list(ReportTask.objects.only("pk"))
    for row in rows:
        row.public_id = uuid.uuid4()
    ReportTask.objects.bulk_update(rows, ["public_id"], batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0001_initial"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="reporttask", name="reporttask_one_pending_per_course_kind"),
        migrations.RemoveIndex(model_name="reporttask", name="reporttask_state_heartbeat"),
        migrations.RenameField(model_name="reporttask", old_name="state", new_name="status"),
        migrations.AddConstraint(
            model_name="reporttask",
            constraint=models.UniqueConstraint(
                condition=models.Q(status__in=["queued", "running"]), fields=("course", "kind"), name="reporttask_one_pending_per_course_kind"
            ),
        ),
        migrations.AddIndex(model_name="reporttask", index=models.Index(fields=["status", "heartbeat_at"], name="reporttask_status_heartbeat")),
        # A unique uuid on existing rows: added empty, filled one per row, then made unique.
        migrations.AddField(model_name="reporttask", name="public_id", field=models.UUIDField(editable=False, null=True)),
        migrations.RunPython(give_public_ids, migrations.RunPython.noop),
        migrations.AlterField(model_name="reporttask", name="public_id", field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
    ]
