"""X12 5010 as a format: reading, writing, parsing and validating healthcare EDI.

A pure library: it imports only the standard library and pyx12, so it can be reused
by anyone who only wants an 837 writer or an 835 parser.
"""
