#!/usr/bin/env bash
# The import direction of docs/architecture.md, checked by `make lint`:
#  - only cmd/synapse imports the CLI (internal/cli);
#  - the root package links no execution mode and no cluster code;
#  - plugin binaries (package plugin, examples/train) link no cluster code:
#    no Ray client, packager, Serve deployer, WebSocket or go-git, and no
#    Synapse backend client (internal/backend: they report through
#    internal/report);
#  - the backend client links no server code (internal/server, internal/store);
#  - no mode package imports another (ray, remote, …).
set -euo pipefail
cd "$(dirname "$0")/.."
mod=$(go list -m)
status=0
fail() { echo "import direction: $*" >&2; status=1; }

cluster=("$mod/ray" "$mod/internal/ray" "$mod/internal/pack" "$mod/internal/serve" "github.com/coder/websocket" "github.com/go-git/go-git/v5")
remote=("$mod/internal/backend")
modes=(ray remote)

# forbid PKG WHY DEP...: PKG's dependencies must include none of DEP.
forbid() {
  local pkg=$1 why=$2; shift 2
  local deps
  deps=$(go list -deps "$pkg")
  for d in "$@"; do
    if grep -qxE "$d(/.*)?" <<<"$deps"; then
      fail "$pkg links $d ($why)"
    fi
  done
}

while read -r pkg imports; do
  case " $imports " in
    *" $mod/internal/cli "*) [ "$pkg" = "$mod/cmd/synapse" ] || [ "$pkg" = "$mod/internal/cli" ] || fail "$pkg imports $mod/internal/cli (only cmd/synapse may)" ;;
  esac
done < <(go list -f '{{.ImportPath}} {{join .Imports " "}}' ./...)

forbid . "the root package is authoring and the in-process engine" "$mod/plugin" "${cluster[@]}" "${remote[@]}"
forbid ./plugin "plugin binaries carry no cluster code" "${cluster[@]}"
forbid ./examples/train "plugin binaries carry no cluster code" "${cluster[@]}"
forbid ./plugin "plugin binaries report through internal/report, not the backend client" "${remote[@]}"
forbid ./examples/train "plugin binaries report through internal/report, not the backend client" "${remote[@]}"
forbid ./internal/backend "the backend client is a client: it links no server code" "$mod/internal/server" "$mod/internal/store"
for m in "${modes[@]}"; do
  [ -d "$m" ] || continue
  others=()
  for o in "${modes[@]}"; do [ "$o" = "$m" ] || others+=("$mod/$o"); done
  forbid "./$m" "a mode does not import another mode" "${others[@]}"
done

[ $status = 0 ] && echo "import direction: ok"
exit $status
