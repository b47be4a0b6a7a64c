"""Patient statements with state: the run, its Celery tasks and CLI, delivery (``delivery.py``)."""
