from django.urls import path

from . import views, views_actions, views_history, views_roster, views_settings, views_undo

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
    path("courses/<course_key:course_key>/instructor/membership/preview/<slug:token>/", views.batch_preview, name="batch_preview"),
    path("courses/<course_key:course_key>/instructor/membership/file/<uuid:job_id>/", views.batch_upload_columns, name="batch_upload_columns"),
    path("courses/<course_key:course_key>/instructor/membership/preview/<slug:token>/confirm/", views.batch_confirm, name="batch_confirm"),
    path("courses/<course_key:course_key>/instructor/membership/preview/<slug:token>/status/", views.batch_preview_status, name="batch_preview_status"),
    path("courses/<course_key:course_key>/instructor/membership/jobs/<uuid:job_id>/", views.batch_job_status, name="batch_job_status"),
    path("courses/<course_key:course_key>/instructor/membership/jobs/<uuid:job_id>/results/", views.batch_results, name="batch_results"),
    path("courses/<course_key:course_key>/instructor/membership/jobs/<uuid:job_id>/results.csv", views.batch_job_results, name="batch_job_results"),
    # The learner's story, the invitations table (both beside the learners table) and the audit log.
    path("courses/<course_key:course_key>/instructor/learners/story/", views_history.learner_story_view, name="learner_story"),
    path("courses/<course_key:course_key>/instructor/learners/invitations/", views_history.instructor_invitations, name="instructor_invitations"),
    path("courses/<course_key:course_key>/instructor/learners/invitations/action/", views_history.invitations_action, name="invitations_action"),
    path("courses/<course_key:course_key>/instructor/audit/", views_history.instructor_audit, name="instructor_audit"),
    path("courses/<course_key:course_key>/instructor/audit/export.csv", views_history.instructor_audit_export, name="instructor_audit_export"),
    path("courses/<course_key:course_key>/instructor/audit/operations/<uuid:operation_id>/undo/", views_undo.operation_undo_view, name="operation_undo"),
    path("courses/<course_key:course_key>/instructor/audit/undo-jobs/<uuid:job_id>/", views_undo.undo_job_status, name="undo_job_status"),
    # The Learners tab: the course roster, its exports and bulk actions (views_roster.py).
    path("courses/<course_key:course_key>/instructor/learners/", views_roster.instructor_learners, name="instructor_learners"),
    path("courses/<course_key:course_key>/instructor/learners/export.csv", views_roster.learners_export_csv, name="learners_export_csv"),
    path("courses/<course_key:course_key>/instructor/learners/export.xlsx", views_roster.learners_export_xlsx, name="learners_export_xlsx"),
    path("courses/<course_key:course_key>/instructor/learners/bulk/", views_roster.learners_bulk, name="learners_bulk"),
    # The learners table's row actions and the progress of its large actions.
    path("courses/<course_key:course_key>/instructor/learners/<int:enrollment_id>/<slug:action>/", views_actions.learner_action, name="learner_action"),
    path("courses/<course_key:course_key>/instructor/learners/jobs/<uuid:job_id>/", views_actions.roster_job_status, name="roster_job_status"),
    # The Settings tab (registered in apps.py): the course's settings, its cohorts and their history.
    path("courses/<course_key:course_key>/instructor/settings/", views_settings.instructor_settings, name="instructor_settings"),
    path("courses/<course_key:course_key>/instructor/settings/cohorts/", views_settings.cohort_add, name="course_cohort_add"),
    path("courses/<course_key:course_key>/instructor/settings/cohorts/<int:cohort_id>/rename/", views_settings.cohort_rename_view, name="course_cohort_rename"),
    path("courses/<course_key:course_key>/instructor/settings/cohorts/<int:cohort_id>/delete/", views_settings.cohort_delete_view, name="course_cohort_delete"),
]
