"""``gc_paused``: the cyclic collector is off while a large batch is built,
and back as it was afterwards, even when the batch fails."""

import gc

import pytest

from enrollment_site.lib.gc_pause import gc_paused, without_gc


@pytest.fixture
def collector_on():
    gc.enable()
    yield
    gc.enable()


def test_the_collector_is_off_inside_and_on_again_after(collector_on):
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_failure_inside_switches_it_back_on(collector_on):
    @without_gc
    def batch():
        assert not gc.isenabled()
        raise ValueError("refused")

    with pytest.raises(ValueError):
        batch()
    assert gc.isenabled()


def test_a_collector_found_off_stays_off(collector_on):
    gc.disable()
    with gc_paused():
        pass
    assert not gc.isenabled()


@pytest.mark.django_db
def test_the_batch_service_runs_without_the_collector(monkeypatch, collector_on):
    from enrollments.services import batch

    from ..factories import CourseFactory

    seen = []
    resolve = batch._resolve

    def resolve_and_look(identifiers):
        seen.append(gc.isenabled())
        return resolve(identifiers)

    monkeypatch.setattr(batch, "_resolve", resolve_and_look)
    batch.enrollment_batch_update(
        course=CourseFactory(), identifiers=["someone@example.com"], action="enroll", auto_enroll=False, email_students=False, actor=None,
    )
    assert seen == [False] and gc.isenabled()
