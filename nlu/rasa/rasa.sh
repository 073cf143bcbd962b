#!/usr/bin/env bash
# propbot's Rasa NLU server in one command.
#
#   bash nlu/rasa/rasa.sh setup               venv with Python 3.10 + the locked requirements (idempotent)
#   bash nlu/rasa/rasa.sh train               NLU model from nlu/training/train/ (skipped when up to date)
#   bash nlu/rasa/rasa.sh serve [--port P] [--host H]
#                                             setup + train if needed, then `rasa run --enable-api`
#   bash nlu/rasa/rasa.sh status              what is installed, trained and answering (exit 3: not ready)
#
# Rasa 3.6 needs Python 3.10 and pins its own TensorFlow, SQLAlchemy 1.4, ...; it can never share the
# bot's venv, so everything lives under $PROPBOT_RASA_HOME (default ~/.cache/propbot/rasa), outside the
# clone: venv/, models/, and scratch directories Rasa writes into.
#
# Environment:
#   PROPBOT_RASA_HOME       where the venv and models live
#   PROPBOT_RASA_PYTHON     a Python 3.10 interpreter (default: pyenv's 3.10.x, then python3.10)
#   PROPBOT_RASA_TRAIN_DIR  training data (default: nlu/training/train; never the heldout set)
#   PROPBOT_RASA_PORT       default port for `serve` and `status` (5005)
#
# Progress goes to stderr; stdout carries only results (the model path, the server's URL), so
# `model=$(bash nlu/rasa/rasa.sh train)` works.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
RASA_HOME="${PROPBOT_RASA_HOME:-$HOME/.cache/propbot/rasa}"
VENV="$RASA_HOME/venv"
MODELS="$RASA_HOME/models"
REQUIREMENTS="$HERE/requirements.txt"
CONFIG="$HERE/config.yml"
TRAIN_DIR="${PROPBOT_RASA_TRAIN_DIR:-$ROOT/nlu/training/train}"
DEFAULT_PORT="${PROPBOT_RASA_PORT:-5005}"
STAMP="$VENV/.propbot-requirements.sha256"
KEEP_MODELS=3

# Rasa reads these at start-up. Telemetry would try the internet; warnings from its old dependencies
# drown the progress a person wants to see; its training cache would only grow (we skip retraining
# ourselves when nothing changed).
export RASA_TELEMETRY_ENABLED=false
export TF_CPP_MIN_LOG_LEVEL=2
export SQLALCHEMY_SILENCE_UBER_WARNING=1
export PYTHONWARNINGS="ignore::DeprecationWarning,ignore::PendingDeprecationWarning,ignore::FutureWarning"
export PYTHONNOUSERSITE=1
export RASA_MAX_CACHE_SIZE=0
export RASA_CACHE_DIRECTORY="$RASA_HOME/cache"
# Called from `uv run pytest` we inherit the bot's venv; it must not leak into Rasa's.
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV

log() { printf 'rasa.sh: %s\n' "$*" >&2; }
die() { printf 'rasa.sh: error: %s\n' "$*" >&2; exit 1; }
now() { date +%s; }

