"""One module per vendor; each exposes ``routes(em) -> VendorRoutes``."""
