# Batch outcomes were stored by their display label ("enrolled again"); they
# are stored by a stable key ("reactivated") now, the label being for display
# only. This rewrites the keys of BatchJob.summary and the outcome of each
# BatchJob.results row, both ways. The mapping is written out here, not taken
# from enrollments.models.Outcome, so that a later change of a label does not
# change what this migration did. A value in neither vocabulary is left as it is.

from django.db import migrations

BATCH = 500

LABEL_TO_KEY = {
    "enrolled": "enrolled",
    "enrolled again": "reactivated",
    "already enrolled": "already_enrolled",
    "allowed: will enroll on activation": "allowed_auto",
    "allowed: must enroll themself": "allowed",
    "unenrolled": "unenrolled",
    "allowance removed": "allowance_removed",
    "was not enrolled": "not_enrolled",
    "named twice": "duplicate",
    "invalid email": "invalid_email",
    "no such user": "no_such_user",
}
KEY_TO_LABEL = {key: label for label, key in LABEL_TO_KEY.items()}


def _rewrite(apps, mapping):
    BatchJob = apps.get_model("enrollments", "BatchJob")
    # The ids first: SQLite does not isolate a cursor from writes to its own table.
    pks = list(BatchJob.objects.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(pks), BATCH):
        changed = []
        for job in BatchJob.objects.filter(pk__in=pks[start:start + BATCH]).only("pk", "summary", "results"):
            summary: dict = {}
            for outcome, count in (job.summary or {}).items():
                name = mapping.get(outcome, outcome)
                summary[name] = summary.get(name, 0) + count
            results = job.results
            if results is not None:
                results = [{**row, "outcome": mapping.get(row["outcome"], row["outcome"])} if "outcome" in row else row for row in results]
            if summary != (job.summary or {}) or results != job.results:
                job.summary, job.results = summary, results
                changed.append(job)
        BatchJob.objects.bulk_update(changed, ["summary", "results"])


def labels_to_keys(apps, schema_editor):
    _rewrite(apps, LABEL_TO_KEY)


def keys_to_labels(apps, schema_editor):
    _rewrite(apps, KEY_TO_LABEL)


class Migration(migrations.Migration):

    dependencies = [
        ("enrollments", "0005_notification_reason"),
    ]

    operations = [
        migrations.RunPython(labels_to_keys, keys_to_labels, elidable=True),
    ]
