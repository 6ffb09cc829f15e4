#!/usr/bin/env bash
# Passes cargo test output through line by line and ends with one plain line:
# "N passed, N failed, N skipped". Exits 1 if a test failed (the caller's pipefail also keeps
# cargo's own status).
passed=0 failed=0 ignored=0
while IFS= read -r line; do
  printf '%s\n' "$line"
  if [[ $line =~ ^test\ result:.*\ ([0-9]+)\ passed\;\ ([0-9]+)\ failed\;\ ([0-9]+)\ ignored ]]; then
    passed=$((passed + BASH_REMATCH[1]))
    failed=$((failed + BASH_REMATCH[2]))
    ignored=$((ignored + BASH_REMATCH[3]))
  fi
done
printf '%d passed, %d failed, %d skipped\n' "$passed" "$failed" "$ignored"
[ "$failed" -eq 0 ]
