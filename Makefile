# The two commands (see README): `make chat` starts the bot in the terminal on the embedded default,
# `make test` runs the whole suite. Each installs what it needs; .ci/run calls `make test`.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)

.PHONY: chat test serve bench rasa lint deps fonts report

deps:  ## install uv if missing, then the locked dependencies
	@command -v uv >/dev/null 2>&1 || test -x "$(UV)" || python3 -m pip install --quiet --user uv
	@"$(UV)" sync --frozen --quiet

fonts:  ## the CJK font of the report charts (Debian's fonts-noto-cjk), if none is installed
	@bash tests/fonts.sh

report: deps fonts  ## the demo compound's KPI report for last month, into report/
	@"$(UV)" run propbot report --out report

chat: deps  ## chat with the bot as a demo resident (console, embedded NLU, SQLite)
	@"$(UV)" run propbot chat

serve: deps  ## run the server (webhooks, dispatcher, scheduler)
	@"$(UV)" run propbot serve

test: lint  ## lint and types, then the whole test suite on SQLite and PostgreSQL with a real Rasa server
	@bash tests/services.sh
	@bash nlu/rasa/rasa.sh setup
	@bash nlu/rasa/rasa.sh train >/dev/null
	@"$(UV)" run pytest

bench: deps  ## every benchmark, figures printed
	@for script in bench/*_bench.py; do echo "== $$script"; "$(UV)" run python "$$script" || exit 1; done

lint: deps  ## ruff (lint and format) and mypy --strict (the packages are named in pyproject.toml)
	@"$(UV)" run ruff check .
	@"$(UV)" run ruff format --check .
	@"$(UV)" run mypy
