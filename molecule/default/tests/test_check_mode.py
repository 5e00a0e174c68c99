"""`site.yml --check` on the converged platform: an operator's dry run before a change must
run every stage to the end and predict no change anywhere."""

from __future__ import annotations

from pathlib import Path

from growbin_nodes import run_site

NODES = 14


def test_check_mode_predicts_no_change_on_any_host(tmp_path: Path) -> None:
    recap = run_site(tmp_path / "check.log", "--check")
    assert len(recap) == NODES, sorted(recap)
    changed = {host: counts["changed"] for host, counts in recap.items() if counts["changed"]}
    assert not changed, f"check mode predicts changes: {changed} (log {tmp_path / 'check.log'})"
