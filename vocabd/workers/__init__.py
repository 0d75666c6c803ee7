"""Worker processes: the room whose modules load torch and the speech model.

The daemon (and the chain's stages that run in it) never import these modules; they start them as
`python -P -m vocabd.workers.NAME REQUEST.json RESULT.json` (`vocabd.workers.launch`) and read a typed
result back. Training runs the same way (`vocabd.training.worker`).
"""
