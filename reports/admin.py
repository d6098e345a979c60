from django.contrib import admin

from .models import ReportTask


@admin.register(ReportTask)
class ReportTaskAdmin(admin.ModelAdmin):
    """Report tasks are written by workers; the admin looks, it does not edit."""

    list_display = ("id", "kind", "course", "requester", "status", "done", "total", "created", "finished")
    list_filter = ("status", "kind")
    search_fields = ("course__key",)
    list_select_related = ("course", "requester")
    date_hierarchy = "created"
    readonly_fields = [f.name for f in ReportTask._meta.fields]

    def has_add_permission(self, request):
        return False
