"""Serializers of the REST API: the query of the listing, the bulk enroll
request, and (for the schema only) the shapes of the answers."""

import copy
import re

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import ProhibitNullCharactersValidator
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from courses.models import COURSE_KEY_PATTERN, COURSE_KEY_RE
from enrollment_site.lib.identifiers import distinct_identifiers, split_all
from enrollments import periods
from enrollments.models import Action, Enrollment
from enrollments.periods import period_request
from enrollments.periods_asked import PERIOD_FIELDS

MAX_COURSES = 100
COHORT_NAME_MAX_LENGTH = 255


def _encodable(value: str | list[str]) -> None:
    # JSON may carry lone surrogates ("\ud800"), which no database column takes.
    # A list is encoded as one text: one call, not one per item.
    try:
        ("\n".join(value) if isinstance(value, list) else value).encode("utf-8")
    except UnicodeEncodeError:
        raise serializers.ValidationError(_("Text must be valid Unicode.")) from None


class TextField(serializers.CharField):
    """A CharField that takes strings only (DRF's also takes numbers), and
    refuses NUL characters (DRF's default) and lone surrogates."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators.append(_encodable)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


BOOLEAN_STRINGS = sorted(v for v in serializers.BooleanField.TRUE_VALUES | serializers.BooleanField.FALSE_VALUES if isinstance(v, str))
# DRF compares the lower-cased text: "True", "TRUE" and "true" all count; an
# empty form field is an unticked box (false).
BOOLEAN_STRING_PATTERN = "^(|{})$".format("|".join("".join(f"[{c}{c.upper()}]" if c.isalpha() else c for c in v) for v in BOOLEAN_STRINGS))


@extend_schema_field({"anyOf": [{"type": "boolean"}, {"type": "string", "pattern": BOOLEAN_STRING_PATTERN}, {"type": "integer", "enum": [0, 1]}]})
class FlagField(serializers.BooleanField):
    """DRF's BooleanField, documented with the spellings it accepts."""


NON_NEGATIVE_INTEGER = re.compile(r"[0-9]{1,1000}")


@extend_schema_field({"type": "integer", "minimum": 0})
class NonNegativeIntegerField(serializers.IntegerField):
    """Digits only: DRF's IntegerField also takes " 5", "5.0" and non-ASCII digits."""

    default_error_messages = {"invalid": gettext_lazy("Give a non-negative whole number of days, such as 7.")}

    def get_value(self, dictionary):
        # DRF reads an empty query parameter as an absent one; "days=" is an error here.
        if self.field_name in dictionary:
            return dictionary.get(self.field_name)
        return empty

    def to_internal_value(self, data):
        if isinstance(data, int) and not isinstance(data, bool) and data >= 0:
            return data
        if not isinstance(data, str) or not NON_NEGATIVE_INTEGER.fullmatch(data):
            self.fail("invalid")
        return int(data)


# What validate_courses accepts: comma-separated keys, blanks around and between ignored.
COURSES_PATTERN = rf"^(\s*,)*\s*{COURSE_KEY_PATTERN}\s*(,\s*({COURSE_KEY_PATTERN}\s*)?)*$"


CHARACTER_CHECKS = (ProhibitNullCharactersValidator, ProhibitSurrogateCharactersValidator)
MAX_LIST_ITEMS = 200_000  # a JSON list longer than any call may hold is refused before it is read


class TextListField(TextField):
    """A comma-separated string, or (as Open edX clients also send) a list of
    strings: a JSON array, or the same form field repeated. A list is kept a
    list, so that an item may hold a comma (a cohort name, say)."""

    def get_value(self, dictionary):
        if hasattr(dictionary, "getlist"):
            values = dictionary.getlist(self.field_name)
            if len(values) > 1:
                return values
        return super().get_value(dictionary)

    def to_internal_value(self, data):
        if isinstance(data, list):
            if len(data) > MAX_LIST_ITEMS:
                raise serializers.ValidationError(_("A list of at most %(n)s items.") % {"n": number_format(MAX_LIST_ITEMS, force_grouping=True)})
            if not all(isinstance(item, str) for item in data):
                raise serializers.ValidationError(_("Give a string, or a list of strings."))
            if any("\x00" in item for item in data):
                raise serializers.ValidationError(_("Null characters are not allowed."))
            return list(data)
        return super().to_internal_value(data)

    def run_validators(self, value):
        if not isinstance(value, list):
            return super().run_validators(value)
        # DRF's null and surrogate checks read str(value): for a list its repr,
        # in which both characters are escaped, so they never refuse a list and
        # only cost a Python step per character (for 10,000 identifiers, most
        # of the request's validation). to_internal_value has refused the
        # nulls, and _encodable refuses the surrogates.
        validators = self.validators
        self.validators = [v for v in validators if not isinstance(v, CHARACTER_CHECKS)]
        try:
            return super().run_validators(value)
        finally:
            self.validators = validators


