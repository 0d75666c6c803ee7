"""Print the table of benchmarks/kl_anchor.sh runs: WER raw / normalized (95% interval) and the paired change.

    python benchmarks/kl_anchor_table.py /tmp/kl-anchor kl0-s50 kl1.0-s50
"""

import json
import sys
from pathlib import Path

from vocabd.evaluation.uncertainty import describe_change, paired_change, wer_spread

out, runs = Path(sys.argv[1]), sys.argv[2:]
for tag in ("safety_eval", "my_voice_eval"):
    base = json.loads((out / f"base-{tag}.json").read_text())
    s = wer_spread(base)
    print(f"{tag}: base raw {base['wer']:.3f}, normalized {s['wer']:.3f} [{s['low']:.3f}, {s['high']:.3f}] "
          f"({s['clips']} clips, {s['words']} words)")
    for run in runs:
        adapted = json.loads((out / f"{run}-{tag}.json").read_text())
        a = wer_spread(adapted)
        print(f"  {run}: raw {adapted['wer']:.3f}, normalized {a['wer']:.3f} [{a['low']:.3f}, {a['high']:.3f}], "
              f"change {describe_change(paired_change(base, adapted))}")
