"""A wheel install (no editable install, no checkout beside it) finds its own files and runs its commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

LOOKUPS = """
import vocabd, sys
from vocabd.demo import lines
from vocabd.general.texts import load_sentences
from vocabd.resources import resource_text
assert vocabd.__file__.startswith(sys.prefix), vocabd.__file__
assert lines("recordings.txt") and lines("safety.txt") and lines("replay.txt")
assert "kubectl" in resource_text("demo", "jargon.txt")
assert "{{WORKSPACE}}" in resource_text("agent", "com.vocabd.agent.plist")
assert "{{WORKSPACE}}" in resource_text("agent", "vocabd.service")
assert load_sentences()
print("lookups ok")
"""


def run(*cmd: str | Path, env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{cmd}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_wheel_installs_into_a_fresh_venv_and_finds_its_files(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VOCABD_HOME")}
    source = tmp_path / "src"  # a copy: building must not leave build/ or egg-info in the checkout
    shutil.copytree(REPO / "vocabd", source / "vocabd", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
        "-w", tmp_path / "dist", source, env=env, cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("vocabd-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {"vocabd/resources/demo/jargon.txt", "vocabd/resources/agent/vocabd.service"} <= set(names)

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, env=env, cwd=tmp_path)
    python = venv / "bin" / "python"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", env=env,
                    cwd=tmp_path).strip())
    # the dependencies come from this environment (offline, fast); vocabd itself only from the wheel
    (site / "_vocabd_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel,
        env=env, cwd=tmp_path)

    vocabd = venv / "bin" / "vocabd"
    assert "--no-run" in run(vocabd, "demo", "--help", env=env, cwd=tmp_path)
    assert "lookups ok" in run(python, "-c", LOOKUPS, env=env, cwd=tmp_path)
    run(vocabd, "init", tmp_path / "ws", env=env, cwd=tmp_path)
    plan = run(vocabd, "agent", "install", "--dry-run", "-w", tmp_path / "ws", env={**env, "HOME": str(tmp_path)},
               cwd=tmp_path)
    assert f'ExecStart="{python}" -P -m vocabd start --foreground --workspace "{tmp_path / "ws"}"' in plan
    assert f"would write {tmp_path / '.config' / 'systemd' / 'user' / 'vocabd.service'}" in plan
