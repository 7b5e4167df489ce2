#!/usr/bin/env bash
# Checks the spec-test runner itself, on Prewarm's own scripts (no testsuite needed):
#  - self/good.wast uses every command kind the runner handles: all must pass, except the
#    ones skipped for a stated reason (text module, externref table import, ref-typed export);
#  - self/bad.wast holds only wrong assertions: each must be reported as a failure with its
#    line, and the runner must exit 1. A runner that cannot fail would pass good.wast too.
# Usage: selftest.sh PATH/TO/spec_runner
set -u
runner=${1:?usage: selftest.sh SPEC_RUNNER}
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
errors=0
check() {  # check DESCRIPTION COMMAND...
  if ! "${@:2}"; then echo "selftest: FAILED: $1"; errors=$((errors + 1)); fi
}
has() { grep -qF -- "$1" "$out"; }

"$runner" -v "$here/self/good.wast" >"$out" 2>&1
rc=$?
cat "$out"
check "good.wast exits 0 (got $rc)" test "$rc" -eq 0
check "good.wast: 53 passed, 0 failed, 4 skipped" has "good.wast: 53 passed, 0 failed, 4 skipped"
check "good.wast: function with a funcref result skipped with reason" \
  has "skipped 1: calls a function with v128/reference types in its signature"
check "good.wast: the spectest import is called" has "spectest.print_i32(42)"
check "good.wast: text module skipped with reason" has "skipped 1: assert_malformed of a text module"
check "good.wast: an externref table import skipped with reason" has "imports a table of externref (spectest.table)"
check "good.wast: a memory of other limits is refused" \
  has "spectest.memory (memory {min 3}; the host has memory {min 1, max 2})"
check "good.wast: a linked global of other mutability is refused" \
  has "G.mine (global i64; the host has global mut i64)"
check "good.wast: an import of another signature is refused" \
  has "assert_unlinkable \"incompatible import type\" refused by pw_engine_check"
check "good.wast: the uninstantiable module is refused when instantiated" \
  has "assert_uninstantiable \"unreachable\" refused by pw_instance_new"

"$runner" "$here/self/bad.wast" >"$out" 2>&1
rc=$?
cat "$out"
check "bad.wast exits 1 (got $rc)" test "$rc" -eq 1
check "bad.wast: 3 passed, 10 failed, 0 skipped" has "bad.wast: 3 passed, 10 failed, 0 skipped"
for line in 10 11 12 13 14 15 16 17 24 26; do
  check "bad.wast: failure of line $line reported" has "FAIL bad.wast:$line:"
done
check "bad.wast: wrong result shown with both values" \
  has "FAIL bad.wast:10: assert_return \"one\": result 0: expected i32:0x00000002 (2), got i32:0x00000001 (1)"
check "bad.wast: wrong trap family named" has "expected trap \"integer divide by zero\""
check "bad.wast: an accepted invalid module is a failure" has "was accepted by every stage"
check "bad.wast: a call_indirect trap of the wrong kind is a failure" \
  has "expected trap \"undefined element\" (undefined element), got trap \"uninitialized element\""

env -u PREWARM_TESTSUITE "$runner" --name address >"$out" 2>&1
rc=$?
check "--name without PREWARM_TESTSUITE skips (77, got $rc)" test "$rc" -eq 77
check "the skip says why" has "PREWARM_TESTSUITE is not set"
"$runner" "$here/self/no-such-file.wast" >"$out" 2>&1
rc=$?
check "a missing file is an error (exit 1, got $rc)" test "$rc" -eq 1

if [ "$errors" -ne 0 ]; then
  echo "selftest: $errors check(s) failed"
  exit 1
fi
echo "selftest: ok"
