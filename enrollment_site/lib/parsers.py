"""A JSON parser for the API that answers hostile nesting with a 400."""

from django.utils.translation import gettext
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, except that a body nested deeper than Python's
    recursion limit (``[`` a hundred thousand times: a few hundred kilobytes)
    is a JSON 400 like any other unparseable body. Without this the decoder's
    RecursionError escapes DRF's handling and becomes an HTML 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as error:
            raise ParseError(gettext("JSON parse error - the body is nested too deeply.")) from error
