"""Weightsmith's headless command line: the same engine as the GUI, no Qt."""
