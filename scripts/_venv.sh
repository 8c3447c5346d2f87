# Sourced by the scripts: make .venv if missing and install the project into it.
# Reinstalls only when pyproject.toml changed (a stamp holds its hash).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
ensure_venv() {
    local extra="${1:-}"
    local python="${PYTHON:-}"
    if [ -z "$python" ]; then
        for candidate in python3.11 python3.12 python3.13 python3; do
            if command -v "$candidate" >/dev/null 2>&1; then python="$candidate"; break; fi
        done
    fi
    if [ ! -x "$PY" ]; then
        echo "==> creating $VENV with $python"
        "$python" -m venv "$VENV"
    fi
    local want stamp="$VENV/.ailedger-installed"
    want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)${extra}"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "==> installing ailedger${extra} into .venv (log: .venv/install.log)"
        if ! { "$PY" -m pip install --upgrade pip && "$PY" -m pip install -e "$ROOT$extra"; } \
                >"$VENV/install.log" 2>&1; then
            tail -n 40 "$VENV/install.log" >&2
            echo "pip install failed; the full log is .venv/install.log" >&2
            return 1
        fi
        echo "$want" > "$stamp"
    fi
}
