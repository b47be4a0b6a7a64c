"""WSGI entry point for gunicorn: ``gunicorn claims_server.wsgi:app``."""

from claims_server import create_app

app = create_app()
