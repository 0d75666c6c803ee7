# The plan's verbs. `./dev <recipe>` sets up .venv first; inside it, `just <recipe>` works too.
set shell := ["bash", "-euo", "pipefail", "-c"]

vocabd := justfile_directory() / ".venv/bin/vocabd"

default:
    @just --list

# the test suite: tests/unit (fast, no processes), then tests/integration (tiny models, real audio, real queue)
test *ARGS:
    {{justfile_directory()}}/.venv/bin/pytest {{ARGS}}

# tests/unit alone: under a minute, no processes
test-unit *ARGS:
    {{justfile_directory()}}/.venv/bin/pytest tests/unit {{ARGS}}

# the whole pipeline on a demo workspace, offline, ending with its report
demo DIR="demo":
    {{vocabd}} demo {{DIR}}

# train a LoRA/DoRA adapter into runs/NAME (flags as `vocabd run-experiment --help`; --background detaches)
[no-cd]
run-experiment NAME *ARGS:
    {{vocabd}} run-experiment {{NAME}} {{ARGS}}

# progress of runs/NAME; exit 0 finished, 1 failed, 2 running, 3 stalled (--follow to wait)
[no-cd]
poll NAME *ARGS:
    {{vocabd}} poll {{NAME}} {{ARGS}}

# rewrite the generated parts of the manual: README's command table, docs/settings.md's list
docs:
    {{justfile_directory()}}/.venv/bin/python -m vocabd.manual
