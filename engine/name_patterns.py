"""Regular expressions over tensor names, with bounded time (`rename`, `load.rename`).

A recipe's pattern is untrusted input: `^(a+)+$X` against a long name backtracks for
longer than anyone waits with Python's `re`. Patterns are compiled with the `regex`
package in its `re`-compatible mode (the same syntax and replacement templates as `re`)
and every substitution runs under one deadline shared by all the names an edit
touches: `MATCH_SECONDS` plus `SECONDS_PER_NAME` for each name, so an edit over 100,000
names is bounded as a whole (12 s) while an honest pattern over many names is never cut
short (`regex`'s timeout costs about 15 us a call, 1.5 s for 100,000 names, more under
load); past it, the edit fails in one line naming its field.

Compiling is bounded too: the `regex` package writes out counted repeats when it
compiles, so `(?:(?:(?:a{50}){50}){50}){50}` (29 characters) took 19 s and 2.1 GB to
compile. A pattern is measured first (`expanded_size`, from `re`'s own parser, which
expands nothing) and refused past `MAX_EXPANDED` units or `MAX_PATTERN` characters.
"""

from __future__ import annotations

import re
import re._constants as sre
import re._parser as sre_parse
import time
from typing import Any

import regex

from .errors import EditError

#: seconds all the substitutions of one edit may take together, beyond ...
MATCH_SECONDS = 2.0
#: ... this much for each name it matches (about 7x an honest match's cost)
SECONDS_PER_NAME = 1e-4
#: characters of a pattern at most
MAX_PATTERN = 5_000
#: pattern items after counted repeats are written out, at most (`a{1000}` is 1000)
MAX_EXPANDED = 100_000
_REPEATS = {sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT}
_QUANTIFIER = re.compile(r"\{(\d*),?(\d*)\}")


def compile_pattern(pattern: str, field: str) -> Any:
    """Compile `pattern` (as `re` would); EditError naming `field` when it is not valid
    or would cost too much to compile."""
    if not isinstance(pattern, str):
        raise EditError(f"{field}: expected a regular expression")
    if len(pattern) > MAX_PATTERN:
        raise EditError(f"{field}: a regex of {len(pattern):,} characters (at most "
                        f"{MAX_PATTERN:,})")
    size = expanded_size(pattern)
    if size > MAX_EXPANDED:
        raise EditError(f"{field}: the counted repeats of '{_short(pattern)}' nest to "
                        f"{size:,} items when compiled (at most {MAX_EXPANDED:,}); simplify it")
    try:
        return regex.compile(pattern, flags=regex.VERSION0)
    except (regex.error, OverflowError, RecursionError, ValueError) as error:
        raise EditError(f"{field}: bad regex '{_short(pattern)}' ({error})") from None


def expanded_size(pattern: str) -> int:
    """How many items `pattern` has once its counted repeats are written out.

    Read with `re`'s parser, which expands nothing. A pattern `re` cannot parse (syntax
    of `regex` alone) is bounded by the product of every count it holds, as if all its
    repeats were nested.
    """
    try:
        return _size(sre_parse.parse(pattern))
    except (re.error, RecursionError, OverflowError, ValueError, TypeError):
        product = max(len(pattern), 1)
        for low, high in _QUANTIFIER.findall(pattern[:MAX_PATTERN]):
            product *= max(int(high or 0), int(low or 0), 1)
            if product > MAX_EXPANDED:
                break
        return product


def _size(parsed: Any) -> int:
    total = 0
    for op, av in parsed:
        if op in _REPEATS:
            low, high, sub = av
            count = high if high != sre.MAXREPEAT else max(low, 1)
            total += max(count, 1) * _size(sub)
        elif op is sre.SUBPATTERN:
            total += _size(av[3])
        elif op is sre.BRANCH:
            total += sum(_size(branch) for branch in av[1])
        elif op is sre.ATOMIC_GROUP:
            total += _size(av)
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            total += _size(av[1])
        elif op is sre.GROUPREF_EXISTS:
            total += _size(av[1]) + (_size(av[2]) if av[2] is not None else 0)
        else:
            total += 1
        if total > MAX_EXPANDED:
            return total  # enough to refuse; the rest need not be counted
    return total


def _short(pattern: str) -> str:
    return pattern if len(pattern) <= 60 else pattern[:57] + "..."


class Substitution:
    """Apply compiled patterns to many names under one deadline.

    Parameters
    ----------
    field : named in errors (e.g. 'rename.pattern', 'load.rename[0]')
    names : how many names the calls of `sub` will match (each adds `SECONDS_PER_NAME`)
    seconds : the time all calls of `sub` may take together beyond the names' share
    """

    def __init__(self, field: str, names: int = 0, seconds: float = MATCH_SECONDS) -> None:
        self.field = field
        self.seconds = seconds + SECONDS_PER_NAME * names
        self.deadline = time.monotonic() + self.seconds

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
        return EditError(f"{self.field}: matching '{_short(compiled.pattern)}' took more than "
                         f"{self.seconds:.3g} s (a pattern that backtracks, such as (a+)+); "
                         "simplify it")
