# An import counts in its job's summary what the enrollment did under the
# import's own names ("enrolled", "reactivated", "allowances", "left_alone");
# any other batch outcome was counted under its display label ("named twice")
# and is counted under the outcome's key ("duplicate") now (enrollments 0006
# does the same for batch jobs). Only those labels are rewritten, both ways:
# "enrolled", "reactivated" and "unenrolled" are the import's own names and stay.
# Written out here so that a later change of a label does not change this migration.

from django.db import migrations

BATCH = 500

LABEL_TO_KEY = {
    "allowed: must enroll themself": "allowed",
    "allowance removed": "allowance_removed",
    "was not enrolled": "not_enrolled",
    "named twice": "duplicate",
    "invalid email": "invalid_email",
    "no such user": "no_such_user",
}
KEY_TO_LABEL = {key: label for label, key in LABEL_TO_KEY.items()}


def _rewrite(apps, mapping):
    OrgJob = apps.get_model("organisations", "OrgJob")
    # The ids first: SQLite does not isolate a cursor from writes to its own table.
    pks = list(OrgJob.objects.filter(kind="import").order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(pks), BATCH):
        changed = []
        for job in OrgJob.objects.filter(pk__in=pks[start:start + BATCH]).only("pk", "summary"):
            summary: dict = {}
            for name, value in (job.summary or {}).items():
                name = mapping.get(name, name)
                # only counts are renamed; "finished" (a timestamp) keeps its name
                summary[name] = summary[name] + value if name in summary else value
            if summary != (job.summary or {}):
                job.summary = summary
                changed.append(job)
        OrgJob.objects.bulk_update(changed, ["summary"])


def labels_to_keys(apps, schema_editor):
    _rewrite(apps, LABEL_TO_KEY)


def keys_to_labels(apps, schema_editor):
    _rewrite(apps, KEY_TO_LABEL)


class Migration(migrations.Migration):

    dependencies = [
        ("organisations", "0005_placement"),
    ]

    operations = [
        migrations.RunPython(labels_to_keys, keys_to_labels, elidable=True),
    ]
