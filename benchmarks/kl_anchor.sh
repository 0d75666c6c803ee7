#!/usr/bin/env bash
# Does the KL anchor (training/anchor.py) help? One short run on the allison user's real recordings with the
# default synthetic general-speech pool as replay, KL weight $1 (0 = off); then the run's best/ adapter on
# ../shared/bench/safety (3 unseen speakers) and allison's held-out sentences. Usage, under the heavy lock:
#   flock /tmp/vocabd-heavy.lock benchmarks/kl_anchor.sh KL_WEIGHT STEPS POOL_FOLDER [OUT_DIR]
set -euo pipefail
weight=$1 steps=$2 pool=$3 out=${4:-/tmp/kl-anchor}
bench=${BENCH:-$(dirname "$0")/../../shared/bench}
vocabd=${VOCABD:-.venv/bin/vocabd}
ws=$out/ws-kl$weight
mkdir -p "$ws"
printf '[model]\nbase = "moonshine-cpp"\n' > "$ws/vocabd.toml"
name=kl$weight-s$steps
start=$(date +%s)
$vocabd run-experiment "$name" -w "$ws" --train "$bench/allison/my_voice_train.jsonl" \
    --replay "$pool/replay.jsonl" --replay-ratio 0.3 --kl-weight "$weight" --max-steps "$steps" \
    --eval-interval "$steps" --lr 3e-4 --warmup-steps 10 >"$out/$name.train.log" 2>&1
echo "train $name: $(( $(date +%s) - start )) s"
for set in safety/safety_eval allison/my_voice_eval; do
    tag=$(basename "$set")
    [ -f "$out/base-$tag.json" ] || $vocabd evaluate "$bench/$set.jsonl" -w "$ws" --model moonshine-cpp \
        --allow-outside --json --output "$out/base-$tag.json" >/dev/null
    $vocabd evaluate "$bench/$set.jsonl" -w "$ws" --model moonshine-cpp --adapter "$ws/runs/$name/best" \
        --allow-outside --json --output "$out/$name-$tag.json" >/dev/null
done
echo "done $name: $(( $(date +%s) - start )) s"
