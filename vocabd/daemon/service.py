"""Login agent: a launchd plist (macOS) or a systemd user unit (Linux) that runs `vocabd start --foreground`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from xml.sax.saxutils import escape

from vocabd.errors import VocabdError
from vocabd.files import write_text
from vocabd.resources import resource_text
from vocabd.timing import Timing
from vocabd.workspace import Workspace

LABEL = "com.vocabd.agent"
UNIT = "vocabd.service"
# A launchd agent may not read these (TCC); a workspace there would fail silently at login.
TCC_FOLDERS = ("Documents", "Desktop", "Downloads", "Library/Mobile Documents")
DEFAULT_PATH = "/opt/homebrew/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"


@dataclass
class AgentPlan:
    kind: str  # launchd | systemd
    path: Path  # where the agent file goes
    content: str
    install: list[list[str]] = field(default_factory=list)  # commands run after writing
    uninstall: list[list[str]] = field(default_factory=list)  # commands run before removing


def check_location(root: Path, home: Path, platform: str) -> None:
    if platform != "darwin":
        return
    root = root.resolve()
    for folder in TCC_FOLDERS:
        protected = (home / folder).resolve()
        if root == protected or root.is_relative_to(protected):
            raise VocabdError(
                f"workspace {root} lies in ~/{folder}, which macOS does not let a login agent read (TCC); "
                f"move it, e.g. `vocabd init ~/Library/Application\\ Support/vocabd`, and install from there")


def plan_agent(ws: Workspace, platform: str = sys.platform, home: Path | None = None,
               env: dict[str, str] | None = None) -> AgentPlan:
    home = home or Path.home()
    env = dict(os.environ if env is None else env)
    check_location(ws.root, home, platform)
    fields = {"LABEL": LABEL, "PYTHON": sys.executable, "WORKSPACE": str(ws.root), "LOG": str(ws.log_file),
              "PATH": _search_path(env), "EXIT_TIMEOUT": str(int(Timing.from_env().shutdown) + 15)}
    if platform == "darwin":
        return _launchd_plan(home, fields)
    return _systemd_plan(home, env, fields)


def _search_path(env: dict[str, str]) -> str:
    """The agent's PATH: the caller's (for ffmpeg, espeak-ng) plus the usual places."""
    parts = [p for p in env.get("PATH", "").split(os.pathsep) if p] + DEFAULT_PATH.split(":")
    return ":".join(dict.fromkeys(parts))


def _fill(template: str, fields: dict[str, str], quote: Callable[[str], str]) -> str:
    text = resource_text("agent", template)
    for key, value in fields.items():
        text = text.replace("{{" + key + "}}", quote(value))
    return text


def _launchd_plan(home: Path, fields: dict[str, str]) -> AgentPlan:
    path = home / "Library" / "LaunchAgents" / f"{LABEL}.plist"
    domain = f"gui/{os.getuid()}"
    return AgentPlan(
        kind="launchd", path=path, content=_fill(f"{LABEL}.plist", fields, escape),
        install=[["launchctl", "bootout", f"{domain}/{LABEL}"], ["launchctl", "bootstrap", domain, str(path)]],
        uninstall=[["launchctl", "bootout", f"{domain}/{LABEL}"]],
    )


def _systemd_quote(value: str) -> str:
    if any(c in value for c in '"\n\\'):
        raise VocabdError(f"cannot write {value!r} into a systemd unit (quotes, backslashes or newlines)")
    return value.replace("%", "%%")


def _systemd_plan(home: Path, env: dict[str, str], fields: dict[str, str]) -> AgentPlan:
    config = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    path = config / "systemd" / "user" / UNIT
    ctl = ["systemctl", "--user"]
    return AgentPlan(
        kind="systemd", path=path, content=_fill(UNIT, fields, _systemd_quote),
        install=[ctl + ["daemon-reload"], ctl + ["enable", "--now", UNIT]],
        uninstall=[ctl + ["disable", "--now", UNIT]],
    )


def install_agent(plan: AgentPlan, dry_run: bool = False) -> list[str]:
    """Write the agent file and load it; returns what was done (or would be, with dry_run)."""
    done = [f"{'would write' if dry_run else 'wrote'} {plan.path}"]
    if dry_run:
        return done + [f"would run: {' '.join(c)}" for c in plan.install]
    write_text(plan.path, plan.content)
    # the first launchctl command unloads an older copy and may fail harmlessly
    return done + [_run(c, may_fail=i == 0 and plan.kind == "launchd") for i, c in enumerate(plan.install)]


def uninstall_agent(plan: AgentPlan, dry_run: bool = False) -> list[str]:
    if dry_run:
        return [f"would run: {' '.join(c)}" for c in plan.uninstall] + [f"would remove {plan.path}"]
    done = [_run(c, may_fail=True) for c in plan.uninstall]
    if plan.path.exists():
        plan.path.unlink()
        done.append(f"removed {plan.path}")
    else:
        done.append(f"{plan.path} was not installed")
    if plan.kind == "systemd":
        done.append(_run(["systemctl", "--user", "daemon-reload"], may_fail=True))
    return done


def _run(cmd: list[str], may_fail: bool = False) -> str:
    shown = " ".join(cmd)
    if shutil.which(cmd[0]) is None:
        return f"skipped: {shown} ({cmd[0]} not found; run it yourself where {cmd[0]} exists)"
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if result.returncode == 0:
        return f"ran: {shown}"
    reason = (result.stderr or result.stdout).strip().splitlines()[-1:] or [f"exit {result.returncode}"]
    prefix = "note" if may_fail else "FAILED"
    return f"{prefix}: {shown}: {reason[0]}"
