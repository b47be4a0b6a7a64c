"""Implementation guides of our own, for the transaction sets pyx12 ships no 5010 map for.

Each guide is a compact table compiled into the same :class:`edi.maps.CompiledMap` that
pyx12's XML maps become, so :mod:`edi.validate`'s walker and element checker (and the
999 built from their findings) work unchanged.
"""

from __future__ import annotations

from edi.maps import CompiledMap

__all__ = ["guide_for"]


def guide_for(vriic: str, fic: str) -> CompiledMap | None:
    """Our guide for an implementation (ST03, else GS08) and the functional id of its
    ST01 (HS 270, HB 271), or None. Exact: the X279A1 guide is not applied to a set that
    names the base 005010X279 (its code lists differ), which is then unchecked."""
    if vriic == "005010X279A1":
        from edi.guides import x279a1

        if fic == "HS":
            return x279a1.guide_270()
        if fic == "HB":
            return x279a1.guide_271()
    return None
