"""Pieces shared by the apps' Django admin classes.

``BigTableAdmin``: the changelist of a table that grows to millions of rows
(codes, redemptions, enrollments, audit rows, users, notifications) never counts
the whole table. Django's admin counts twice per page: the filtered rows (for
the paginator) and every row (for "N of M"); the second is switched off with
``show_full_result_count = False`` and the first is replaced by
``EstimatedCountPaginator``.

``ReadOnlyAdmin``: rows written only by services (audit trails, histories,
jobs) are looked at in the admin, never added, changed or deleted there.
"""

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property

# Beyond this many matching rows the admin says "10,001 or more" in effect: a
# filtered count reads at most this many index entries, whatever the table.
COUNT_CAP = 10_000


def table_estimate(queryset) -> int:
    """PostgreSQL's own estimate of the rows of ``queryset``'s table, kept by
    ANALYZE and autovacuum (``pg_class.reltuples``); -1 when the table has never
    been analysed. One cheap catalogue read; PostgreSQL only."""
    with connections[queryset.db].cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [queryset.model._meta.db_table])
        row = cursor.fetchone()
    return int(row[0]) if row else -1


class EstimatedCountPaginator(Paginator):
    """A paginator whose ``count`` does not read the whole table on PostgreSQL.

    Unfiltered, the count is the planner's estimate of the table's rows when it
    is above ``COUNT_CAP``; otherwise (filtered, searched, or a small table) it
    is the exact count capped at ``COUNT_CAP + 1`` (a COUNT over a LIMIT, so it
    stops reading there). Pages past the counted ones are then out of reach
    from the page links; filters narrow the list instead. Other databases
    (SQLite, for development and tests) keep Django's exact count."""

    @cached_property
    def count(self) -> int:
        queryset: QuerySet = self.object_list  # type: ignore[assignment]  # the admin pages querysets
        if connections[queryset.db].vendor != "postgresql":
            return super().count
        if not queryset.query.where:
            estimate = table_estimate(queryset)
            if estimate > COUNT_CAP:
                return estimate
        return queryset.order_by()[: COUNT_CAP + 1].count()


class BigTableAdmin(admin.ModelAdmin):
    """A ModelAdmin for a table of millions of rows: no whole-table COUNT(*) per page."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False


class ParentRelatedFilter(admin.RelatedFieldListFilter):
    """A list filter over a relation of a related model (``batch__courses`` on
    codes): it offers the objects that related model points at, as Django's
    RelatedOnlyFieldListFilter would, but reads them from that model's (small)
    table rather than from the big one the list shows."""

    def field_choices(self, field, request, model_admin):
        ordering = self.field_admin_ordering(field, request, model_admin)
        pointed_at = field.model._default_manager.values(field.name)
        return field.get_choices(include_blank=False, ordering=ordering, limit_choices_to={"pk__in": pointed_at})


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the admin may look at but not add, change or delete (their services write them)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
