"""Every role's defaults/main.yml mirrors its meta/argument_specs.yml (STYLE.md)."""

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p for p in (ROOT / "roles").iterdir() if (p / "tasks" / "main.yml").exists())


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {} if path.exists() else {}


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_defaults_mirror_argument_specs(role):
    specs = _load(role / "meta" / "argument_specs.yml")
    assert "main" in specs.get("argument_specs", {}), (
        f"{role.name}: meta/argument_specs.yml has no 'main'"
    )
    options = specs["argument_specs"]["main"].get("options", {})
    defaults = _load(role / "defaults" / "main.yml")

    required = {name for name, spec in options.items() if spec.get("required")}
    optional = set(options) - required
    assert set(defaults) == optional, (
        f"{role.name}: defaults/main.yml and argument_specs disagree: "
        f"only in defaults {sorted(set(defaults) - optional)}, "
        f"only in specs {sorted(optional - set(defaults))}"
    )
    for name in required:
        assert "default" not in options[name], f"{role.name}: required option {name} has a default"
    for name, spec in options.items():
        assert spec.get("description"), f"{role.name}: option {name} is not described"
        assert name.startswith(role.name + "_"), (
            f"{role.name}: public variable {name} lacks the role prefix"
        )
        if name not in defaults or "default" not in spec:
            continue
        # validate_argument_spec templates the spec's defaults: a templated one must be the
        # very expression of defaults/main.yml, guards included, or it fails where the role
        # would not (an inventory without growbin_app_runtime broke the monitoring play).
        # A templated defaults/main.yml value may instead be described in plain words.
        if "{{" in str(spec["default"]) or "{{" not in str(defaults[name]):
            assert spec["default"] == defaults[name], (
                f"{role.name}: {name} default differs from defaults/main.yml"
            )


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_role_has_readme_and_meta(role):
    assert (role / "README.md").exists(), f"{role.name} has no README.md"
    meta = _load(role / "meta" / "main.yml")
    assert meta["galaxy_info"]["role_name"] == role.name
