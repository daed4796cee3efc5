# shellcheck shell=bash
# The tier-3 test scripts' reporting: one line per check (PASS/FAIL, with the failing output
# indented below it), and a summary that sets the exit status. Sourced, not run.
#
#   pass NAME | fail NAME [OUTPUT] | check NAME TIMEOUT_S COMMAND... (passes once COMMAND
#   succeeds within the timeout) | checks_summary TITLE (prints the counts; non-zero on failure)

passed=0
failed=0
failures=()
pass() { passed=$((passed + 1)); echo "PASS  $1"; }
fail() {
  failed=$((failed + 1)); failures+=("$1"); echo "FAIL  $1"
  [[ -z ${2:-} ]] || sed 's/^/      | /' <<<"$2" | head -n 20
}
check() {
  local name=$1 timeout=$2; shift 2
  local deadline=$(( $(date +%s%3N) + timeout * 1000 )) out
  while :; do
    if out=$("$@" 2>&1); then pass "$name"; return 0; fi
    (( $(date +%s%3N) >= deadline )) && { fail "$name" "$out"; return 1; }
    sleep 0.2
  done
}
checks_summary() {
  echo
  echo "$1: $passed passed, $failed failed"
  (( failed == 0 )) && return 0
  printf '  failed: %s\n' "${failures[@]}"
  return 1
}
# free_port: a port a test server can listen on (scripts/free-port.py: outside the ephemeral range)
free_port() { python3 "$(dirname "${BASH_SOURCE[0]}")/../../../scripts/free-port.py"; }
