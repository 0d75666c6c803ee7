"""The synthesize stage renders in a worker process (vocabd/synthesis/worker.py): the calling process (the
daemon) loads no synthesizer. The memory this saves is shown by benchmarks/ingest_memory.py, not here."""

from __future__ import annotations

import json
import subprocess
import sys

from tiny import tiny_workspace_config
from vocabd.workspace import init_workspace

STAGE_IN_A_FRESH_PROCESS = """
import json, sys
from pathlib import Path
from vocabd.chain.stages import stage_synthesize
from vocabd.workspace import open_workspace

outcome = stage_synthesize(open_workspace(Path(sys.argv[1])), "chain1", "mini")
loaded = sorted(m for m in ("vocabd.synthesis.synthesize", "vocabd.tts", "onnxruntime", "piper") if m in sys.modules)
print(json.dumps({"next": outcome.next_stage, "loaded": loaded}))
"""


def test_the_synthesize_stage_renders_in_a_worker(tmp_path):
    ws = init_workspace(tmp_path / "ws")
    config = tiny_workspace_config(tmp_path / "unused-model").replace("[general]\n", '[general]\npool = "none"\n')
    ws.config_file.write_text(config, encoding="utf-8")
    (ws.data / "jargon.txt").write_text("PBX | P B X\nkubectl\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-P", "-c", STAGE_IN_A_FRESH_PROCESS, str(ws.root)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    reply = json.loads(done.stdout.strip().splitlines()[-1])
    assert reply == {"next": "mix", "loaded": []}
    rows = ws.manifest("synthetic_train_mini").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 3 and all(json.loads(r)["backend"] == "espeak" for r in rows)
    assert (ws.data / "synthetic" / "worker.log").is_file()
