"""Weightsmith's desktop GUI (PySide6 and pyqtgraph); it edits only through engine.Session."""