usage() {
    sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# ---------------------------------------------------------------- Python 3.10

is_python310() {
    "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1
}

python_candidates() {
    local root
    root="$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"
    # Newest 3.10.x first; pyenv's shim `python3.10` only works when 3.10 is selected, so look directly.
    compgen -G "$root/versions/3.10.*/bin/python3.10" | sort -rV || true
    command -v python3.10 || true
}

find_python() {
    if [[ -n "${PROPBOT_RASA_PYTHON:-}" ]]; then
        is_python310 "$PROPBOT_RASA_PYTHON" || die "PROPBOT_RASA_PYTHON=$PROPBOT_RASA_PYTHON is not a working Python 3.10"
        echo "$PROPBOT_RASA_PYTHON"
        return
    fi
    local candidate
    while read -r candidate; do
        if [[ -n "$candidate" ]] && is_python310 "$candidate"; then
            echo "$candidate"
            return
        fi
    done < <(python_candidates)
    die "Python 3.10 not found (Rasa 3.6 runs on 3.8-3.10 only). Install it, e.g. 'pyenv install 3.10.13', or point PROPBOT_RASA_PYTHON at a python3.10."
}

# ---------------------------------------------------------------- setup

requirements_hash() { sha256sum "$REQUIREMENTS" | cut -d' ' -f1; }

# Exit 0 when the venv's interpreter runs and is 3.10 (a venv whose base Python vanished is broken).
venv_runs() {
    [[ -x "$VENV/bin/python" ]] && is_python310 "$VENV/bin/python"
}

# Exit 0 when the venv holds exactly what requirements.txt locks (stamp written after a full install).
venv_current() {
    venv_runs && [[ -x "$VENV/bin/rasa" && -f "$STAMP" ]] && [[ "$(cat "$STAMP")" == "$(requirements_hash)" ]]
}

install_requirements() {
    local python="$1" started
    started="$(now)"
    local uv
    uv="$(command -v uv || echo "$HOME/.local/bin/uv")"
    if [[ -x "$uv" ]]; then
        # uv installs the ~165 locked packages (TensorFlow is ~560 MB) in well under a minute; sync
        # also removes whatever the lock no longer lists. Its list of 165 "+ name==version" lines
        # says nothing a person needs.
        [[ -x "$VENV/bin/python" ]] || "$uv" venv --quiet --python "$python" "$VENV" >&2
        log "installing $(grep -c '==' "$REQUIREMENTS") locked packages with uv (TensorFlow alone is ~560 MB)..."
        "$uv" pip sync --python "$VENV/bin/python" "$REQUIREMENTS" 2>&1 | { grep -v '^ [+-] ' || true; } >&2
    else
        [[ -x "$VENV/bin/python" ]] || "$python" -m venv "$VENV"
        log "installing $(grep -c '==' "$REQUIREMENTS") locked packages with pip (no uv found; several minutes)..."
        "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
        "$VENV/bin/python" -m pip install --progress-bar off -r "$REQUIREMENTS" >&2
    fi
    log "installed in $(($(now) - started)) s"
}

do_setup() {
    if venv_current; then
        log "venv up to date: $VENV"
        return
    fi
    local python
    python="$(find_python)"
    if [[ -e "$VENV" ]] && ! venv_runs; then
        log "venv at $VENV is broken; recreating it"
        rm -rf "$VENV"
    fi
    log "setting up Rasa's venv at $VENV with $python ($("$python" --version 2>&1))"
    mkdir -p "$RASA_HOME"
    rm -f "$STAMP"
    install_requirements "$python"
    # Importing rasa proves the set resolves on this machine (TensorFlow, SQLAlchemy 1.4, jieba).
    log "checking that rasa imports..."
    "$VENV/bin/python" -c 'import rasa, jieba, tensorflow; print("rasa", rasa.__version__)' >&2 \
        || die "rasa does not import in $VENV; see the error above"
    requirements_hash >"$STAMP"
    log "venv ready"
}

# ---------------------------------------------------------------- train

training_files() {
    find "$TRAIN_DIR" -type f \( -name '*.yml' -o -name '*.yaml' \) -print0 | LC_ALL=C sort -z
}

# A model is named after everything that shapes it: the training files (names and contents), the
# pipeline and the locked Rasa version. Same hash, same model: no retraining.
model_hash() {
    {
        (cd "$TRAIN_DIR" && find . -type f \( -name '*.yml' -o -name '*.yaml' \) -print0 \
            | LC_ALL=C sort -z | xargs -0 -r sha256sum)
        sha256sum <"$CONFIG"
        requirements_hash
    } | sha256sum | cut -c1-16
}

model_path() { echo "$MODELS/propbot-nlu-$(model_hash).tar.gz"; }

check_training_data() {
    [[ -d "$TRAIN_DIR" ]] || die "no training data: $TRAIN_DIR does not exist"
    [[ -n "$(training_files | tr -d '\0')" ]] || die "no training data: no *.yml in $TRAIN_DIR"
}

prune_models() {
    # Keep the newest few so switching branches back and forth does not retrain every time.
    find "$MODELS" -maxdepth 1 -name 'propbot-nlu-*.tar.gz' -printf '%T@ %p\n' | sort -rn \
        | tail -n +$((KEEP_MODELS + 1)) | cut -d' ' -f2- | xargs -r rm -f
}

do_train() {
    check_training_data
    local model scratch started
    model="$(model_path)"
    if [[ -f "$model" ]]; then
        log "model up to date: $model"
        echo "$model"
        return
    fi
    mkdir -p "$MODELS" "$RASA_HOME/work"
    scratch="$(mktemp -d "$MODELS/.training.XXXXXX")"
    started="$(now)"
    log "training NLU model from $TRAIN_DIR ($(training_files | tr -cd '\0' | wc -c) files) with $CONFIG..."
    # Run from a scratch directory: Rasa picks up domain.yml/endpoints.yml from the working directory.
    if ! (cd "$RASA_HOME/work" && "$VENV/bin/rasa" train nlu --config "$CONFIG" --nlu "$TRAIN_DIR" \
        --out "$scratch" --fixed-model-name model >&2) || [[ ! -f "$scratch/model.tar.gz" ]]; then
        rm -rf "$scratch"
        die "rasa train nlu failed; see the output above"
    fi
    # Rename into place only when complete, so a crash never leaves a half-written "current" model.
    mv "$scratch/model.tar.gz" "$model"
    rm -rf "$scratch"
    prune_models
    log "trained in $(($(now) - started)) s: $model"
    echo "$model"
}

# ---------------------------------------------------------------- serve / status

# setup and train run under one lock: two callers at once (CI and a test fixture) must not both
# install or train.
with_lock() {
    mkdir -p "$RASA_HOME"
    (
        if ! flock -n 9; then
            log "another rasa.sh is installing or training; waiting for it..."
            flock 9
        fi
        "$@"
    ) 9>"$RASA_HOME/.lock"
}

parse_serve_args() {
    PORT="$DEFAULT_PORT"
    HOST="127.0.0.1"
    while (($#)); do
        case "$1" in
        --port) PORT="${2:?--port needs a value}"; shift 2 ;;
        --port=*) PORT="${1#*=}"; shift ;;
        --host) HOST="${2:?--host needs a value}"; shift 2 ;;
        --host=*) HOST="${1#*=}"; shift ;;
        *) die "unknown argument '$1' (expected --port P, --host H)" ;;
        esac
    done
    [[ "$PORT" =~ ^[0-9]+$ ]] || die "port must be a number, got '$PORT'"
}

