"""The organisation's filterable lists (django-filter), by the query-string names
their shareable URLs have always used."""

from __future__ import annotations

import django_filters
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

User = get_user_model()


class UserFilter(django_filters.FilterSet):
    """People on /organisation/users/: ``q`` finds a part of the username, the
    email or the last name, whatever its case; empty or blank finds everyone."""

    q = django_filters.CharFilter(method="search", label=_("Search"))

    class Meta:
        model = User
        fields = ["q"]

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(username__icontains=value) | Q(email__icontains=value) | Q(last_name__icontains=value))
