"""The manual stays true: the README is short, its command table and the settings list are what the code renders
(`python -m vocabd.manual`), and every `vocabd ...` command the README and docs/ name still exists, with the
options they give it."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from vocabd.cli import main
from vocabd.manual import PARTS, command_rows, generated_part, render_commands, render_settings, with_part

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
TOPICS = ("inbox", "chain", "training", "general-speech", "serve", "export", "security", "settings")
PAGES = [README, *(REPO / "docs" / f"{topic}.md" for topic in TOPICS)]  # the log's old commands are history


def test_readme_is_a_front_door():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    for command in ("./dev demo", "./dev test"):
        assert command in text


def test_the_readme_command_table_is_rendered_from_the_help():
    assert generated_part(README.read_text(encoding="utf-8"), "commands") == render_commands()


def test_each_row_is_what_the_commands_help_says():
    assert {usage.split()[1] for usage, _ in command_rows()} == set(main.commands)
    for usage, text in command_rows():
        path = [word for word in usage.split()[1:] if word.islower() or "-" in word]
        out = CliRunner().invoke(main, [*path, "--help"], terminal_width=10_000).output
        assert " ".join(text.split()) in " ".join(out.split()), usage


def test_the_settings_list_is_rendered_from_the_declaration():
    assert generated_part((REPO / "docs" / "settings.md").read_text(encoding="utf-8"), "settings") == render_settings()


def test_a_generated_part_is_replaced_between_its_markers_only():
    text = (REPO / "docs" / "settings.md").read_text(encoding="utf-8")
    changed = with_part(text, "settings", "| new |")
    assert generated_part(changed, "settings") == "| new |"
    assert changed.split("<!-- settings:")[0] == text.split("<!-- settings:")[0]
    assert with_part(changed, "settings", render_settings()) == text
    assert set(PARTS) == {"commands", "settings"}


def code_texts(text: str) -> list[str]:
    """The fenced blocks' lines (comments cut) and the inline code spans of a markdown page."""
    blocks = re.findall(r"```.*?\n(.*?)```", text, flags=re.DOTALL)
    lines = [line.split("#")[0] for block in blocks for line in block.splitlines()]
    return lines + re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.DOTALL))


def named_commands(page: Path) -> list[list[str]]:
    """Each `vocabd ...` command line the page shows, as its words (after `vocabd`)."""
    commands = []
    for code in code_texts(page.read_text(encoding="utf-8")):
        for piece in re.split(r";|&&|\|\|", code):
            words = piece.replace("[", " ").replace("]", " ").replace("|", " ").split()
            if "vocabd" in words:
                commands.append(words[words.index("vocabd") + 1:])
    return commands


def resolve(words: list[str]) -> tuple[list[str], click.Command, list[str]]:
    """The command path the words name, the command, and the options given to it."""
    command, path = main, []
    while isinstance(command, click.Group) and words[len(path):] and words[len(path)] in command.commands:
        command = command.commands[words[len(path)]]
        path.append(command.name)
    options = [w.split("=")[0] for w in words[len(path):] if w.startswith("-")]
    return path, command, options


CASES = sorted({(page.relative_to(REPO).as_posix(), " ".join(words)) for page in PAGES
                for words in named_commands(page)})


def test_the_readme_names_commands():
    readme = [words for page, words in CASES if page == "README.md"]
    assert {"run --foreground", "status --follow", "transcribe --keep note.wav", "doctor --repair"} <= set(readme)


@pytest.mark.parametrize("page, line", CASES)
def test_every_command_the_manual_names_still_works(page, line):
    words = line.split()
    path, command, options = resolve(words)
    assert path or words[0].startswith("-"), f"{page}: `vocabd {line}` names no command"
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    known = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)} | {"--help"}
    assert not set(options) - known, f"{page}: `vocabd {line}`: {sorted(set(options) - known)} unknown"


def heading_anchor(heading: str) -> str:
    """The anchor GitHub gives a markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("page", [README, *sorted((REPO / "docs").glob("*.md"))], ids=lambda p: p.name)
def test_every_link_of_the_manual_leads_somewhere(page):
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
        if target.startswith(("http://", "https://")):
            continue
        file, _, anchor = target.partition("#")
        linked = (page.parent / file).resolve() if file else page
        assert linked.exists(), f"{page.name}: {target}"
        if anchor:
            headings = [line.lstrip("#") for line in linked.read_text(encoding="utf-8").splitlines()
                        if line.startswith("#")]
            assert anchor in {heading_anchor(h) for h in headings}, f"{page.name}: {target}"
