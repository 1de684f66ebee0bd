"""The user's settings: window layout, recent files, last folders, in one ini file.

Always an ini file in `engine.journal.config_dir()` (beside the crash journal),
never the platform registry, so tests that set `WEIGHTSMITH_CONFIG_DIR` can never
touch a user's real settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

from engine.journal import config_dir

MAX_RECENT = 10


class Settings:
    """Typed access to the settings file.

    Parameters
    ----------
    path : the ini file (default `config_dir() / "settings.ini"`)
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else config_dir() / "settings.ini"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._qsettings = QSettings(str(self.path), QSettings.Format.IniFormat)

    def value(self, key: str, default: Any = None) -> Any:
        return self._qsettings.value(key, default)

    def flag(self, key: str, default: bool = False) -> bool:
        """A yes/no setting (ini files store it as text)."""
        value = self._qsettings.value(key, default)
        if isinstance(value, str):
            return value.lower() in ("true", "1", "yes")
        return bool(value)

    def set_value(self, key: str, value: Any) -> None:
        self._qsettings.setValue(key, value)

    def sync(self) -> None:
        """Write pending changes to disk."""
        self._qsettings.sync()

    # --- window -------------------------------------------------------------------
    def window_state(self) -> tuple[QByteArray | None, QByteArray | None]:
        """The saved geometry and dock layout of the main window, if any."""
        geometry = self._qsettings.value("window/geometry")
        state = self._qsettings.value("window/state")
        return (geometry if isinstance(geometry, QByteArray) else None,
                state if isinstance(state, QByteArray) else None)

    def set_window_state(self, geometry: QByteArray, state: QByteArray) -> None:
        self._qsettings.setValue("window/geometry", geometry)
        self._qsettings.setValue("window/state", state)

    # --- recent files -------------------------------------------------------------
    def recent_files(self) -> list[str]:
        """Recently opened files and folders, newest first."""
        value = self._qsettings.value("recent/files", [])
        if isinstance(value, str):  # QSettings returns a lone string for one entry
            value = [value]
        return [str(item) for item in (value or [])][:MAX_RECENT]

    def add_recent_file(self, path: str) -> list[str]:
        """Put `path` first in the recent files; return the new list."""
        path = str(Path(path).resolve())
        files = [path, *[item for item in self.recent_files() if item != path]][:MAX_RECENT]
        self._qsettings.setValue("recent/files", files)
        return files

    def remove_recent_file(self, path: str) -> None:
        self._qsettings.setValue("recent/files",
                                 [item for item in self.recent_files() if item != path])

    def clear_recent_files(self) -> None:
        self._qsettings.setValue("recent/files", [])

    # --- folders ------------------------------------------------------------------
    def last_folder(self, purpose: str) -> str:
        """The folder last used for `purpose` ('open', 'save', 'recipe'), or the home folder."""
        folder = self._qsettings.value(f"folders/{purpose}", "")
        return str(folder) if folder and Path(str(folder)).is_dir() else str(Path.home())

    def set_last_folder(self, purpose: str, path: str | Path) -> None:
        path = Path(path)
        self._qsettings.setValue(f"folders/{purpose}", str(path if path.is_dir() else path.parent))
