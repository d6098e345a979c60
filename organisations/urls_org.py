"""/organisation/: units, assignments, rules, import and user pages (platform administrators)."""

from django.urls import path

from . import views

kinds = "<str:kind>"

urlpatterns = [
    path("", views.unit_list, name="org_unit_list"),
    path(f"units/{kinds}/new/", views.unit_create, name="org_unit_create"),
    path(f"units/{kinds}/<int:pk>/", views.unit_edit, name="org_unit_edit"),
    path(f"units/{kinds}/<int:pk>/delete/", views.unit_delete, name="org_unit_delete"),
    path(f"units/{kinds}/<int:pk>/members/", views.unit_members, name="org_unit_members"),
    path(f"units/{kinds}/<int:pk>/assign/", views.unit_assign, name="org_unit_assign"),
    path("rules/", views.rule_list, name="org_rule_list"),
    path("rules/new/", views.rule_edit, name="org_rule_create"),
    path("rules/<int:pk>/", views.rule_edit, name="org_rule_edit"),
    path("jobs/<uuid:job_id>/", views.job_status, name="org_job_status"),
    path("import/", views.import_page, name="org_import"),
    path("import/template/", views.import_template, name="org_import_template"),
    path("import/<uuid:import_id>/start/", views.import_start, name="org_import_start"),
    path("import/<uuid:import_id>/results.csv", views.import_results, name="org_import_results"),
    path("users/", views.user_list, name="org_user_list"),
    path("users/<int:pk>/", views.user_page, name="org_user_page"),
]
