#!/usr/bin/env bash
# Fails unless every ELF file under the given paths runs on glibc MAX or later: reads the GLIBC_x.y symbol
# versions each one needs (objdump -T) and names every file, and every symbol, that needs a newer one.
# Usage: scripts/check-glibc.sh MAX PATH...        e.g. scripts/check-glibc.sh 2.17 dist/stage
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 MAX_GLIBC PATH..." >&2; exit 2; }
MAX=$1; shift
command -v objdump >/dev/null || { echo "check-glibc: objdump is missing (Debian package binutils)" >&2; exit 2; }

newer() { # is version $1 newer than $2?
  [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | tail -1)" = "$1" ]
}

checked=0
bad=0
while IFS= read -r -d '' f; do
  [ "$(head -c 4 "$f" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ] || continue
  checked=$((checked + 1))
  need=$(objdump -T "$f" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -Vu | tail -1)
  if [ -n "$need" ] && newer "$need" "$MAX"; then
    bad=$((bad + 1))
    echo "check-glibc: $f needs glibc $need (> $MAX):" >&2
    objdump -T "$f" | awk -v max="$MAX" '
      function newer(a, b,   x, y, n, i) {
        n = split(a, x, "."); split(b, y, ".")
        for (i = 1; i <= (n > 2 ? n : 2); i++) { if (x[i] + 0 != y[i] + 0) return x[i] + 0 > y[i] + 0 }
        return 0
      }
      match($0, /GLIBC_[0-9][0-9.]*/) {
        v = substr($0, RSTART + 6, RLENGTH - 6)
        if (newer(v, max)) printf "  %s (GLIBC_%s)\n", $NF, v
      }' >&2
  else
    echo "check-glibc: ok (glibc ${need:-none} <= $MAX) $f"
  fi
done < <(find "$@" -type f -print0)
[ "$checked" -gt 0 ] || { echo "check-glibc: no ELF file under $*" >&2; exit 1; }
[ "$bad" -eq 0 ] || { echo "check-glibc: $bad of $checked ELF files need a glibc newer than $MAX" >&2; exit 1; }
echo "check-glibc: all $checked ELF files run on glibc $MAX"
