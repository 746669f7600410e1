"""The local generation service: models that run on this machine's CPU or GPU."""
