"""The evaluated outputs of terraform/'s provider-free modules (node map, flow rules).

With a terraform binary they are evaluated for real; without one (CI cannot download
Terraform) the recording in fixtures/module-outputs.json stands in, and
test_terraform_static.py::test_recorded_module_outputs_are_current keeps it current
wherever terraform exists.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import tfcheck

TERRAFORM = Path(__file__).resolve().parents[2] / "terraform"
RECORDED = Path(__file__).parent / "fixtures" / "module-outputs.json"
EVALUATED_CALLS = ["module.node_map", "module.flow_rules"]


@pytest.fixture(scope="session")
def root() -> tfcheck.Module:
    return tfcheck.load_module(TERRAFORM)


@pytest.fixture(scope="session")
def module_outputs(root) -> dict[str, dict[str, Any]]:
    if shutil.which("terraform"):
        return tfcheck.evaluate_module_calls(root, EVALUATED_CALLS)
    return json.loads(RECORDED.read_text())


@pytest.fixture(scope="session")
def evaluated(module_outputs) -> dict[str, Any]:
    return tfcheck.for_each_values(module_outputs)
