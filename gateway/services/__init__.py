"""Services: the gateway's use cases. They never import FastAPI; routes call them."""