def _string_or_list(string_schema: dict, *, example: str = "") -> dict:
    schema: dict = {"oneOf": [string_schema, {"type": "array", "items": {"type": "string"}}]}
    if example:
        schema["example"] = example
    return schema


@extend_schema_field(_string_or_list({"type": "string", "pattern": r"[^\s,;]"}))
class IdentifiersField(TextListField):
    pass


@extend_schema_field(_string_or_list({"type": "string", "pattern": COURSES_PATTERN}, example="course-v1:edX+DemoX+Demo_Course"))
class CourseKeysField(TextListField):
    pass


@extend_schema_field(_string_or_list({"type": "string"}))
class CohortNamesField(TextListField):
    pass


def unmangle_course_key(key: str) -> str:
    """A course key sent unencoded in a query string or form body arrives with
    its '+' turned into spaces; keys never contain spaces, so turn them back."""
    return key.strip().replace(" ", "+")


def _comma_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",")]


# --- GET /api/so2/v1/enrollments --------------------------------------------------


@extend_schema_field({"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$", "example": "2021-03-09 20:15"})
class MinuteDateTimeField(serializers.DateTimeField):
    """``YYYY-MM-DD HH:MM`` in the site's time zone, as integrators parse it."""

    FORMAT = "%Y-%m-%d %H:%M"

    def __init__(self, **kwargs):
        super().__init__(format=self.FORMAT, **kwargs)


STATUS_HELP = (
    "active (enrolled now), upcoming (enrolled, access not begun), expired (access ended) "
    "or inactive (unenrolled)"
)


# An item of the list, documented here; the list view writes the same keys
# from the page's values (enrollments.selectors.api_list).
class EnrollmentSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username")
    email = serializers.CharField(source="user.email")
    course_id = serializers.CharField(source="course.key")
    created = MinuteDateTimeField()
    access_from = MinuteDateTimeField(allow_null=True, help_text="Access starts at; null for at once.")
    access_until = MinuteDateTimeField(allow_null=True, help_text="Access ends at; null for no end.")
    status = serializers.SerializerMethodField(help_text=f"Now: {STATUS_HELP}.")

    class Meta:
        model = Enrollment
        fields = ["username", "email", "course_id", "is_active", "mode", "created", "access_from", "access_until", "status"]
        read_only_fields = fields

    @extend_schema_field({"type": "string", "enum": list(periods.STATUSES)})
    def get_status(self, enrollment) -> str:
        return periods.status(is_active=enrollment.is_active, access_from=enrollment.access_from,
                              access_until=enrollment.access_until, now=timezone.now())


# A blank value is no filter, as for the list's other parameters (DRF reads a
# blank optional query parameter as absent), so the schema allows it too.
@extend_schema_field({"type": "string", "enum": [*periods.STATUSES, ""]})
class StatusField(TextField):
    default_error_messages = {"unknown": format_lazy(gettext_lazy("Give one of {choices}."), choices=", ".join(periods.STATUSES))}

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if value and value not in periods.STATUSES:
            self.fail("unknown")
        return value


class EnrollmentQuerySerializer(serializers.Serializer):
    course_id = TextField(required=False, allow_blank=True, help_text="Only this course (its key, course-v1:ORG+NUMBER+RUN).")
    username = TextField(required=False, allow_blank=True, help_text="Only this user's enrollments.")
    days = NonNegativeIntegerField(
        required=False, help_text="Only enrollments created within the last N days (a non-negative integer)."
    )
    status = StatusField(required=False, allow_blank=True, help_text=f"Only enrollments whose status is now: {STATUS_HELP}; blank for any.")

    def get_fields(self):
        # Shallow copies: DRF deep-copies (re-creates) every declared field for
        # each instance, which on the list's path costs a good part of its query.
        # Binding sets attributes on the copy only; nothing else in them changes.
        return {name: copy.copy(field) for name, field in self._declared_fields.items()}


# --- POST /api/bulk_enroll/v1/bulk_enroll/ ---------------------------------------------


