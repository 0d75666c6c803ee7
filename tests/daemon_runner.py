"""`python -m daemon_runner ARGS`: the vocabd CLI with the daemon tests' LoggingPipeline as the chain's."""

from daemon_pipeline import PIPELINE
from vocabd.cli import main

main(obj=PIPELINE)
