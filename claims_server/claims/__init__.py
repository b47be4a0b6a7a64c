"""Claims: the claim JSON shape, scrub, the state machine, the 837 conversion and the API."""
