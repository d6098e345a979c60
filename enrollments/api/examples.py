"""OpenAPI examples, taken from the Open edX enrollment API's documentation: the
request and answer formats there are contracts with existing clients."""

from drf_spectacular.utils import OpenApiExample

SEED_ENROLLMENTS = [
    {
        "username": "johndoe",
        "email": "john@example.com",
        "course_id": "course-v1:MOOCit-demo-1",
        "is_active": True,
        "mode": "audit",
        "created": "2021-03-09 20:15",
    },
    {
        "username": "JaneDoe",
        "email": "jane@example.com",
        "course_id": "course-v1:MOOCit-demo-2",
        "is_active": True,
        "mode": "audit",
        "created": "2022-03-09 14:52",
    },
]

SEED_COURSE = "course-v1:edX+DemoX+Demo_Course"


def _state(*, enrollment=False, allowed=False, user=False, auto_enroll=False) -> dict:
    return {"enrollment": enrollment, "allowed": allowed, "user": user, "auto_enroll": auto_enroll}


def _answer(action: str, results: list[dict], *, auto_enroll=True, email_students=True) -> dict:
    return {
        "action": action,
        "courses": {SEED_COURSE: {"action": action, "results": results, "auto_enroll": auto_enroll}},
        "email_students": email_students,
        "auto_enroll": auto_enroll,
    }


LIST_EXAMPLES = [
    OpenApiExample(
        "Enrollments",
        summary="Enrollments, newest first",
        value=SEED_ENROLLMENTS[0],
        response_only=True,
        status_codes=["200"],
    ),
    OpenApiExample(
        "Bad days",
        summary="days is not a non-negative integer",
        value={"days": ["Ensure this value is greater than or equal to 0."]},
        response_only=True,
        status_codes=["400"],
    ),
]

BULK_EXAMPLES = [
    OpenApiExample(
        "Enroll",
        summary="Enroll by email in one course",
        value={
            "action": "enroll",
            "auto_enroll": True,
            "email_students": True,
            "courses": SEED_COURSE,
            "identifiers": "test-email@example.com",
        },
        request_only=True,
    ),
    OpenApiExample(
        "Enroll in several courses with cohorts",
        value={
            "action": "enroll",
            "auto_enroll": True,
            "email_students": False,
            "courses": f"{SEED_COURSE},course-v1:edX+DemoX+2026",
            "cohorts": "Group A,Group B",
            "identifiers": "alice,bob@example.com\ncarol@example.com",
            "reason": "Spring intake",
        },
        request_only=True,
    ),
    OpenApiExample(
        "Lists, cohorts and a dry run",
        summary="Lists instead of comma-separated strings; what would happen, with nothing written",
        value={
            "action": "enroll",
            "auto_enroll": False,
            "email_students": True,
            "courses": [SEED_COURSE],
            "cohorts": ["cohort1"],
            "identifiers": ["NotEnrolledStudent", "carol@example.com"],
            "dry_run": True,
        },
        request_only=True,
    ),
    OpenApiExample(
        "Enrolled into a cohort",
        summary="With cohorts, each state carries the person's cohort (null for none)",
        value=_answer(
            "enroll",
            [{
                "identifier": "NotEnrolledStudent",
                "before": {**_state(user=True), "cohort": None},
                "after": {**_state(user=True, enrollment=True), "cohort": "cohort1"},
            }],
            auto_enroll=False,
            email_students=False,
        ),
        response_only=True,
        status_codes=["200"],
    ),
    OpenApiExample(
        "Enrolled",
        summary="An existing user enrolled",
        value=_answer(
            "enroll",
            [{"identifier": "test-email@example.com", "before": _state(user=True), "after": _state(user=True, enrollment=True)}],
        ),
        response_only=True,
        status_codes=["200"],
    ),
    OpenApiExample(
        "Unenrolled",
        summary="An enrolled user unenrolled (the seed's example)",
        value=_answer(
            "unenroll",
            [{"identifier": "test-email@example.com", "before": _state(user=True, enrollment=True), "after": _state(user=True)}],
        ),
        response_only=True,
        status_codes=["200"],
    ),
    OpenApiExample(
        "Allowed and invalid",
        summary="An unknown email allowed to enroll, and an invalid identifier",
        value=_answer(
            "enroll",
            [
                {"identifier": "new-person@example.com", "before": _state(), "after": _state(allowed=True, auto_enroll=True)},
                {"identifier": "not-an-email@", "before": _state(), "after": _state(), "invalidIdentifier": True},
            ],
        ),
        response_only=True,
        status_codes=["200"],
    ),
    OpenApiExample(
        "Accepted",
        summary="A large call running in the background",
        value={
            "job_id": "6f1c1f5e-8a57-4c43-9a0e-0d6f3b7c2a11",
            "status": "queued",
            "url": "https://your-platform-url.com/api/bulk_enroll/v1/jobs/6f1c1f5e-8a57-4c43-9a0e-0d6f3b7c2a11/",
        },
        response_only=True,
        status_codes=["202"],
    ),
    OpenApiExample(
        "Malformed",
        summary="A malformed body",
        value={"action": ['"subscribe" is not a valid choice.']},
        response_only=True,
        status_codes=["400"],
    ),
    OpenApiExample(
        "Unknown cohort",
        summary="A cohort the course does not have, without create_cohorts",
        value={"cohorts": [
            f"Cohort 'cohort3' not found in course {SEED_COURSE}.",
            "Nothing was changed in any course. Check the spelling, or send create_cohorts: true to create it.",
        ]},
        response_only=True,
        status_codes=["400"],
    ),
    OpenApiExample(
        "Forbidden",
        value={"detail": f"You are not on the team of {SEED_COURSE}. Nothing was changed in any course."},
        response_only=True,
        status_codes=["403"],
    ),
    OpenApiExample(
        "Unknown course",
        value={"detail": "No course with the key course-v1:edX+Nope+2026. Nothing was changed."},
        response_only=True,
        status_codes=["404"],
    ),
]

JOB_EXAMPLES = [
    OpenApiExample(
        "Running",
        value={
            "job_id": "6f1c1f5e-8a57-4c43-9a0e-0d6f3b7c2a11",
            "status": "running",
            "done": 5000,
            "total": 20000,
            "error": "",
            "created": "2026-03-09T20:15:00Z",
            "started": "2026-03-09T20:15:01Z",
            "finished": None,
            "result": None,
        },
        response_only=True,
        status_codes=["200"],
    ),
]
