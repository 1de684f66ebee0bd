"""Regular expressions over tensor names, with bounded time (`rename`, `load.rename`).

A recipe's pattern is untrusted input: `^(a+)+$X` against a long name backtracks for
longer than anyone waits with Python's `re`. Patterns are compiled with the `regex`
package in its `re`-compatible mode (the same syntax and replacement templates as `re`)
and every substitution runs under one deadline shared by all the names an edit
touches, so an edit over 100,000 names is bounded as a whole; past it, the edit fails
in one line naming its field.
"""

from __future__ import annotations

import time
from typing import Any

import regex

from .errors import EditError

#: seconds all the substitutions of one edit may take together
MATCH_SECONDS = 2.0


def compile_pattern(pattern: str, field: str) -> Any:
    """Compile `pattern` (as `re` would); EditError naming `field` when it is not valid."""
    try:
        return regex.compile(pattern, flags=regex.VERSION0)
    except (regex.error, OverflowError, RecursionError, ValueError) as error:
        raise EditError(f"{field}: bad regex '{pattern}' ({error})") from None


class Substitution:
    """Apply compiled patterns to many names under one deadline.

    Parameters
    ----------
    field : named in errors (e.g. 'rename.pattern', 'load.rename[0]')
    seconds : the time all calls of `sub` may take together
    """

    def __init__(self, field: str, seconds: float = MATCH_SECONDS) -> None:
        self.field = field
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def sub(self, compiled: Any, replacement: str, name: str,
            replacement_field: str | None = None) -> str:
        """`compiled.sub(replacement, name)`, or EditError when time is up or the
        replacement is not valid (naming `replacement_field`)."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise self._too_slow(compiled)
        try:
            return compiled.sub(replacement, name, timeout=remaining)
        except TimeoutError:
            raise self._too_slow(compiled) from None
        except (regex.error, IndexError, ValueError) as error:
            raise EditError(f"{replacement_field or self.field}: {error}") from None

    def _too_slow(self, compiled: Any) -> EditError:
        return EditError(f"{self.field}: matching '{compiled.pattern}' took more than "
                         f"{self.seconds:g} s (a pattern that backtracks, such as (a+)+); "
                         "simplify it")
