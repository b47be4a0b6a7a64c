"""Eligibility: 270 requests, 271 benefits, and the patient's estimate."""
