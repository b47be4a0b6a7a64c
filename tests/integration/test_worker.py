"""A task sent through Redis to a real worker process, and its result read back."""

from __future__ import annotations

import uuid

import pytest
from celery import Celery

from claims_server.tasks.celery_app import PhiInTaskArgumentsError, check_task_arguments

pytestmark = [pytest.mark.redis, pytest.mark.worker]


def test_health_task_runs_in_a_real_worker_and_reaches_the_database(celery_worker_process):
    client = Celery(broker=celery_worker_process["broker_url"], backend=celery_worker_process["broker_url"])
    nonce = uuid.uuid4().hex
    result = client.send_task("claims_server.health.ping", args=[nonce], queue=celery_worker_process["queue"])
    answer = result.get(timeout=60)
    assert answer["nonce"] == nonce
    assert answer["eager"] is False
    assert answer["database"] is True


def test_reliability_settings_are_on():
    from claims_server.config import Settings
    from claims_server.tasks.celery_app import configure_celery

    conf = configure_celery(Settings()).conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["visibility_timeout"] > 0


@pytest.mark.parametrize(
    "args",
    [["Jane Doe"], [{"patient": 1}], ["x" * 65], [3.5]],
    ids=["name", "dict", "long-string", "float"],
)
def test_task_arguments_must_be_ids(args):
    with pytest.raises(PhiInTaskArgumentsError):
        check_task_arguments(args, {})


def test_ids_pass():
    check_task_arguments([1, "9f1c2d3e4b5a", None, True], {"claim_id": 42})
