"""The organisation's pages, one module per page (``urls.py`` and ``urls_org.py`` name them through here).

- ``units.py``: /organisation/: units and groups, their Members and Assign tabs.
- ``enrollment_rules.py``: /organisation/rules/.
- ``imports.py``: /organisation/import/, and a course's import on its Membership tab.
- ``jobs.py``: an organisation job's progress, as its page polls it.
- ``users.py``: /organisation/users/ and a person's page.
- ``team.py``: /team/ (My Team).
- ``groups.py``: /groups/ (a group leader's groups).
- ``common.py``: the platform-administrators-only decorator, and small work in the request, big work as a job.
"""

from .enrollment_rules import rule_edit, rule_list
from .groups import group_list
from .imports import (
    course_import,
    course_import_results,
    course_import_start,
    course_import_template,
    import_page,
    import_results,
    import_start,
    import_template,
)
from .jobs import course_job_status, job_status
from .team import team_page
from .units import unit_assign, unit_create, unit_delete, unit_edit, unit_list, unit_members
from .users import user_list, user_page

__all__ = [
    "course_import", "course_import_results", "course_import_start", "course_import_template", "course_job_status",
    "group_list", "import_page", "import_results", "import_start", "import_template", "job_status", "rule_edit",
    "rule_list", "team_page", "unit_assign", "unit_create", "unit_delete", "unit_edit", "unit_list", "unit_members",
    "user_list", "user_page",
]
