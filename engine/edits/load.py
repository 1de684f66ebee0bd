"""`load`: copy tensors from a state-dict file into the document, with a report.

Keys can be stripped of a prefix, renamed by regular expressions and filtered by
globs before they are matched to the document's names. Nothing is copied unless
the whole load is valid: with `strict`, any missing, unexpected or mismatched name
is an error; mismatched shapes are an error unless `skip_mismatched`.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import EditError, FileError
from ..io import read_state_dict
from ..name_patterns import Substitution, compile_pattern
from ..schema import Field as F
from .base import Edit, register

if TYPE_CHECKING:
    from ..changes import Transaction
    from ..document import Document


@register
class Load(Edit):
    """Load weights from a file into matching tensors."""

    op = "load"
    fields = (
        F("path", "text", "a state-dict file (.safetensors, .pt, .bin, ...)", required=True,
          label="File"),
        F("strict", "bool", "refuse unless every name matches", default=False),
        F("strip_prefix", "names", "prefixes removed from the file's keys (the first that fits)"),
        F("rename", "list", "[regex, replacement] pairs applied to the file's keys"),
        F("skip_mismatched", "bool", "leave tensors of another shape out instead of refusing",
          default=False),
        F("include", "names", "globs: load only these names", label="Only names"),
        F("exclude", "names", "globs: never load these names", label="Except names"),
    )

    def parse(self) -> None:
        rename = self.spec.get("rename", [])
        if not isinstance(rename, list) or not all(
            isinstance(pair, list | tuple) and len(pair) == 2
            and all(isinstance(part, str) for part in pair) for pair in rename
        ):
            raise EditError("load.rename: expected a list of [regex, replacement] pairs")
        self.rules = [(compile_pattern(pattern, f"load.rename[{position}]"), replacement)
                      for position, (pattern, replacement) in enumerate(rename)]

    def describe(self) -> str:
        return f"Load {Path(self.spec['path']).name}"

    def _map_key(self, key: str, bounded: Substitution) -> str:
        for prefix in self.get_names("strip_prefix") or []:
            if key.startswith(prefix):
                key = key[len(prefix):]
                break
        for position, (pattern, replacement) in enumerate(self.rules):
            bounded.field = f"load.rename[{position}]"
            key = bounded.sub(pattern, replacement, key)
        return key

    def _wanted(self, name: str) -> bool:
        include = self.get_names("include")
        exclude = self.get_names("exclude") or []
        if include is not None and not any(fnmatch.fnmatchcase(name, p) for p in include):
            return False
        return not any(fnmatch.fnmatchcase(name, p) for p in exclude)

    def perform(self, doc: Document, tx: Transaction) -> Any:
        try:
            stored = read_state_dict(self.spec["path"])
        except FileError as error:
            raise EditError(f"load.path: {error}") from None
        report = self.plan(doc, stored)
        strict = self.get_bool("strict")
        problems = []
        if strict and report["missing"]:
            problems.append(f"{len(report['missing'])} missing (e.g. '{report['missing'][0]}')")
        if strict and report["unexpected"]:
            problems.append(f"{len(report['unexpected'])} unexpected "
                            f"(e.g. '{report['unexpected'][0]}')")
        if report["mismatched"] and not self.get_bool("skip_mismatched"):
            first = report["mismatched"][0]
            problems.append(f"{len(report['mismatched'])} with another shape (e.g. "
                            f"'{first['name']}': file {first['file_shape']}, "
                            f"model {first['model_shape']}; set skip_mismatched)")
        if problems:
            raise EditError(f"load.path: {self.spec['path']}: " + "; ".join(problems))
        report["skipped"] = [item["name"] for item in report["mismatched"]]
        written: set[int] = set()
        self.resolved["pairs"] = []
        for name, key in report.pop("_pairs"):
            tensor = doc.tensor(name)
            if id(tensor) in written:
                continue  # a tied tensor is written once
            written.add(id(tensor))
            doc.write_values(tx, name, stored[key])
            self.resolved["pairs"].append((name, key))
        return report

    def plan(self, doc: Document, stored: dict[str, Any]) -> dict[str, Any]:
        """Match file keys to document names; return the report (nothing is changed)."""
        rows = doc.rows(persistent_only=True)  # the names a state dict of the document has
        names = [row.name for row in rows]
        shapes = {row.name: row.shape for row in rows}
        dtypes = {row.name: row.dtype for row in rows}
        mapped: dict[str, str] = {}
        bounded = Substitution("load.rename", len(stored) * len(self.rules))
        for key in stored:
            target = self._map_key(key, bounded)
            if self._wanted(target):
                mapped.setdefault(target, key)
        wanted_names = [name for name in names if self._wanted(name)]
        loaded, mismatched, pairs, converted = [], [], [], []
        for name in wanted_names:
            key = mapped.get(name)
            if key is None:
                continue
            file_shape = tuple(stored[key].shape)
            if file_shape != shapes[name]:
                mismatched.append({"name": name, "file_key": key, "file_shape": list(file_shape),
                                   "model_shape": list(shapes[name])})
                continue
            if stored[key].dtype != dtypes[name]:
                converted.append(name)
            loaded.append(name)
            pairs.append((name, key))
        return {
            "path": self.spec["path"],
            "loaded": loaded,
            "missing": [name for name in wanted_names if name not in mapped],
            "unexpected": [target for target in mapped if target not in shapes],
            "mismatched": mismatched,
            "converted_dtype": converted,
            "_pairs": pairs,
        }

