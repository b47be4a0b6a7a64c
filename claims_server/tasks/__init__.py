"""Celery tasks. Each task takes ids, never objects or PHI."""
