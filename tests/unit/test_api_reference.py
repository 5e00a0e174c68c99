"""docs/api/openapi.json is what the application serves: one document, every service, stable ids.

The document is generated in a clean environment (no GROWBIN_* settings), the way `make
api-reference` writes it, so settings of the test session cannot leak into the comparison.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from growbin.core.domains import DOMAINS

REPO_ROOT = Path(__file__).resolve().parents[2]
REFERENCE = REPO_ROOT / "docs" / "api" / "openapi.json"
HTTP_METHODS = {"get", "put", "post", "delete", "patch"}


@pytest.fixture(scope="module")
def generated() -> dict:
    printed = subprocess.run(
        [sys.executable, "-m", "growbin.cli", "openapi"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={"PATH": os.environ["PATH"]},
        cwd="/",
    )
    return json.loads(printed.stdout)


def test_the_committed_reference_is_what_the_application_generates(generated: dict) -> None:
    assert json.loads(REFERENCE.read_text()) == generated, "run `make api-reference`"


def test_every_domain_is_documented_with_unique_operation_ids(generated: dict) -> None:
    operations = [
        (path, method, operation)
        for path, item in generated["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]
    ids = [operation["operationId"] for _, _, operation in operations]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    # "<domain>-<endpoint name>": a generated client's method names survive a route's move.
    assert all(i.split("-", 1)[0] in DOMAINS for i in ids), ids
    assert {path.split("/")[3] for path, _, _ in operations} == set(DOMAINS)


def test_every_operation_documents_the_one_error_body(generated: dict) -> None:
    undocumented = [
        f"{method.upper()} {path}"
        for path, item in generated["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
        and not any(
            status.startswith(("4", "5")) and "ErrorBody" in json.dumps(response.get("content", {}))
            for status, response in operation["responses"].items()
        )
    ]
    assert undocumented == []
