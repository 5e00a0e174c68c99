#!/usr/bin/env bash
# The test suite, stage by stage, printing how long each stage took.
#   scripts/test.sh all | lint | syntax | pytest | collection | molecule [SCENARIO...]
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PWD/.cache/bin:$PATH"
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0 NO_COLOR=1 MOLECULE_GLOB='molecule/*/molecule.yml'

declare -a TIMINGS=()
FAILED=()

stage() {
  local name=$1; shift
  local start=$SECONDS
  printf '\n=== stage %s\n' "$name"
  if "$@"; then
    TIMINGS+=("$(printf '%-28s %5ss  ok' "$name" $((SECONDS - start)))")
  else
    TIMINGS+=("$(printf '%-28s %5ss  FAILED' "$name" $((SECONDS - start)))")
    FAILED+=("$name")
  fi
}

lint_python() { ruff check . && ruff format --check .; }
lint_yaml() { yamllint -s .; }
lint_ansible() { ansible-lint --profile production --offline -q; }

syntax() {
  local rc=0 inv playbook
  for inv in inventories/local inventories/production; do
    for playbook in site.yml playbooks/*.yml; do
      ansible-playbook -i "$inv" --syntax-check "$playbook" >/dev/null || { echo "syntax: $playbook ($inv)"; rc=1; }
    done
  done
  return $rc
}

services() { bash scripts/test-services.sh; }

pytest_all() {
  python -m pytest -q -p no:cacheprovider tests roles/prometheus/tests
  local rc=$?
  # pytest exits 5 when it collected nothing: that is a broken suite, not a pass.
  return $rc
}

collection() { python -m pytest -q -p no:cacheprovider tests/collection; }

molecule_all() {
  local rc=0 scenario
  local scenarios=("$@")
  if [ ${#scenarios[@]} -eq 0 ]; then
    # Every scenario, alphabetically.
    mapfile -t scenarios < <(ls molecule/*/molecule.yml | xargs -n1 dirname | xargs -n1 basename | sort)
  fi
  for scenario in "${scenarios[@]}"; do
    local start=$SECONDS
    if molecule test -s "$scenario" >".cache/molecule-$scenario.log" 2>&1; then
      printf 'molecule %-20s %5ss ok\n' "$scenario" $((SECONDS - start))
      # The whole-platform scenario times its site.yml runs: converge, then idempotence.
      sed 's/\x1b\[[0-9;]*m//g' ".cache/molecule-$scenario.log" | awk '
        match($0, /> (converge|idempotence)\] Executing$/) { action = substr($0, RSTART + 2, RLENGTH - 13) }
        /Playbook run took/ && action { sub(/.*took /, ""); printf "  site.yml %-12s %s\n", action, $0; action = "" }'
    else
      printf 'molecule %-20s %5ss FAILED (log below)\n' "$scenario" $((SECONDS - start))
      tail -120 ".cache/molecule-$scenario.log"
      rc=1
    fi
    TIMINGS+=("$(printf '  molecule %-19s %5ss' "$scenario" $((SECONDS - start)))")
  done
  return $rc
}

mkdir -p .cache
what=${1:-all}; shift || true
case $what in
  lint) stage ruff lint_python; stage yamllint lint_yaml; stage ansible-lint lint_ansible ;;
  syntax) stage syntax-check syntax ;;
  pytest) stage services services; stage pytest pytest_all ;;
  collection) stage collection collection ;;
  molecule) stage molecule molecule_all "$@" ;;
  all)
    stage ruff lint_python
    stage yamllint lint_yaml
    stage ansible-lint lint_ansible
    stage syntax-check syntax
    stage services services
    stage pytest pytest_all
    stage molecule molecule_all
    ;;
  *) echo "usage: $0 all|lint|syntax|pytest|collection|molecule [SCENARIO...]" >&2; exit 2 ;;
esac

printf '\n=== stage timings\n'
printf '%s\n' "${TIMINGS[@]}"
if [ ${#FAILED[@]} -gt 0 ]; then
  printf 'FAILED stages: %s\n' "${FAILED[*]}"
  exit 1
fi
