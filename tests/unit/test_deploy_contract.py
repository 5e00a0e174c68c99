"""The Ansible side reads the deploy contract from roles/app_settings/vars/contract.yml, a
copy of what the application declares (growbin.core.processes); `make contract` rewrites it."""

from __future__ import annotations

from pathlib import Path

import yaml
from growbin.core import processes
from growbin.core.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTRACT_COPY = REPO_ROOT / "roles" / "app_settings" / "vars" / "contract.yml"


def as_plain(value: object) -> object:
    # asdict keeps tuples; YAML has lists.
    if isinstance(value, dict):
        return {k: as_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_plain(v) for v in value]
    return value


def test_the_roles_copy_is_the_applications_contract():
    copy = yaml.safe_load(CONTRACT_COPY.read_text())["__app_settings_contract"]
    assert copy == as_plain(processes.contract()), "run `make contract`"


def test_contract_paths_are_the_settings_defaults():
    # A process pointed at a file or directory by the contract finds it where the settings
    # model looks by default, so neither runtime depends on an override to start.
    defaults = Settings()
    assert defaults.llm.offline_model_path == processes.OFFLINE_MODEL_PATH
    assert defaults.worker.wal_path == processes.WAL_FILE
    assert defaults.api.port == processes.API_PORT


def test_every_process_starts_with_a_growbin_subcommand():
    from growbin.cli import build_parser

    parser = build_parser()
    for process in processes.PROCESSES.values():
        args = parser.parse_args(list(process.args))
        assert args.command == process.args[0], process.name


def test_wildcard_proxies_are_refused():
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="name the proxies"):
        Settings(api={"forwarded_allow_ips": "10.0.0.0/24,*"})
    assert Settings(
        api={"forwarded_allow_ips": "10.0.0.0/24, 10.0.1.5"}
    ).api.forwarded_allow_ips == ("10.0.0.0/24,10.0.1.5")
