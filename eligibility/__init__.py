"""Eligibility before the visit: 270 requests from a coverage, 271 answers as a benefits
summary a person can read, the patient's estimate, and the transport to the payer.

A pure library: imports ``edi`` and ``coding`` only (no Flask, SQLAlchemy or Celery).
"""
