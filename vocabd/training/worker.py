"""The training process: `python -m vocabd.training.worker RUN_DIR` trains the run prepared in RUN_DIR.

Its settings come from `RUN_DIR/config.json` alone (written by `training.launch`); it never reads
`vocabd.toml`. It continues from the last checkpoint when there is one, else starts at step 0.
"""

from __future__ import annotations

import sys
from pathlib import Path

from vocabd.errors import VocabdError
from vocabd.log import configure_logging
from vocabd.training.run_folder import RunFolder


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m vocabd.training.worker RUN_DIR", file=sys.stderr)
        return 2
    configure_logging(console=True)
    folder = RunFolder(Path(argv[0]).resolve())
    try:
        config = folder.read_config()
        from vocabd.training.loop import run_experiment

        status = run_experiment(folder, config, resume=True, progress=False)
    except VocabdError as e:  # status.json and FAILED.md say so too, unless config.json itself is unreadable
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0 if status.state == "finished" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
