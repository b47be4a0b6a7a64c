"""Payers (2010BB) and the clearinghouse routes their claims travel by (ISA/GS identities)."""
