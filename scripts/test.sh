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

# One scenario, its result and (the whole-platform scenario) how long its site.yml runs took.
run_scenario() {
  local scenario=$1 start=$SECONDS
  if molecule test -s "$scenario" >".cache/molecule-$scenario.log" 2>&1; then
    printf 'molecule %-20s %5ss ok\n' "$scenario" $((SECONDS - start))
    # ... and its slowest tasks (profile_tasks), for the runs of site.yml.
    sed 's/\x1b\[[0-9;]*m//g' ".cache/molecule-$scenario.log" | awk '
      /\] Executing$/ { action = "" }
      match($0, /> (converge|idempotence)\] Executing$/) { action = substr($0, RSTART + 2, RLENGTH - 13) }
      /Playbook run took/ && action { sub(/.*took /, ""); printf "  site.yml %-12s %s\n", action, $0 }
      / -----* +[0-9]+[.][0-9]+s$/ && action { printf "    %s\n", $0 }'
  else
    printf 'molecule %-20s %5ss FAILED (log below)\n' "$scenario" $((SECONDS - start))
    tail -120 ".cache/molecule-$scenario.log"
    return 1
  fi
}

molecule_all() {
  local rc=0 scenario start
  for scenario in "$@"; do
    start=$SECONDS
    run_scenario "$scenario" || rc=1
    TIMINGS+=("$(printf '  molecule %-19s %5ss' "$scenario" $((SECONDS - start)))")
  done
  return $rc
}

# The whole-platform scenario is the longest by far and spends most of it waiting on the
# nodes (package installs, service starts, the journey's queues), so it runs in a lane of its
# own beside pytest and the role scenarios; each scenario has its own containers and network.
PLATFORM_LANE=.cache/lane-default
start_platform_lane() {
  rm -f "$PLATFORM_LANE".*
  (
    start=$SECONDS
    run_scenario default >"$PLATFORM_LANE.out" 2>&1
    echo "$? $((SECONDS - start))" >"$PLATFORM_LANE.result"
  ) &
  PLATFORM_LANE_PID=$!
}

wait_platform_lane() {
  wait "$PLATFORM_LANE_PID"
  cat "$PLATFORM_LANE.out"
  local rc seconds
  read -r rc seconds <"$PLATFORM_LANE.result"
  TIMINGS+=("$(printf '  molecule %-19s %5ss (own lane)' default "$seconds")")
  return "$rc"
}

role_scenarios() {
  ls molecule/*/molecule.yml | xargs -n1 dirname | xargs -n1 basename | grep -vx default | sort
}

mkdir -p .cache
what=${1:-all}; shift || true
case $what in
  lint) stage ruff lint_python; stage yamllint lint_yaml; stage ansible-lint lint_ansible ;;
  syntax) stage syntax-check syntax ;;
  pytest) stage services services; stage pytest pytest_all ;;
  collection) stage collection collection ;;
  molecule)
    if [ $# -gt 0 ]; then
      stage molecule molecule_all "$@"
    else
      start_platform_lane
      mapfile -t scenarios < <(role_scenarios)
      stage molecule molecule_all "${scenarios[@]}"
      stage "molecule default" wait_platform_lane
    fi
    ;;
  all)
    stage ruff lint_python
    stage yamllint lint_yaml
    stage ansible-lint lint_ansible
    stage syntax-check syntax
    stage services services
    start_platform_lane
    stage pytest pytest_all
    mapfile -t scenarios < <(role_scenarios)
    stage molecule molecule_all "${scenarios[@]}"
    stage "molecule default" wait_platform_lane
    ;;
  *) echo "usage: $0 all|lint|syntax|pytest|collection|molecule [SCENARIO...]" >&2; exit 2 ;;
esac

printf '\n=== stage timings\n'
printf '%s\n' "${TIMINGS[@]}"
if [ ${#FAILED[@]} -gt 0 ]; then
  printf 'FAILED stages: %s\n' "${FAILED[*]}"
  exit 1
fi
