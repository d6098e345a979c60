from django.urls import path

from . import views

urlpatterns = [
    path("courses/<course_key:course_key>/enroll/", views.self_enroll, name="self_enroll"),
    path("courses/<course_key:course_key>/unenroll/", views.self_unenroll, name="self_unenroll"),
    path("courses/<course_key:course_key>/instructor/membership/batch/", views.batch_enrollment, name="batch_enrollment"),
    path("courses/<course_key:course_key>/instructor/membership/jobs/<uuid:job_id>/", views.batch_job_status, name="batch_job_status"),
    path("courses/<course_key:course_key>/instructor/membership/jobs/<uuid:job_id>/results/", views.batch_results, name="batch_results"),
    path("courses/<course_key:course_key>/instructor/membership/jobs/<uuid:job_id>/results.csv", views.batch_job_results, name="batch_job_results"),
]
