"""The errors vocabd raises on purpose: each names the file and the problem."""

from pathlib import Path


class VocabdError(Exception):
    """An error a user can act on; the CLI prints it without a traceback."""


class ConfigError(VocabdError):
    def __init__(self, path: Path, key: str, problem: str):
        super().__init__(f"{path}: [{key}] {problem}")
        self.path, self.key, self.problem = path, key, problem


class AudioError(VocabdError):
    def __init__(self, path: Path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = path, problem


class WorkspaceError(VocabdError):
    pass


class NoWorkspaceFound(WorkspaceError):
    """Nothing named a workspace and neither the current folder nor the per-user default is one."""