do_serve() {
    parse_serve_args "$@"
    with_lock do_setup
    with_lock do_train >/dev/null
    local model
    model="$(model_path)"
    mkdir -p "$RASA_HOME/run"
    log "starting Rasa on http://$HOST:$PORT with $model (loading takes ~15-40 s; ready when GET /status answers)"
    echo "http://$HOST:$PORT"
    cd "$RASA_HOME/run"
    # exec: the caller's pid is the server's, so stopping it (a test fixture, systemd) stops Rasa.
    exec "$VENV/bin/rasa" run --enable-api --model "$model" --interface "$HOST" --port "$PORT" >&2
}

server_status() {
    local url="http://127.0.0.1:$1/status" body
    if body="$(curl -fsS --max-time 2 "$url" 2>/dev/null)"; then
        echo "server:   up at $url $body"
    else
        echo "server:   not answering at $url"
    fi
}

do_status() {
    local ready=0 python
    python="$( (find_python) 2>/dev/null || echo "missing")"
    echo "home:     $RASA_HOME"
    echo "python:   $python"
    if venv_current; then
        echo "venv:     ready ($VENV)"
    elif [[ -e "$VENV" ]]; then
        echo "venv:     stale or broken ($VENV); run setup"; ready=3
    else
        echo "venv:     missing; run setup"; ready=3
    fi
    if [[ -d "$TRAIN_DIR" && -n "$(training_files | tr -d '\0')" ]]; then
        local model
        model="$(model_path)"
        if [[ -f "$model" ]]; then echo "model:    trained ($model)"; else echo "model:    not trained for the current data; run train"; ready=3; fi
    else
        echo "model:    no training data in $TRAIN_DIR"; ready=3
    fi
    server_status "$1"
    return "$ready"
}

main() {
    (($#)) || usage
    local command="$1"
    shift
    case "$command" in
    setup) with_lock do_setup ;;
    train)
        # Separate statements: `set -e` is suspended on the left of `&&`.
        with_lock do_setup
        with_lock do_train
        ;;
    serve) do_serve "$@" ;;
    status)
        parse_serve_args "$@"
        do_status "$PORT"
        ;;
    -h | --help | help) usage ;;
    *) log "unknown command '$command'"; usage ;;
    esac
}

main "$@"
