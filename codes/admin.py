from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from enrollment_site.lib.admin import BigTableAdmin, ParentRelatedFilter

from .models import CodeBatch, EnrollmentCode, Redemption, Status
from .services import codes_deactivate


class StatusFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return Status.choices

    def queryset(self, request, queryset):
        if self.value() in Status.values:
            return queryset.filter_status(self.value())
        return queryset


@admin.action(description=_("Deactivate the selected codes (immediate and final)"))
def deactivate_selected(modeladmin, request, queryset):
    count = codes_deactivate(codes=EnrollmentCode.objects.filter(pk__in=queryset.values("pk")), actor=request.user)
    modeladmin.message_user(request, ngettext("%(n)d code deactivated.", "%(n)d codes deactivated.", count) % {"n": count}, messages.SUCCESS)


@admin.register(CodeBatch)
class CodeBatchAdmin(admin.ModelAdmin):
    list_display = ("id", "created", "created_by", "count", "prefix", "expires_on", "time_zone", "max_uses", "may_exceed_cap", "duration_days")
    list_filter = ("courses", "groups", "created")
    search_fields = ("prefix", "created_by__username", "courses__key", "groups__name")
    list_select_related = ("created_by",)
    readonly_fields = (
        "created", "created_by", "count", "prefix", "expires_on", "time_zone", "max_uses", "may_exceed_cap", "duration_days", "courses", "groups",
    )

    def has_add_permission(self, request):
        # Batches are generated on the codes pages, which check the targets and insert the codes.
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(EnrollmentCode)
class EnrollmentCodeAdmin(BigTableAdmin):
    list_display = ("code", "batch", "uses", "max_uses", "expires_on", "status_label", "created")
    list_filter = (StatusFilter, ("batch__courses", ParentRelatedFilter), ("batch__groups", ParentRelatedFilter), "batch")
    search_fields = ("code", "normalized")
    list_select_related = ("batch",)
    readonly_fields = (
        "code", "normalized", "batch", "max_uses", "uses", "expires_on", "expires_at", "deactivated_at", "deactivated_by", "created",
    )
    actions = [deactivate_selected]

    def get_queryset(self, request):
        return super().get_queryset(request).with_status()

    @admin.display(description=_("status"), ordering="status_value")
    def status_label(self, obj):
        return obj.get_status_display()

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Redemption)
class RedemptionAdmin(BigTableAdmin):
    list_display = ("code", "user", "created")
    list_filter = (("code__batch__courses", ParentRelatedFilter), ("code__batch__groups", ParentRelatedFilter), "code__batch", "created")
    search_fields = ("code__code", "user__username", "user__email")
    list_select_related = ("code", "user")
    readonly_fields = ("code", "user", "created")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
