"""Reads of the organisation, one module per concern.

- ``access.py``: the permission-checked fetches (a group for its leader, the
  organisation pages for platform administrators).
- ``targets.py``: a person's company and department (``user_placement``),
  units and groups as a ``Target`` (members, courses), the people a rule
  matches (``rule_users``, ``rules_snapshot``) and who qualifies for a course
  through any of them.
- ``plans.py``: what an assignment, a rule or a membership change would do
  (``plan_enroll``, ``plan_unenroll``, ``assignment_plan``, ``rule_plan``): the
  previews show these plans and ``services/plans.py`` carries them out.
- ``people.py``: a person's enrollments (accounts named by identifiers are
  ``accounts.selectors.users_by_identifier``).
- ``team.py``: My Team (a manager's reports, the courses open to them).

Every public name is importable from ``organisations.selectors`` itself.
"""

from .access import group_for_leader, org_admin_required
from .people import user_enrollments
from .plans import (
    CoursePlan,
    Person,
    Plan,
    PlanList,
    assignment_courses,
    assignment_plan,
    assignment_unlink_plans,
    courses_in,
    plan_enroll,
    plan_unenroll,
    rule_plan,
)
from .targets import Target, course_coverage_q, member_q, rule_q, rule_users, rules_snapshot, user_placement
from .team import courses_open_to_reports

__all__ = [
    "CoursePlan", "Person", "Plan", "PlanList", "Target",
    "assignment_courses", "assignment_plan", "assignment_unlink_plans", "course_coverage_q", "courses_in",
    "courses_open_to_reports", "group_for_leader", "member_q", "org_admin_required",
    "plan_enroll", "plan_unenroll", "rule_plan", "rule_q", "rule_users", "rules_snapshot",
    "user_enrollments", "user_placement",
]
