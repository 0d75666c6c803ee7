import json

import numpy as np
import pytest
import soundfile as sf

from tiny import tone
from vocabd.audio import SAMPLE_RATE, load_audio
from vocabd.errors import VocabdError
from vocabd.manifest import Clip, ManifestError, load_manifest, read_manifest, write_manifest


def write_rows(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "audio").mkdir()
    sf.write(tmp_path / "audio/good.wav", tone(1.0), SAMPLE_RATE)
    stereo = np.stack([tone(1.0, 220, 44_100), tone(1.0, 330, 44_100)], axis=1)
    sf.write(tmp_path / "audio/stereo44k.flac", stereo, 44_100)
    sf.write(tmp_path / "audio/long.wav", tone(31.0), SAMPLE_RATE)
    sf.write(tmp_path / "audio/short.wav", tone(0.05), SAMPLE_RATE)
    sf.write(tmp_path / "audio/silent.wav", np.zeros(SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE)
    (tmp_path / "audio/empty.wav").write_bytes(b"")
    (tmp_path / "audio/garbage.wav").write_bytes(b"this is not audio at all" * 50)
    (tmp_path.parent / "outside.wav").write_bytes(b"")
    return tmp_path


def test_every_bad_row_is_reported_with_its_line(folder):
    path = write_rows(folder / "m.jsonl", [
        {"audio": "audio/good.wav", "text": "fine"},
        {"audio": "audio/missing.wav", "text": "x"},
        {"audio": "audio/empty.wav", "text": "x"},
        {"audio": "audio/garbage.wav", "text": "x"},
        {"audio": "audio/long.wav", "text": "x"},
        {"audio": "audio/short.wav", "text": "x"},
        {"audio": "audio/good.wav", "text": "  "},
        {"audio": "../outside.wav", "text": "x"},
        "{not json",
        {"text": "no audio"},
        {"audio": "audio/silent.wav", "text": "x"},
        {"audio_filepath": "audio/stereo44k.flac", "text": "NeMo names work"},
    ])
    clips, problems = read_manifest(path)
    assert [c.text for c in clips] == ["fine", "NeMo names work"]
    by_line = {p.line: p.message for p in problems}
    assert set(by_line) == set(range(2, 12))
    assert "file not found" in by_line[2]
    assert "empty" in by_line[3]
    assert "unreadable" in by_line[4]
    assert "outside" in by_line[5] and "31.00" in by_line[5]
    assert "outside" in by_line[6]
    assert "text" in by_line[7]
    assert "leaves" in by_line[8]
    assert "JSON" in by_line[9]
    assert "audio" in by_line[10]
    assert "silent" in by_line[11]
    assert all(str(path) in str(p) for p in problems)
    with pytest.raises(ManifestError, match="10 bad row"):
        load_manifest(path)


def test_outside_paths_allowed_on_request(folder):
    path = write_rows(folder / "m.jsonl", [{"audio": "../outside.wav", "text": "x"}])
    clips, problems = read_manifest(path, allow_outside=True, check_audio=False)
    assert len(clips) == 1 and not problems


def test_down_mix_and_resample(folder):
    audio = load_audio(folder / "audio/stereo44k.flac")
    assert audio.ndim == 1 and abs(len(audio) - SAMPLE_RATE) < 5 and audio.dtype == np.float32


def test_write_read_round_trip_keeps_extra_keys(folder):
    clip = Clip(audio=folder / "audio/good.wav", text="Hi @ there", duration=1.0, speaker="me", source="synthetic",
                id="g", extra={"backend": "piper"})
    out = folder / "data" / "m.jsonl"
    write_manifest(out, [clip])
    row = json.loads(out.read_text())
    assert row["audio"] == "../audio/good.wav" and row["backend"] == "piper"
    (back,), problems = read_manifest(out, root=folder)
    assert not problems and back.audio == clip.audio and back.extra == {"backend": "piper"} and back.text == clip.text


def test_a_link_that_leaves_the_folder_is_refused_unless_allowed(folder):
    outside = folder.parent / "elsewhere.wav"
    sf.write(outside, tone(1.0), SAMPLE_RATE)
    (folder / "audio/inside-looking.wav").symlink_to(outside)
    path = write_rows(folder / "m.jsonl", [{"audio": "audio/inside-looking.wav", "text": "x"}])
    clips, [problem] = read_manifest(path)
    assert clips == [] and "leaves" in problem.message and "symbolic link" in problem.message
    clips, problems = read_manifest(path, allow_outside=True)
    assert len(clips) == 1 and not problems


def test_a_manifest_that_is_not_utf8_is_a_clear_error(folder):
    import subprocess
    import sys

    path = folder / "latin1.jsonl"
    path.write_bytes(json.dumps({"audio": "audio/good.wav", "text": "café"}, ensure_ascii=False).encode("latin-1"))
    with pytest.raises(VocabdError, match=r"latin1\.jsonl:1: not UTF-8"):
        read_manifest(path)
    result = subprocess.run([sys.executable, "-m", "vocabd", "evaluate", str(path)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1 and "latin1.jsonl:1: not UTF-8" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
