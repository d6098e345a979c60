from django.urls import path

from . import history_views, views

urlpatterns = [
    path("courses/", views.catalog, name="course_catalog"),
    path("courses/new/", views.course_new, name="course_new"),
    path("courses/<course_key:course_key>/", views.course_detail, name="course_detail"),
    path("courses/<course_key:course_key>/enroll/", views.self_enroll, name="self_enroll"),
    path("courses/<course_key:course_key>/unenroll/", views.self_unenroll, name="self_unenroll"),
    # The instructor dashboard's Course info and Membership tabs (registered in apps.py).
    path("courses/<course_key:course_key>/instructor/info/", views.instructor_info, name="instructor_info"),
    path("courses/<course_key:course_key>/instructor/membership/", views.instructor_membership, name="instructor_membership"),
    path("courses/<course_key:course_key>/instructor/team/add/", views.team_add, name="course_team_add"),
    path("courses/<course_key:course_key>/instructor/team/<int:user_id>/remove/", views.team_remove, name="course_team_remove"),
    path("courses/<course_key:course_key>/instructor/membership/batch/", views.batch_enrollment, name="batch_enrollment"),
    path("courses/<course_key:course_key>/instructor/membership/jobs/<uuid:job_id>/", views.batch_job_status, name="batch_job_status"),
    path("courses/<course_key:course_key>/instructor/membership/jobs/<uuid:job_id>/results/", views.batch_results, name="batch_results"),
    path("courses/<course_key:course_key>/instructor/membership/jobs/<uuid:job_id>/results.csv", views.batch_job_results, name="batch_job_results"),
    # The learner's story, the invitations table (both beside the learners table) and the audit log.
    path("courses/<course_key:course_key>/instructor/learners/story/", history_views.learner_story_view, name="learner_story"),
    path("courses/<course_key:course_key>/instructor/learners/invitations/", history_views.instructor_invitations, name="instructor_invitations"),
    path("courses/<course_key:course_key>/instructor/learners/invitations/action/", history_views.invitations_action, name="invitations_action"),
    path("courses/<course_key:course_key>/instructor/audit/", history_views.instructor_audit, name="instructor_audit"),
    path("courses/<course_key:course_key>/instructor/audit/export.csv", history_views.instructor_audit_export, name="instructor_audit_export"),
]
