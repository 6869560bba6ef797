# Sourced by scripts/run and scripts/test: `ensure_venv REQUIREMENTS_FILE` creates .venv with Python ≥ 3.11
# when it is missing or broken, and re-runs pip only when the requirements files changed since last time.

find_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.11 python3.12 python3.13 python3; do
        if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

ensure_venv() {
    local requirements="$1" python stamp wanted
    if ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        if ! python="$(find_python)"; then
            echo "error: Python 3.11 or newer is needed (Debian: apt-get install python3 python3-venv)" >&2
            exit 2
        fi
        rm -rf .venv
        if ! "$python" -m venv .venv; then
            echo "error: could not create .venv (Debian: apt-get install python3-venv)" >&2
            exit 2
        fi
    fi
    stamp=.venv/.installed-requirements
    wanted="$(cat requirements*.txt | sha256sum | cut -d' ' -f1) $requirements"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
        .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
        echo "$wanted" >"$stamp"
    fi
}
