"""enrollments 0006 / organisations 0006: outcomes stored by their label
("enrolled again") are stored by their key ("reactivated") and back, in batch
job summaries and results rows and in an import job's summary. The rows are
written with the models of that time (later migrations add job columns) and
read back through the current models, loading only the columns these touch."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from enrollments.models import BatchJob
from organisations.models import OrgJob

from ..factories import CourseFactory

BEFORE = [("enrollments", "0005_notification_reason"), ("organisations", "0005_placement")]
AFTER = [("enrollments", "0006_outcome_keys"), ("organisations", "0006_import_outcome_keys")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def historical(model, targets):
    """``model`` as it was at ``targets``, for writing rows there."""
    state = MigrationExecutor(connection).loader.project_state(targets)
    return state.apps.get_model(model._meta.app_label, model._meta.model_name)


def current(model, row, *fields):
    """``row`` as the current ``model``, with only ``fields`` loaded (what a refresh reloads)."""
    return model.objects.only(*fields).get(pk=row.pk)


def row(identifier, outcome):
    return {"identifier": identifier, "outcome": outcome, "username": "", "email": "", "note": "", "error": False}


LABELLED_SUMMARY = {"enrolled": 1, "enrolled again": 2, "named twice": 1, "no such user": 3, "allowed: will enroll on activation": 4}
KEYED_SUMMARY = {"enrolled": 1, "reactivated": 2, "duplicate": 1, "no_such_user": 3, "allowed_auto": 4}
LABELLED_ROWS = [row("amy", "enrolled again"), row("amy@example.com", "named twice"), row("ghost", "no such user")]
KEYED_ROWS = [row("amy", "reactivated"), row("amy@example.com", "duplicate"), row("ghost", "no_such_user")]
IMPORT_LABELLED = {"enrolled": 2, "reactivated": 1, "allowances": 1, "left_alone": 1, "named twice": 1, "finished": "2026-01-01T00:00:00+00:00"}
IMPORT_KEYED = {"enrolled": 2, "reactivated": 1, "allowances": 1, "left_alone": 1, "duplicate": 1, "finished": "2026-01-01T00:00:00+00:00"}


@pytest.mark.one_database
@pytest.mark.django_db(transaction=True)
def test_stored_outcomes_go_from_labels_to_keys_and_back():
    leaves = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        migrate(BEFORE)
        course = CourseFactory()
        batches, org_jobs = historical(BatchJob, BEFORE).objects, historical(OrgJob, BEFORE).objects
        inline = batches.create(course_id=course.pk, action="enroll", summary=LABELLED_SUMMARY, results=LABELLED_ROWS)
        background = batches.create(course_id=course.pk, action="unenroll", summary={"was not enrolled": 5, "unenrolled": 1})
        unknown = batches.create(course_id=course.pk, action="enroll", summary={"something else": 1}, results=[row("x", "something else")])
        imported = org_jobs.create(kind=OrgJob.Kind.IMPORT, summary=IMPORT_LABELLED)
        # a rule's summary uses the import's names too, and "reactivated" there is not an outcome label
        rule = org_jobs.create(kind=OrgJob.Kind.RULE, summary={"enrolled": 1, "reactivated": 1, "unenrolled": 1})
        inline, background, unknown = (current(BatchJob, job, "summary", "results") for job in (inline, background, unknown))
        imported, rule = (current(OrgJob, job, "kind", "summary") for job in (imported, rule))

        migrate(AFTER)
        inline.refresh_from_db(), background.refresh_from_db(), unknown.refresh_from_db(), imported.refresh_from_db(), rule.refresh_from_db()
        assert (inline.summary, inline.results) == (KEYED_SUMMARY, KEYED_ROWS)
        assert (background.summary, background.results) == ({"not_enrolled": 5, "unenrolled": 1}, None)
        assert (unknown.summary, unknown.results) == ({"something else": 1}, [row("x", "something else")])
        assert imported.summary == IMPORT_KEYED
        assert rule.summary == {"enrolled": 1, "reactivated": 1, "unenrolled": 1}
        # what the page shows is what it showed before
        assert BatchJob(summary=inline.summary).summary_lines == [
            ("enrolled", 1), ("enrolled again", 2), ("allowed: will enroll on activation", 4), ("named twice", 1), ("no such user", 3),
        ]
        assert [r["outcome"] for r in BatchJob(results=inline.results).result_rows] == ["enrolled again", "named twice", "no such user"]
        assert "1 named twice" in OrgJob(kind=OrgJob.Kind.IMPORT, summary=imported.summary).summary_text

        migrate(BEFORE)
        inline.refresh_from_db(), background.refresh_from_db(), imported.refresh_from_db(), rule.refresh_from_db()
        assert (inline.summary, inline.results) == (LABELLED_SUMMARY, LABELLED_ROWS)
        assert background.summary == {"was not enrolled": 5, "unenrolled": 1}
        assert imported.summary == IMPORT_LABELLED
        assert rule.summary == {"enrolled": 1, "reactivated": 1, "unenrolled": 1}
    finally:
        migrate(leaves)