class BulkEnrollRequestSerializer(serializers.Serializer):
    identifiers = IdentifiersField(
        trim_whitespace=False,
        help_text="Usernames or email addresses, separated by commas, white space or new lines; or a list of them.",
    )
    action = serializers.ChoiceField(choices=Action.values, help_text="enroll or unenroll")
    auto_enroll = FlagField(
        default=False,
        help_text="With enroll: people without an account are enrolled as soon as they activate one with that email. "
        'A boolean; form data may say "true", "True", "1", "false", "0" and the like.',
    )
    email_students = FlagField(default=False, help_text="Send each person whose state changed an email. A boolean, spelled as for auto_enroll.")
    courses = CourseKeysField(help_text="Course keys (course-v1:ORG+NUMBER+RUN), separated by commas; or a list of them.")
    cohorts = CohortNamesField(
        required=False,
        allow_blank=True,
        default="",
        help_text="With enroll only: cohort names separated by commas, or a list of them, the n-th for the n-th course "
        "(an empty name for none). Everyone enrolled is put in the cohort, and each result's before and after "
        "then carry `cohort` (the person's cohort name, or null). A cohort the course does not have is a 400 "
        "naming it, unless create_cohorts is true.",
    )
    create_cohorts = FlagField(
        default=False, help_text="Create the cohorts named in cohorts that a course does not have yet (default false)."
    )
    dry_run = FlagField(
        default=False,
        help_text="Answer what the call would do, in the same JSON, with nothing written: no enrollment, invitation, "
        "cohort, audit entry or email. At most ENROLLMENT_SYNC_LIMIT identifiers times courses (never a job).",
    )
    reason = TextField(required=False, allow_blank=True, default="", max_length=2000, help_text="Why, for the audit trail.")
    # The period of access (enroll only; all optional: without them each course's default applies).
    access_from = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=40,
        help_text="With enroll: access starts then (YYYY-MM-DD, the start of that day in the site's time zone, or an ISO date-time).",
    )
    access_until = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=40,
        help_text="With enroll: access ends then (YYYY-MM-DD, the end of that day in the site's time zone, or an ISO date-time); "
        "after access_from.",
    )
    duration_days = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=10,
        help_text="With enroll: days of access (1 to 3650), from access_from or from enrolling; instead of access_until. "
        "An invitation keeps it until the person enrolls.",
    )

    def validate_identifiers(self, value: str | list[str]) -> list[str]:
        tokens = split_all(value)
        if not tokens:
            raise serializers.ValidationError(_("Give at least one username or email address."))
        cap = settings.ENROLLMENT_MAX_IDENTIFIERS
        # A cheap distinct count first, so that a hostile paste is refused before parsing.
        if len({token.lower() for token in tokens}) > cap:
            raise serializers.ValidationError(
                _("That is more than the %(cap)s identifiers one call may hold. Split the list and try again; nothing was changed.")
                % {"cap": number_format(cap, force_grouping=True)}
            )
        return [identifier.text for identifier in distinct_identifiers(tokens)]

    def validate_courses(self, value: str | list[str]) -> list[str]:
        items = value if isinstance(value, list) else _comma_list(value)
        keys = [unmangle_course_key(key) for key in items if key.strip()]
        if not keys:
            raise serializers.ValidationError(_("Give at least one course key."))
        malformed = [key for key in keys if not COURSE_KEY_RE.match(key)]
        if malformed:
            shown = ", ".join(repr(key[:100]) for key in malformed[:5])
            raise serializers.ValidationError(_("Not a course key of the form course-v1:ORG+NUMBER+RUN: %(keys)s.") % {"keys": shown})
        if len(keys) > MAX_COURSES:
            raise serializers.ValidationError(_("At most %(n)s courses per call.") % {"n": MAX_COURSES})
        return keys

    def validate_cohorts(self, value: str | list[str]) -> list[str]:
        # A list keeps its items whole (a name may hold a comma); a string is split on commas.
        names = [name.strip() for name in value] if isinstance(value, list) else _comma_list(value)
        if not any(names):
            return []
        too_long = [name for name in names if len(name) > COHORT_NAME_MAX_LENGTH]
        if too_long:
            raise serializers.ValidationError(_("A cohort name has at most %(n)s characters.") % {"n": COHORT_NAME_MAX_LENGTH})
        return names

    def validate(self, attrs):
        keys, cohorts = attrs["courses"], attrs.get("cohorts") or []
        if cohorts and attrs["action"] != "enroll":
            raise serializers.ValidationError({"cohorts": [_("Cohorts can only be given with the enroll action.")]})
        if cohorts and len(cohorts) != len(keys):
            raise serializers.ValidationError(
                {"cohorts": [
                    _("Give one cohort name per course, in the same order: %(courses)s but %(cohorts)s.") % {
                        "courses": ngettext("%(n)d course", "%(n)d courses", len(keys)) % {"n": len(keys)},
                        "cohorts": ngettext("%(n)d cohort", "%(n)d cohorts", len(cohorts)) % {"n": len(cohorts)},
                    }
                ]}
            )
        # A course named twice is run once, with the cohort given first.
        seen: dict[str, str] = {}
        for index, key in enumerate(keys):
            seen.setdefault(key, cohorts[index] if cohorts else "")
        attrs["courses"] = list(seen)
        attrs["cohorts"] = list(seen.values()) if cohorts else []
        attrs["period"] = self._period(attrs)
        total = len(attrs["identifiers"]) * len(attrs["courses"])
        cap = settings.ENROLLMENT_MAX_IDENTIFIERS
        if total > cap:
            raise serializers.ValidationError(
                {
                    "identifiers": [
                        _("%(identifiers)s in %(courses)s make %(total)s, more than the %(cap)s one call may hold. "
                          "Split the list and try again; nothing was changed.") % {
                            "identifiers": ngettext("%(n)s identifier", "%(n)s identifiers", len(attrs["identifiers"]))
                            % {"n": number_format(len(attrs["identifiers"]), force_grouping=True)},
                            "courses": ngettext("%(n)d course", "%(n)d courses", len(attrs["courses"])) % {"n": len(attrs["courses"])},
                            "total": number_format(total, force_grouping=True), "cap": number_format(cap, force_grouping=True),
                        }
                    ]
                }
            )
        return attrs

    def _period(self, attrs):
        """The period asked (``periods.period_request``), or None when the body
        names no period field (the answer then keeps the seed's shape). A bad
        value, or a period with unenroll, is a 400 naming the field."""
        given = [name for name in PERIOD_FIELDS if name in self.initial_data]
        values = {name: attrs.pop(name, None) or None for name in PERIOD_FIELDS}
        if not given:
            return None
        try:
            asked = period_request(**values)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        if attrs["action"] != Action.ENROLL and not asked.empty:
            name = next(name for name in PERIOD_FIELDS if values[name] is not None)
            raise serializers.ValidationError({name: [_("A period only applies to enroll: leave it out to unenroll. Nothing was changed.")]})
        return asked


