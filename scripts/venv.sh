# Sourced by scripts/run, scripts/test and scripts/update: `ensure_venv LOCK_FILE` creates .venv with
# Python ≥ 3.11 when it is missing or broken (no python, or no pip: what a failed `python3 -m venv` leaves
# behind when python3-venv is not installed), and installs the lock file (exact versions with hashes) only
# when the requirements or lock files changed since last time.

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

venv_works() {
    .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
        && .venv/bin/python -m pip --version >/dev/null 2>&1
}

# Debian/Ubuntu split `venv`'s pip bootstrap (ensurepip) into python3-venv / python3.X-venv.
missing_venv_package() {
    local python="$1" versioned
    versioned="$("$python" -c 'import sys; print("python%d.%d-venv" % sys.version_info[:2])' 2>/dev/null)"
    echo "error: cannot create .venv with pip: Python's venv/ensurepip is missing." \
        "Install it (Debian/Ubuntu: sudo apt-get install python3-venv, or ${versioned:-python3.X-venv}) and run this again" >&2
}

ensure_venv() {
    local requirements="$1" python stamp files wanted installed
    if ! venv_works; then
        if ! python="$(find_python)"; then
            echo "error: Python 3.11 or newer is needed (Debian: apt-get install python3 python3-venv)" >&2
            exit 2
        fi
        if [ -e .venv ]; then
            echo "the .venv folder is broken (no working python or pip): recreating it" >&2
        fi
        rm -rf .venv
        if ! "$python" -m venv .venv >/dev/null 2>&1 || ! venv_works; then
            rm -rf .venv # never leave a half-made one behind
            missing_venv_package "$python"
            exit 2
        fi
    fi
    stamp=.venv/.installed-requirements
    files="$({ cat requirements*.txt requirements*.lock 2>/dev/null || true; } | sha256sum | cut -d' ' -f1)"
    wanted="$files $requirements"
    installed="$(cat "$stamp" 2>/dev/null || true)"
    # The dev lock holds every package of the runtime lock, at the same versions (scripts/update --lock).
    if [ "$requirements" = requirements.lock ] && [ "$installed" = "$files requirements-dev.lock" ]; then
        return 0
    fi
    if [ "$installed" != "$wanted" ]; then
        echo "installing $requirements into .venv…" >&2
        # -qq: errors only (a first install takes a minute or two; pip's warnings about its own
        # configuration are no business of this script). Hash-checked: every line of a lock has --hash.
        .venv/bin/python -m pip install -qq --disable-pip-version-check -r "$requirements"
        echo "$wanted" >"$stamp"
    fi
}
