"""The codes table's filters (django-filter), by the query-string names its shareable
URLs have always used: ``batch`` and ``status``."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from .models import CodeBatch, EnrollmentCode, EnrollmentCodeQuerySet, Status
from .selectors import Scope, codes_for_table


class CodeFilter(django_filters.FilterSet):
    """The codes of a scope, newest first, optionally of one of its batches and
    one status (the rows ``codes_for_table`` gives). A value the filter does not
    know (an unknown or foreign batch id, a made-up status) shows every code of
    the scope with the filters cleared, rather than an error page."""

    batch = django_filters.ModelChoiceFilter(queryset=CodeBatch.objects.none(), label=_("Batch"), empty_label=_("All batches"))
    status = django_filters.ChoiceFilter(choices=Status.choices, label=_("Status"), empty_label=_("All statuses"), method="filter_status")

    class Meta:
        model = EnrollmentCode
        fields = ["batch", "status"]

    def __init__(self, data: Any = None, *, scope: Scope):
        super().__init__(data or None, queryset=codes_for_table(scope=scope))
        self.filters["batch"].queryset = scope.batches()

    @classmethod
    def for_request(cls, data: Any, *, scope: Scope) -> CodeFilter:
        """The filter of a query string, or, when a value in it is not valid, none."""
        bound = cls(data, scope=scope)
        if bound.is_bound and not bound.is_valid():
            return cls(scope=scope)
        return bound

    def filter_status(self, queryset: EnrollmentCodeQuerySet, name: str, value: str) -> QuerySet[EnrollmentCode]:
        return queryset.filter_status(value)

    @property
    def query(self) -> dict[str, Any]:
        """The filters in force, as query-string parameters (for the export link and the way back)."""
        if not self.is_bound:
            return {}
        data = self.form.cleaned_data
        return {k: v for k, v in (("batch", data["batch"].pk if data.get("batch") else ""), ("status", data.get("status") or "")) if v}
