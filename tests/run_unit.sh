#!/bin/sh
# Runs every unit test binary given as arguments (TAP output) and prints
# "unit: N passed, N failed" counted over individual checks.
pass=0; fail=0; bad=0
for t in "$@"; do
  out=$("$t" 2>&1); rc=$?
  p=$(printf '%s\n' "$out" | grep -c '^ok ')
  f=$(printf '%s\n' "$out" | grep -c '^not ok ')
  pass=$((pass + p)); fail=$((fail + f))
  if [ $rc -ne 0 ] || [ $f -ne 0 ]; then
    bad=1
    printf '%s\n' "$out" | grep -A2 -E '^not ok|ERROR|runtime error|Sanitizer' | head -40
    echo "FAILED: $t (exit $rc)"
  fi
  if [ $((p + f)) -eq 0 ]; then echo "FAILED: $t ran no checks"; bad=1; fi
done
echo "$pass passed, $fail failed"
[ $bad -eq 0 ]
