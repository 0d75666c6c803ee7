"""Is the machine running on battery? Linux: /sys/class/power_supply; macOS: `pmset -g batt`.

Unknown (no battery, nothing readable) counts as mains power: a desktop or a server never pauses.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

LINUX_POWER_SUPPLY = Path("/sys/class/power_supply")
POWER_SUPPLY_ENV = "VOCABD_POWER_SUPPLY"


def on_battery() -> bool:
    """`VOCABD_POWER_SUPPLY` names another folder laid out like Linux's (a container's, the tests')."""
    if os.environ.get(POWER_SUPPLY_ENV):
        return sysfs_on_battery(Path(os.environ[POWER_SUPPLY_ENV]))
    if sys.platform == "darwin":
        return pmset_on_battery(_pmset_output())
    return sysfs_on_battery(LINUX_POWER_SUPPLY)


def sysfs_on_battery(power_supply: Path) -> bool:
    """True when a battery is discharging, or there are batteries and no mains/USB supply is online."""
    batteries, mains_online = [], False
    if not power_supply.is_dir():
        return False
    for supply in sorted(power_supply.iterdir()):
        kind = _read(supply / "type")
        if kind == "Battery":
            if _read(supply / "scope") == "Device":  # a wireless mouse's battery says nothing about the machine
                continue
            batteries.append(_read(supply / "status"))
        elif kind in ("Mains", "USB", "USB_C", "USB_PD") and _read(supply / "online") == "1":
            mains_online = True
    if any(status == "Discharging" for status in batteries):
        return True
    return bool(batteries) and not mains_online


def pmset_on_battery(text: str) -> bool:
    """`pmset -g batt` starts with "Now drawing from 'Battery Power'" (or 'AC Power', 'UPS Power')."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return "'Battery Power'" in first


def _pmset_output() -> str:
    try:
        return subprocess.run(["pmset", "-g", "batt"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""
