"""The synthesize and mix jobs on a real workspace (espeak for speed, piper where it matters)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from tiny import speech_wav
from vocabd.cli import main
from vocabd.synthesis.mix import MAX_REPEAT, MixError, mix, target_counts, upsample
from vocabd.synthesis.synthesize import render_sentences, synthesize, synthesize_heldout
from vocabd.manifest import Clip, load_manifest, write_manifest
from vocabd.synthesis.sentences import Sentence
from vocabd.tts import SynthesisError, unavailable_reason
from vocabd.tts.espeak import EspeakSynthesizer
from vocabd.workspace import Workspace, init_workspace

JARGON = "# test list\nPBX | P B X\nkubectl\nops@acme.io\nDigium\nWER\n"


def make_ws(tmp_path: Path, backend: str = "espeak", ratio: float = 0.5) -> Workspace:
    root = tmp_path / "ws"
    init_workspace(root)
    (root / "vocabd.toml").write_text(f'[synthesis]\nbackend = "{backend}"\n\n[mix]\nsynthetic_ratio = {ratio}\n')
    (root / "data" / "jargon.txt").write_text(JARGON)
    return init_workspace(root)


def add_real_recordings(ws: Workspace, texts: list[str]) -> list[Clip]:
    clips = []
    (ws.data / "real").mkdir(exist_ok=True)
    for i, text in enumerate(texts):
        wav = speech_wav(ws.data / "real" / f"r{i}.wav", text, voice="en-gb")
        clips.append(Clip(audio=wav, text=text, duration=0.0, speaker="user", source="real", id=f"r{i}"))
    write_manifest(ws.manifest("my_voice_train"), clips)
    return clips


def test_synthesize_writes_valid_clips_and_a_rerun_hits_the_cache(tmp_path):
    ws = make_ws(tmp_path)
    first = synthesize(ws, "mini", count=6, progress=False)
    assert (first.made, first.cached, first.failures) == (6, 0, [])
    assert first.backend == "espeak" and first.cloned is False
    clips = load_manifest(ws.manifest("synthetic_train_mini"), root=ws.root)  # every row validates
    assert len(clips) == 6 and len({c.text for c in clips}) == 6
    for clip in clips:
        assert clip.source == "synthetic" and clip.speaker.startswith("espeak:")
        assert clip.audio.parent == ws.data / "synthetic" and clip.audio.suffix == ".wav"
        assert clip.extra["backend"] == "espeak" and clip.extra["cloned"] is False
        assert clip.extra["terms"] and all(term in clip.text for term in clip.extra["terms"])
    import soundfile as sf

    assert {sf.info(str(c.audio)).samplerate for c in clips} == {16_000}
    stamps = {c.audio: c.audio.stat().st_mtime_ns for c in clips}

    again = synthesize(ws, "mini", count=6, progress=False)
    assert (again.made, again.cached) == (0, 6)
    assert {c.audio: c.audio.stat().st_mtime_ns for c in load_manifest(ws.manifest("synthetic_train_mini"))} == stamps
    more = synthesize(ws, "full", count=9, progress=False)  # the first six sentences are the same: only 3 new
    assert (more.made, more.cached) == (3, 6)
    stats = json.loads(ws.manifest("synthetic_train").with_suffix(".stats.json").read_text())
    assert stats["backend"] == "espeak" and stats["cloned"] is False and stats["clips"] == 9


@pytest.mark.skipif(unavailable_reason("piper") is not None, reason="piper not installed")
def test_auto_backend_on_linux_is_piper_and_says_not_cloned(tmp_path):
    ws = make_ws(tmp_path, backend="auto")
    result = synthesize(ws, "mini", count=2, progress=False)
    assert result.backend == "piper" and not result.cloned and result.voices == ["piper:joe"]
    assert result.real_time_factor is not None and result.real_time_factor > 0  # speed: docs/benchmarks.md


class FailingOn(EspeakSynthesizer):
    """Real espeak, except that sentences containing `word` raise (a backend error on one clip)."""

    def __init__(self, word: str):
        super().__init__(workers=2)
        self.word = word

    def render(self, text, voice):
        if self.word in text:
            raise RuntimeError("synthesizer crashed")
        return super().render(text, voice)


def sentences(n: int) -> list[Sentence]:
    return [Sentence(text=f"Check PBX number {i}.", spoken=f"Check P B X number {i}.", terms=("PBX",)) for i in range(n)]


def test_a_failed_clip_is_reported_and_skipped_but_most_failing_is_fatal(tmp_path):
    ws = make_ws(tmp_path)
    manifest = ws.manifest("synthetic_train_mini")
    result = render_sentences(ws, sentences(4) + [Sentence("Boom PBX.", "boom P B X.", ("PBX",))], FailingOn("boom"),
                              manifest, progress=False)
    assert result.made == 4 and len(result.failures) == 1
    assert result.failures[0].text == "Boom PBX." and "synthesizer crashed" in result.failures[0].error
    assert len(load_manifest(manifest)) == 4
    with pytest.raises(SynthesisError, match="3 of 4 clips failed"):
        render_sentences(ws, sentences(1) + [Sentence(f"Boom {i}.", f"boom {i}.", ()) for i in range(3)],
                         FailingOn("boom"), manifest, progress=False)


@pytest.mark.skipif(unavailable_reason("piper") is not None, reason="piper not installed")
def test_heldout_uses_other_voices_and_other_sentences(tmp_path):
    ws = make_ws(tmp_path, backend="espeak")
    train = synthesize(ws, "full", count=8, progress=False)
    path = synthesize_heldout(ws, 3, progress=False)
    heldout = load_manifest(path)
    assert path == ws.manifest("synthetic_eval") and len(heldout) == 3
    assert {c.extra["backend"] for c in heldout} == {"piper"}  # training used espeak
    train_texts = {c.text for c in load_manifest(train.manifest)}
    assert not train_texts & {c.text for c in heldout}


def test_missing_jargon_list_is_a_clear_error(tmp_path):
    ws = make_ws(tmp_path)
    (ws.data / "jargon.txt").unlink()
    with pytest.raises(Exception, match="no jargon list"):
        synthesize(ws, "mini", count=2, progress=False)


# --- mix ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n_syn, n_real, ratio, expected", [
    (6, 3, 0.5, (6, 6)),  # real upsampled
    (6, 3, 0.75, (9, 3)),  # synthetic upsampled, no real clip dropped
    (100, 2, 0.5, (100, 2 * MAX_REPEAT)),  # the repeat cap wins over the ratio
    (6, 0, 0.5, (6, 0)),
    (0, 4, 0.5, (0, 4)),
    (6, 3, 1.0, (6, 0)),
    (6, 3, 0.0, (0, 3)),
])
def test_target_counts(n_syn, n_real, ratio, expected):
    assert target_counts(n_syn, n_real, ratio) == expected


def test_upsample_uses_every_clip_before_repeating():
    clips = [Clip(audio=Path(f"/a/{i}.wav"), text=str(i), id=str(i)) for i in range(3)]
    rows = upsample(clips, 7, random.Random(0))
    ids = [c.id for c in rows]
    assert sorted(ids[:3]) == ["0", "1", "2"] and len(set(ids)) == 7  # repeats get their own id
    assert sorted(i.split("#")[0] for i in ids).count("0") >= 2


def test_mix_combines_validated_rows_with_ratio_counts_and_hours(tmp_path):
    ws = make_ws(tmp_path, ratio=0.5)
    synthesize(ws, "mini", count=6, progress=False)
    add_real_recordings(ws, ["Please leave a message.", "Press the pound key.", "Your call is important."])
    with ws.manifest("my_voice_train").open("a") as f:  # one broken row: left out, counted, not fatal
        f.write(json.dumps({"audio": "real/missing.wav", "text": "gone"}) + "\n")
    result = mix(ws, "mini")
    rows = load_manifest(ws.manifest("mixed_train_mini"), root=ws.root)
    assert len(rows) == result.rows == 12
    assert result.sources["synthetic"].rows == 6 and result.sources["real"].rows == 6
    assert result.sources["real"].unique == 3 and result.sources["real"].rejected == 1
    assert result.achieved_ratio == 0.5 and any("missing.wav" in p for p in result.problems)
    assert abs(result.hours - sum(c.duration for c in rows) / 3600) < 1e-6
    assert [c.source for c in rows] != sorted(c.source for c in rows)  # shuffled
    stored = json.loads(ws.manifest("mixed_train_mini").with_suffix(".stats.json").read_text())
    assert stored["sources"]["real"]["rows"] == 6 and stored["rows"] == 12
    assert mix(ws, "mini").to_dict() == result.to_dict()  # same seed, same mix
    assert load_manifest(ws.manifest("mixed_train_mini"), root=ws.root) == rows


def test_mix_with_replay_and_without_anything(tmp_path):
    ws = make_ws(tmp_path)
    with pytest.raises(MixError, match="nothing to mix"):
        mix(ws, "full")
    synthesize(ws, "full", count=4, progress=False)
    (tmp_path / "replay").mkdir()
    replay = [Clip(audio=speech_wav(tmp_path / "replay" / f"p{i}.wav", t), text=t, speaker="other", id=f"p{i}")
              for i, t in enumerate(["The birch canoe slid.", "Glue the sheet to the board."])]
    write_manifest(tmp_path / "replay" / "replay.jsonl", replay)
    result = mix(ws, "full", replay=tmp_path / "replay" / "replay.jsonl", replay_ratio=0.2)
    assert result.sources["synthetic"].rows == 4 and result.sources["replay"].rows == 1
    assert {c.source for c in load_manifest(result.manifest, allow_outside=True)} == {"synthetic", "replay"}


def test_cli_synthesize_and_mix(tmp_path):
    ws = make_ws(tmp_path)
    runner = CliRunner()
    out = runner.invoke(main, ["synthesize", "-w", str(ws.root), "--count", "3", "--phase", "mini"])
    assert out.exit_code == 0, out.output
    assert "backend espeak" in out.output and "not cloned" in out.output
    out = runner.invoke(main, ["mix", "-w", str(ws.root), "--phase", "mini"])
    assert out.exit_code == 0, out.output
    assert "synthetic" in out.output and "3 rows" in out.output
    (ws.data / "jargon.txt").write_bytes(b"\x00\x01binary")
    out = runner.invoke(main, ["synthesize", "-w", str(ws.root), "--count", "3"])
    assert out.exit_code == 1 and "jargon.txt" in out.output and "binary" in out.output
