from gateway_harness import gateway  # noqa: F401  (the fixture)
