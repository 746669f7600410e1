"""A vendor emulator: each video vendor's documented wire format, served on loopback.

Tests and benchmarks drive the real adapters over real sockets against it. It is
written from the vendor reference, not from the adapters, and imports none of our
packages, so the two cross-check each other.
"""
