from backend_harness import app, client, poll_until, work_dir  # noqa: F401  (fixtures)
from diffusers_harness import tiny_root  # noqa: F401  (fixture)
