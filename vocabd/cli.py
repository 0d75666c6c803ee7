"""The `vocabd` command line. Each command is a thin layer over the room that does the work."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from vocabd.errors import VocabdError
from vocabd.log import configure_logging
from vocabd.workspace import Workspace, find_workspace, init_workspace

workspace_option = click.option(
    "--workspace", "-w", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Workspace folder (default: $VOCABD_HOME, the current folder, or the per-user default).",
)


class Cli(click.Group):
    """Prints VocabdError as one clear line and exits 1, instead of a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except VocabdError as e:
            click.secho(f"error: {e}", fg="red", err=True)
            sys.exit(1)


@click.group(cls=Cli)
@click.version_option(package_name="vocabd")
def main() -> None:
    """Teach a small on-device speech recognizer one person's voice and vocabulary."""
    configure_logging(console=True)


def open_ws(path: Path | None) -> Workspace:
    return find_workspace(path)


@main.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
def init(directory: Path | None) -> None:
    """Create a workspace (inbox/, data/, runs/, vocabd.toml) in DIRECTORY (default: per-user home)."""
    from vocabd.workspace import default_home

    ws = init_workspace(directory or default_home())
    click.echo(f"workspace ready: {ws.root}\n  drop a jargon list (.txt) and voice samples into {ws.inbox}")
