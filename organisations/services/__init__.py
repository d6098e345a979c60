"""Changes to the organisation and the enrollments that follow from it, one module per operation.

- ``plans.py``: ``plan_execute``, the one way the organisation changes
  enrollments: it carries out a plan computed in ``organisations/selectors/plans.py``
  through ``enrollment_batch_update``, recording where each enrollment came from.
- ``membership.py``: units and groups (create, rename, delete) and their
  members (``unit_members_add_identifiers`` with an outcome per identifier,
  ``unit_members_remove``, ``group_add_members``), and the previews of adding
  and removing (``unit_members_add_preview``, ``unit_members_remove_preview``)
  that their Confirm checks by fingerprint.
- ``assignments.py``: linking a course or a qualification to a unit or group,
  and unlinking it.
- ``enrollment_rules.py``: saving, previewing and applying rules, and
  reconciling them after people change (``rules_reconcile``, ``rules_refresh``).
- ``people.py``: a person's place in the organisation (``user_profile_update``),
  a new account (``user_joined``), the user page's enrollments.
- ``team.py``: My Team (a manager enrolling their reports).
- ``imports.py``: the xlsx/CSV import: check with a preview, start, run. The
  file format and its checks are ``organisations/import_file.py``.
- ``jobs.py`` and ``job_run.py``: queueing organisation work as a job, and running it.

Every public name is importable from ``organisations.services`` itself.
"""

from .assignments import assignment_apply, assignment_link, assignment_unlink, assignment_unlink_preview
from .enrollment_rules import rule_apply, rule_preview, rule_save, rules_reconcile, rules_refresh
from .imports import import_check, import_check_run, import_run, import_start, import_upload
from .job_run import org_job_run
from .jobs import org_job_create
from .membership import (
    MemberOutcome,
    MembersAdded,
    MembersPreview,
    MembersPreviewStale,
    RemovePreviewStale,
    group_add_members,
    member_outcomes,
    unit_members_add,
    unit_members_add_identifiers,
    unit_members_add_preview,
    unit_members_remove,
    unit_members_remove_preview,
    unit_remove,
    unit_save,
)
from .people import PROFILE_FIELDS, user_enroll_courses, user_joined, user_profile_update
from .plans import plan_execute
from .team import team_enroll, team_enroll_refusals

__all__ = [
    "PROFILE_FIELDS", "MemberOutcome", "MembersAdded", "MembersPreview", "MembersPreviewStale", "RemovePreviewStale",
    "assignment_apply", "assignment_link", "assignment_unlink", "assignment_unlink_preview",
    "group_add_members", "import_check", "import_check_run", "import_run", "import_start", "import_upload", "member_outcomes", "org_job_create",
    "org_job_run", "plan_execute", "rule_apply", "rule_preview", "rule_save",
    "rules_reconcile", "rules_refresh", "team_enroll", "team_enroll_refusals", "unit_members_add",
    "unit_members_add_identifiers", "unit_members_add_preview", "unit_members_remove", "unit_members_remove_preview", "unit_remove", "unit_save", "user_enroll_courses",
    "user_joined", "user_profile_update",
]
