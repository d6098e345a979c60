from django.urls import path

from . import views

urlpatterns = [
    path("", views.group_list, name="group_list"),
]

# My Team, mounted at /team/ by the site's urls.
team_urlpatterns = [
    path("", views.team_page, name="my_team"),
]

# The course team's import, mounted under /courses/<course_key>/instructor/import/.
course_urlpatterns = [
    path("", views.course_import, name="course_import"),
    path("template/", views.course_import_template, name="course_import_template"),
    path("<uuid:import_id>/start/", views.course_import_start, name="course_import_start"),
    path("<uuid:import_id>/results.csv", views.course_import_results, name="course_import_results"),
    path("jobs/<uuid:job_id>/", views.course_job_status, name="course_org_job_status"),
]
