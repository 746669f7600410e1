"""Schemathesis fuzzes every endpoint from the OpenAPI schema against a real server:
no 5xx, no undocumented status code or content type, every response matching its
schema, and schema-violating requests rejected."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
        "negative_data_rejection",
    ]
)


def test_schemathesis_finds_nothing(sqlite_server_factory) -> None:  # type: ignore[no-untyped-def]
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st is not None, "schemathesis comes with the dev extra: pip install -e '.[dev]'"
    server = sqlite_server_factory(REELGATE_EXECUTOR="none")
    server.start()
    done = subprocess.run(
        [
            st,
            "run",
            f"{server.url}/openapi.json",
            "-H",
            f"Authorization: Bearer {server.key}",
            "--checks",
            CHECKS,
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "30",
            "--seed",
            "1",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert done.returncode == 0, done.stdout[-6000:]
