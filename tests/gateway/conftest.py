from billing_support import fate_clip  # noqa: F401  (the fixture)
from gateway_harness import gateway  # noqa: F401  (the fixture)
from storage_harness import aws_env, backend, bucket, moto_endpoint, s3_client, store  # noqa: F401
