"""The bulk enroll API's JSON answer, written faster than ``json.dumps`` walks it.

An answer for 10,000 identifiers holds 10,000 results of three small dicts
each, but only a handful of distinct states (four flags, and a cohort name
when the call named cohorts). ``BulkAnswerRenderer`` writes each state's JSON
once per answer and each result as one string built from those pieces; the
rest of the answer goes through DRF's own ``JSONRenderer``. The bytes are the
same as ``JSONRenderer``'s for the same data (tests/enrollments/test_api_renderer.py
compares them over every shape the answer takes)."""

import json
import uuid
from json.encoder import encode_basestring  # json.dumps's own string encoder with ensure_ascii=False

from rest_framework.renderers import JSONRenderer

from enrollments.services import ApiResults


class BulkAnswerRenderer(JSONRenderer):
    """DRF's ``JSONRenderer``, byte for byte, with each course's ``results``
    written from cached pieces. Anything else (an error, a 202, an indented
    answer asked for with ``Accept: application/json; indent=4``) is rendered
    by ``JSONRenderer`` itself."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        courses = data.get("courses") if isinstance(data, dict) else None
        if (
            not isinstance(courses, dict)
            or self.ensure_ascii
            or not self.compact
            or self.get_indent(accepted_media_type, renderer_context or {}) is not None
            or not all(isinstance(course, dict) and isinstance(course.get("results"), ApiResults) for course in courses.values())
        ):
            return super().render(data, accepted_media_type, renderer_context)
        # The answer without its results, each list replaced by a marker that no
        # text in it can hold (a fresh random token), rendered by DRF; then
        # each marker replaced by its list's JSON.
        token = uuid.uuid4().hex
        markers = {}
        skeleton_courses = {}
        for index, (key, course) in enumerate(courses.items()):
            marker = f"results-{token}-{index}"
            markers[json.dumps(marker)] = course["results"]
            skeleton_courses[key] = {**course, "results": marker}
        text = super().render({**data, "courses": skeleton_courses}, accepted_media_type, renderer_context).decode()
        states: dict[tuple, str] = {}
        for marker, results in markers.items():
            text = text.replace(marker, self._results(results, states), 1)
        return text.encode()

    def _results(self, results: ApiResults, states: dict[tuple, str]) -> str:
        """A results list's JSON; ``states`` caches each distinct state's JSON
        by its values, which is exact for what ``ApiResults`` promise: results
        of the keys ``identifier``, ``before``, ``after`` and (for an invalid
        one) ``invalidIdentifier``, in that order, and states of bools (the
        four flags, always in one order) and a cohort name or None after them."""
        dumps, parts = self._dumps, []
        for result in results:
            before, after = result["before"], result["after"]
            before_key, after_key = tuple(before.values()), tuple(after.values())
            before_text = states.get(before_key) or states.setdefault(before_key, dumps(before))
            after_text = states.get(after_key) or states.setdefault(after_key, dumps(after))
            tail = "}" if len(result) == 3 else ',"invalidIdentifier":' + dumps(result["invalidIdentifier"]) + "}"
            parts.append('{"identifier":' + encode_basestring(result["identifier"]) + ',"before":' + before_text + ',"after":' + after_text + tail)
        text = "[" + ",".join(parts) + "]"
        # As JSONRenderer does, for JavaScript's sake.
        return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")

    def _dumps(self, value) -> str:
        # JSONRenderer's own settings for one value (compact, not ASCII-only, strict).
        return json.dumps(value, cls=self.encoder_class, ensure_ascii=False, allow_nan=not self.strict, separators=(",", ":"))
