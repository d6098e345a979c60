from django.urls import path

from . import views

urlpatterns = [
    path("courses/<course_key:course_key>/instructor/data/", views.instructor_data, name="instructor_data"),
    path("courses/<course_key:course_key>/instructor/data/reports/", views.report_request_view, name="report_request"),
    path("courses/<course_key:course_key>/instructor/data/tasks/", views.report_tasks_fragment, name="report_tasks"),
    path(
        "courses/<course_key:course_key>/instructor/data/reports/<int:report_id>/download/",
        views.report_download,
        name="report_download",
    ),
]
