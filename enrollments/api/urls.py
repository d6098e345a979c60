from django.urls import path

from . import roster, views

urlpatterns = [
    path("so2/v1/enrollments", views.EnrollmentListView.as_view(), name="api_enrollments"),
    path("so2/v1/enrollments/", views.EnrollmentListSlashView.as_view(), name="api_enrollments_slash"),
    path("bulk_enroll/v1/bulk_enroll/", views.BulkEnrollView.as_view(), name="api_bulk_enroll"),
    path("bulk_enroll/v1/bulk_enroll", views.BulkEnrollSlashlessView.as_view(), name="api_bulk_enroll_slashless"),
    path("bulk_enroll/v1/jobs/<str:job_id>/", views.BulkEnrollJobView.as_view(), name="api_bulk_enroll_job"),
    path("courses/v1/<course_key:course_key>/enrollments/", roster.CourseRosterView.as_view(), name="api_course_roster"),
]
