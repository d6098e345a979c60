"""Thin Celery tasks over the organisation services. They take ids only."""

from celery import shared_task

from . import services


@shared_task(name="organisations.tasks.run_org_job", acks_late=True)
def run_org_job(job_id):
    job = services.org_job_run(job_id=job_id)
    return job.status if job else "already taken"


@shared_task(name="organisations.tasks.refresh_rules")
def refresh_rules():
    """Periodic (beat): rules whose criteria depend on the date."""
    return services.rules_refresh()
