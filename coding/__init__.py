"""Code sets (ICD-10-CM, HCPCS, CPT, modifiers, POS, CARC/RARC, NCCI) and the claim scrubber.

Modules (import what you need; nothing loads data at import time):

- ``coding.icd10cm``: ICD-10-CM releases by fiscal year (``load()``, ``default()``).
- ``coding.hcpcs``: HCPCS Level II by quarter, CMS fixed-width loader.
- ``coding.cpt``: CPT format/section checks, licensed-file loaders.
- ``coding.modifiers``, ``coding.reference``: modifiers, POS, frequency, states, taxonomy.
- ``coding.adjustment_codes``: group codes, CARCs, RARCs with plain-language explanations.
- ``coding.ncci``: PTP and MUE loaders and store, add-on code table.
- ``coding.scrubber``: ``Scrubber``, ``scrub()``, ``PayerRules``, ``ScrubFinding``.
- ``coding.build_data``: rebuilds ``coding/data/`` from the public sources.
"""
