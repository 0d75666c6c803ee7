"""`vocabd --help` leads a newcomer: the path from install to a promoted adapter, then the commands in order."""

from click.testing import CliRunner

from vocabd.cli import EVERYDAY, main


def test_help_shows_the_path_and_lists_everyday_commands_first_in_order():
    out = CliRunner().invoke(main, ["--help"]).output
    path = out[:out.index("Options:")]
    steps = ["vocabd demo", "vocabd init", "vocabd start", "vocabd status --follow", "vocabd transcribe", "vocabd serve"]
    assert [path.index(step) for step in steps] == sorted(path.index(step) for step in steps)
    everyday = out[out.index("Everyday use:"):out.index("The chain's pieces")]
    listed = [line.split()[0] for line in everyday.splitlines()[1:] if line.strip()]
    assert listed == [name for name in EVERYDAY if name in main.commands]
    rest = out[out.index("The chain's pieces"):]
    for name in main.commands:
        assert (name in listed) != (f"\n  {name} " in rest), name  # every command exactly once
