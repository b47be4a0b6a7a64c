"""Patients and their coverages (2000B/2010BA, 2000C/2010CA). Demographics are PHI."""
