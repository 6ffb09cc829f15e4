#!/usr/bin/env bash
# Passes cargo test output through and ends with one plain line: "N passed, N failed, N skipped".
# Exit status: cargo's (via pipefail in the caller) — this filter itself fails only if a test failed.
awk '
  { print; fflush() }
  /^test result: / {
    for (i = 1; i <= NF; i++) {
      if ($(i+1) ~ /^passed;?$/)  passed  += $i
      if ($(i+1) ~ /^failed;?$/)  failed  += $i
      if ($(i+1) ~ /^ignored;?$/) ignored += $i
    }
  }
  END {
    printf "%d passed, %d failed, %d skipped\n", passed, failed, ignored
    if (failed > 0) exit 1
  }'
