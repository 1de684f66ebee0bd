"""Exception types of the engine: one per layer, each with a message a user can read.

Every message names the field or file at fault and the problem, in one line, so that
the CLI, the API and the GUI can all show it as it is.
"""

from __future__ import annotations


class WeightsmithError(Exception):
    """Base of every error the engine reports to a user."""


class EditError(WeightsmithError):
    """An edit was rejected or failed; the session is unchanged."""


class FileError(WeightsmithError):
    """A file could not be read or written; names the file and the problem."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ArchError(WeightsmithError):
    """An architecture spec could not be resolved or built."""


class ExportError(WeightsmithError):
    """A deployment export failed or did not verify; nothing was written."""
