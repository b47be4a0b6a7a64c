"""Code sets (ICD-10-CM, HCPCS, CPT, modifiers, POS, CARC/RARC, NCCI) and the claim scrubber."""
