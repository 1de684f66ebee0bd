"""Dialogs of the editor. Each builds a JSON-ready edit spec or a set of options; none
changes a document itself."""
