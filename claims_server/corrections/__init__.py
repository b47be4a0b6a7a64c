"""Corrected (frequency 7) and void (frequency 8) claims, and appeals with their deadlines."""
