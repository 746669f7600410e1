"""The job engine: advances each shot's current attempt one persisted step at a time."""
