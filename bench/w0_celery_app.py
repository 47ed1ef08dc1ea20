"""The Celery app of bench/w0_python.py: one no-op task, Redis as broker and result backend.

The worker (`celery -A w0_celery_app worker`) reads the Redis URL from $W0_REDIS_URL; the client builds its
own app with make_app(url). $W0_CELERY_CONF, a JSON object, overrides settings on both sides, for experiments
(e.g. '{"worker_prefetch_multiplier": 4, "task_track_started": true}').
"""
import json, os

from celery import Celery


def make_app(url):
    app = Celery("w0", broker=url, backend=url, set_as_current=False)
    app.conf.update(
        # Short tasks: let the worker reserve many messages per round trip to Redis (default 4 per process).
        worker_prefetch_multiplier=64,
        # The defaults, stated: ack just before running (not late), no STARTED state, no extended result metadata, no events.
        task_acks_late=False,
        task_track_started=False,
        result_extended=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        worker_disable_rate_limits=True,
        broker_connection_retry_on_startup=True,
    )
    app.conf.update(json.loads(os.environ.get("W0_CELERY_CONF", "{}")))

    @app.task(name="w0.noop", shared=False)  # shared tasks would be added to every app
    def noop(x):
        return x

    return app


app = make_app(os.environ.get("W0_REDIS_URL", "redis://127.0.0.1:6379/0"))
