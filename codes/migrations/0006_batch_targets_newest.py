"""The links of batches to courses and groups become models of their own on
the tables they always had (no data moves), gain a copy of their batch's
``created``, and an index (target, created, batch) for a target's newest batches."""

import django.db.models.deletion
from django.db import migrations, models

BACKFILL = (
    "UPDATE {table} SET created = (SELECT b.created FROM codes_codebatch b WHERE b.id = {table}.codebatch_id)"
)


def link_model(name: str, target: str, to: str) -> migrations.CreateModel:
    # The model Django made for the auto-created table, field for field and index for index.
    return migrations.CreateModel(
        name=name,
        fields=[
            ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
            ("codebatch", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="codes.codebatch")),
            (target, models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to=to)),
        ],
        options={"db_table": f"codes_codebatch_{target}s", "unique_together": {("codebatch", target)}},
    )


def with_created(model: str, target: str, to: str, index: str) -> list:
    table = f"codes_codebatch_{target}s"
    return [
        migrations.AddField(model_name=model, name="created", field=models.DateTimeField(null=True)),
        migrations.RunSQL(BACKFILL.format(table=table), reverse_sql=migrations.RunSQL.noop),
        migrations.AlterField(model_name=model, name="created", field=models.DateTimeField()),
        migrations.AlterField(
            model_name=model, name="codebatch",
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="codes.codebatch"),
        ),
        migrations.AlterField(
            model_name=model, name=target,
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to=to),
        ),
        migrations.AddIndex(model_name=model, index=models.Index(fields=[target, "-created", "-codebatch"], name=index)),
    ]


class Migration(migrations.Migration):

    dependencies = [
        ("codes", "0005_code_batch_duration"),
        ("courses", "0001_initial"),
        ("organisations", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                link_model("CodeBatchCourse", "course", "courses.course"),
                link_model("CodeBatchGroup", "group", "organisations.group"),
                migrations.AlterField(
                    model_name="codebatch", name="courses",
                    field=models.ManyToManyField(blank=True, related_name="code_batches", through="codes.CodeBatchCourse", to="courses.course"),
                ),
                migrations.AlterField(
                    model_name="codebatch", name="groups",
                    field=models.ManyToManyField(blank=True, related_name="code_batches", through="codes.CodeBatchGroup", to="organisations.group"),
                ),
            ],
        ),
        *with_created("codebatchcourse", "course", "courses.course", "codebatch_course_newest"),
        *with_created("codebatchgroup", "group", "organisations.group", "codebatch_group_newest"),
        migrations.AddIndex(model_name="codebatch", index=models.Index(fields=["-created", "-id"], name="codebatch_newest")),
    ]
