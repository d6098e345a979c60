from django.urls import path

from . import history, roster, views

urlpatterns = [
    path("so2/v1/enrollments", views.EnrollmentListView.as_view(), name="api_enrollments"),
    path("so2/v1/enrollments/", views.EnrollmentListSlashView.as_view(), name="api_enrollments_slash"),
    path("bulk_enroll/v1/bulk_enroll/", views.BulkEnrollView.as_view(), name="api_bulk_enroll"),
    path("bulk_enroll/v1/bulk_enroll", views.BulkEnrollSlashlessView.as_view(), name="api_bulk_enroll_slashless"),
    path("bulk_enroll/v1/jobs/<str:job_id>/", views.BulkEnrollJobView.as_view(), name="api_bulk_enroll_job"),
    path("courses/v1/<str:course_key>/enrollments/<str:identifier>/", history.LearnerStoryView.as_view(), name="api_course_enrollment_story"),
    path("courses/v1/<str:course_key>/allowances/", history.AllowanceListView.as_view(), name="api_course_allowances"),
    # Any text as the key (not the course_key converter), so that a malformed key gets the API's JSON 404.
    path("courses/v1/<str:course_key>/enrollments/", roster.CourseRosterView.as_view(), name="api_course_roster"),
]
