"""The billing practice (2010AA, 1000A) and its providers (2310x, 2420x)."""