# --- answer shapes (documentation only: answers are built by the services) -------------


class PersonStateSerializer(serializers.Serializer):
    enrollment = serializers.BooleanField(help_text="Actively enrolled in the course.")
    allowed = serializers.BooleanField(help_text="The email is allowed to enroll (no account, or not yet used).")
    user = serializers.BooleanField(help_text="An active account matches the identifier.")
    auto_enroll = serializers.BooleanField(help_text="The allowance enrolls the person on account activation.")
    cohort = serializers.CharField(
        required=False, allow_null=True,
        help_text="Present when the call named cohorts: the person's cohort in the course (its name), or null for none.",
    )


class IdentifierResultSerializer(serializers.Serializer):
    identifier = serializers.CharField()
    before = PersonStateSerializer()
    after = PersonStateSerializer()
    invalidIdentifier = serializers.BooleanField(  # noqa: N815 (the key Open edX clients parse)
        required=False, help_text="Present (true) when the identifier is neither a valid email nor a known username."
    )


class CourseResultSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=Action.values)
    results = IdentifierResultSerializer(many=True)
    auto_enroll = serializers.BooleanField()


class BulkEnrollResponseSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=Action.values)
    courses = serializers.DictField(child=CourseResultSerializer(), help_text="Keyed by course key.")
    email_students = serializers.BooleanField()
    auto_enroll = serializers.BooleanField()
    access_from = serializers.DateTimeField(
        required=False, allow_null=True, help_text="Only when the call named a period field: the start given (null for at once).",
    )
    access_until = serializers.DateTimeField(
        required=False, allow_null=True,
        help_text="Only when the call named a period field: the end given to those enrolled (a duration counted from now; "
        "null for none asked: each course's default applied).",
    )


class BulkEnrollAcceptedSerializer(serializers.Serializer):
    job_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=["queued", "running", "succeeded", "failed"])
    url = serializers.URLField(help_text="The job resource: poll it for progress and, once done, the answer.")


@extend_schema_field(BulkEnrollResponseSerializer(allow_null=True))
class JobResultField(serializers.JSONField):
    pass


class BulkEnrollJobSerializer(serializers.Serializer):
    job_id = serializers.UUIDField(source="public_id")
    status = serializers.ChoiceField(choices=["queued", "running", "succeeded", "failed"])
    done = serializers.IntegerField(help_text="Identifiers processed so far, counted over all courses.")
    total = serializers.IntegerField()
    error = serializers.CharField(help_text="Why the job failed; empty otherwise.")
    created = serializers.DateTimeField()
    started = serializers.DateTimeField(allow_null=True)
    finished = serializers.DateTimeField(allow_null=True)
    result = JobResultField(allow_null=True, help_text="Once the job succeeded: the same answer a 200 gives. Null before.")


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


VALIDATION_ERROR_SCHEMA = {
    "type": "object",
    "description": "The fields in error, each with its messages (or 'detail' for a body that cannot be parsed).",
    "additionalProperties": {"oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]},
}
