"""Restricted expressions over `x`, checked before they run and translated to plain torch code.

`x * (x.abs() >= 0.05)` or `clamp(x, -1, 1)` are parsed with `ast`, every node is
checked against a whitelist (arithmetic, comparisons, a fixed set of torch functions
and tensor methods, numbers, the name `x`), and the tree is translated into a
torch expression string such as `x * (x.abs() >= 0.05)` or `torch.clamp(x, -1, 1)`.
The engine evaluates that string, and the exported script contains the same string,
so both compute the same bits. Anything else (imports, other names, attributes
outside the whitelist, lambdas, subscripts, strings) is rejected before anything runs.

Other tensors of the document are read through one accessor, `t("name")`, whose only
argument must be a literal string: it becomes `_t('name')` in the generated code, and
the names are listed (`CompiledExpr.tensor_names`) so the edit checks each one against
the document before anything runs and passes exactly those tensors (`evaluate(x,
tensors=...)`). `_t` looks names up in that mapping and nothing else.
"""

from __future__ import annotations

import ast
import builtins
import math
from dataclasses import dataclass
from typing import Any

import torch

from .errors import EditError

MAX_LENGTH = 2000
#: the accessor of other tensors: `t("name")`
ACCESSOR = "t"
#: the longest tensor name an expression may name
MAX_NAME_LENGTH = 1000

#: functions callable by name: name -> torch expression prefix
FUNCTIONS: dict[str, str] = {
    name: f"torch.{name}"
    for name in (
        "abs", "sign", "sqrt", "rsqrt", "exp", "expm1", "log", "log1p", "log2", "log10",
        "sin", "cos", "tan", "tanh", "sigmoid", "relu", "clamp", "clip", "where",
        "minimum", "maximum", "mean", "std", "var", "sum", "amax", "amin", "round",
        "floor", "ceil", "trunc", "square", "pow", "erf", "zeros_like", "ones_like",
        "full_like", "sgn", "isfinite", "isnan", "nan_to_num", "logical_and",
        "logical_or", "logical_not", "fmod", "remainder", "lerp", "quantile", "median",
    )
}
FUNCTIONS["norm"] = "torch.linalg.vector_norm"
FUNCTIONS["max"] = "torch.amax"
FUNCTIONS["min"] = "torch.amin"
#: random functions draw from the edit's own generator (created from its seed)
RANDOM_FUNCTIONS = {"randn_like": "randn", "rand_like": "rand"}
#: tensor methods allowed in `x.method(...)` form
METHODS = frozenset(
    {"abs", "sign", "sqrt", "exp", "log", "clamp", "clip", "mean", "std", "var", "sum",
     "amax", "amin", "max", "min", "round", "floor", "ceil", "norm", "sigmoid", "tanh",
     "relu", "square", "float", "double", "half", "bfloat16", "t", "flip", "roll",
     "cumsum", "softmax", "transpose", "reshape", "view", "sort", "argsort", "median",
     "quantile", "nan_to_num", "logical_not", "fmod", "remainder", "pow"}
)
#: attributes allowed without a call
ATTRIBUTES = frozenset({"T", "mT"})
KEYWORDS = frozenset(
    {"min", "max", "dim", "keepdim", "correction", "unbiased", "ord", "p", "fill_value",
     "nan", "posinf", "neginf", "decimals", "q", "dims", "shifts", "dim0", "dim1",
     "descending", "exponent", "weight", "other", "input"}
)
CONSTANTS = {"pi": repr(math.pi), "e": repr(math.e), "inf": "float('inf')",
             "nan": "float('nan')"}

#: The globals generated code runs with. Torch's C++ code imports modules lazily the first
#: time some functions run (`where`, `pow`, `lerp`, `quantile`), and a C-level import looks
#: `__import__` up in the builtins of the calling Python frame: with empty builtins those
#: calls fail in a fresh process and work once something else imported the module. The
#: translator is the boundary (generated code names only `torch`, `x`, `_g` and `float`, and
#: the name `__import__` is never emitted), so giving `__import__` here opens nothing.
def _import(*args: Any, **kwargs: Any) -> Any:
    # Looked up when called and run in this module's frame, whose builtins are the real
    # ones: an import hook installed later (PySide6's shiboken replaces __import__ and
    # finds its original in the calling frame's builtins) keeps working.
    return builtins.__import__(*args, **kwargs)


_EVAL_GLOBALS = {"__builtins__": {"__import__": _import}}

_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
           ast.Mod: "%", ast.Pow: "**", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^",
           ast.MatMult: "@"}
_UNARY = {ast.USub: "-", ast.UAdd: "+", ast.Invert: "~"}
_COMPARE = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==",
            ast.NotEq: "!="}


@dataclass(frozen=True)
class CompiledExpr:
    """A checked expression: `code` uses only `torch`, `x`, `float`, `_g` (if random) and
    `_t` (the tensors of `tensor_names`)."""

    source: str
    code: str
    uses_random: bool
    field: str = "expr"
    #: the names given to `t(...)`, as written, each once, in order
    tensor_names: tuple[str, ...] = ()
    #: how many tensors the expression names (`x` and each `t(...)`, every time): with k,
    #: nothing it builds has more elements than the largest of them to the power k
    #: (`engine.allocation`)
    x_uses: int = 1

    def evaluate(self, x: torch.Tensor, generator: torch.Generator | None = None,
                 tensors: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Evaluate over `x` and return a tensor (numbers become 0-d tensors).

        `tensors` holds a tensor for each of `tensor_names` (the caller resolved and
        checked them); `t(...)` reads them, moved to `x`'s device.
        """
        given = dict(tensors or {})
        missing = [name for name in self.tensor_names if name not in given]
        if missing:
            raise EditError(f"{self.field}: t({missing[0]!r}) was not given a tensor")

        def accessor(name: str) -> torch.Tensor:
            return given[name].detach().to(x.device)

        namespace = {"torch": torch, "x": x, "_g": generator, "float": float, "_t": accessor}
        try:
            with torch.no_grad():
                value = eval(self.code, _EVAL_GLOBALS, namespace)  # generated, checked
        except ArithmeticError as error:  # 9 ** 9 ** 9 overflows as floats, at once
            raise EditError(f"{self.field}: arithmetic error ({type(error).__name__})") from None
        if isinstance(value, tuple):
            raise EditError(f"{self.field}: the expression gives several tensors (e.g. sort)")
        return torch.as_tensor(value, device=x.device)


def compile_expr(source: str, field: str = "expr") -> CompiledExpr:
    """Check `source` against the whitelist and translate it to torch code.

    Raises
    ------
    EditError : the expression is not allowed; names the offending part
    """
    if not isinstance(source, str):
        raise EditError(f"{field}: expected an expression such as 'x * 0.5'")
    if len(source) > MAX_LENGTH:
        raise EditError(f"{field}: expression longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as error:
        raise EditError(f"{field}: not a valid expression ({error.msg})") from None
    translator = _Translator(field)
    try:
        code = translator.visit(tree.body)
    except RecursionError:
        raise EditError(f"{field}: expression nested too deeply") from None
    return CompiledExpr(source, code, translator.uses_random, field,
                        tuple(translator.tensor_names), translator.x_uses)


class _Translator:
    def __init__(self, field: str) -> None:
        self.field = field
        self.uses_random = False
        self.x_uses = 0
        self._in_power = 0
        self.tensor_names: list[str] = []

    def reject(self, what: str) -> EditError:
        return EditError(f"{self.field}: {what} is not allowed in an expression")

    def visit(self, node: ast.AST) -> str:
        method = getattr(self, f"visit_{type(node).__name__}", None)
        if method is None:
            raise self.reject(_describe(node))
        return method(node)

    def visit_Constant(self, node: ast.Constant) -> str:
        if type(node.value) is bool:
            return repr(node.value)
        if type(node.value) in (int, float):
            # Inside a power, numbers are floats so that `9**9**9` overflows at once
            # (OverflowError) instead of building a huge integer.
            return repr(float(node.value)) if self._in_power else repr(node.value)
        raise self.reject(f"the constant {node.value!r}")

    def visit_Name(self, node: ast.Name) -> str:
        if node.id == "x":
            self.x_uses += 1
            return "x"
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        if node.id in FUNCTIONS or node.id in RANDOM_FUNCTIONS:
            raise self.reject(f"'{node.id}' without a call")
        if node.id == ACCESSOR:
            raise self.reject("'t' without a call (write t(\"name\") to read a tensor)")
        raise self.reject(f"the name '{node.id}' (only x, pi, e, inf, nan)")

    def visit_BinOp(self, node: ast.BinOp) -> str:
        operator = _BINARY.get(type(node.op))
        if operator is None:
            raise self.reject(f"the operator {type(node.op).__name__}")
        if operator == "**":
            self._in_power += 1
            try:
                return f"({self.visit(node.left)} ** {self.visit(node.right)})"
            finally:
                self._in_power -= 1
        return f"({self.visit(node.left)} {operator} {self.visit(node.right)})"

    def visit_UnaryOp(self, node: ast.UnaryOp) -> str:
        operator = _UNARY.get(type(node.op))
        if operator is None:
            raise self.reject(f"the operator {type(node.op).__name__}")
        return f"({operator}{self.visit(node.operand)})"

    def visit_Compare(self, node: ast.Compare) -> str:
        parts = [self.visit(node.left)]
        for op, right in zip(node.ops, node.comparators, strict=True):
            operator = _COMPARE.get(type(op))
            if operator is None:
                raise self.reject(f"the comparison {type(op).__name__}")
            parts += [operator, self.visit(right)]
        if len(node.ops) > 1:
            raise self.reject("a chained comparison (write (a < x) & (x < b))")
        return "(" + " ".join(parts) + ")"

    def visit_Attribute(self, node: ast.Attribute) -> str:
        if node.attr in ATTRIBUTES:
            return f"{self.visit(node.value)}.{node.attr}"
        raise self.reject(f"the attribute '.{node.attr}'")

    def visit_Call(self, node: ast.Call) -> str:
        # The function is checked before its arguments, so the message names it.
        function = node.func
        if isinstance(function, ast.Name) and function.id == ACCESSOR:
            return self._accessor(node)
        if isinstance(function, ast.Name):
            if function.id not in FUNCTIONS and function.id not in RANDOM_FUNCTIONS:
                raise self.reject(f"the function '{function.id}'")
        elif isinstance(function, ast.Attribute):
            if function.attr not in METHODS:
                raise self.reject(f"the method '.{function.attr}()'")
        else:
            raise self.reject("this call")
        arguments = [self.visit(argument) for argument in node.args]
        for keyword in node.keywords:
            if keyword.arg is None or keyword.arg not in KEYWORDS:
                raise self.reject(f"the keyword argument '{keyword.arg}'")
            arguments.append(f"{keyword.arg}={self.visit(keyword.value)}")
        if isinstance(function, ast.Attribute):
            return f"{self.visit(function.value)}.{function.attr}({', '.join(arguments)})"
        if function.id in RANDOM_FUNCTIONS:
            if len(node.args) != 1 or node.keywords:
                raise self.reject(f"'{function.id}' with other than one argument")
            self.uses_random = True
            like = f"torch.as_tensor({arguments[0]})"
            # Drawn on the CPU from the edit's generator, then moved: the same bits on
            # every device, and the same as the exported script.
            kind = RANDOM_FUNCTIONS[function.id]
            return (f"torch.{kind}({like}.shape, generator=_g, dtype={like}.dtype)"
                    f".to({like}.device)")
        return f"{FUNCTIONS[function.id]}({', '.join(arguments)})"

    def _accessor(self, node: ast.Call) -> str:
        """`t("name")`: one literal string, nothing computed; recorded for the caller."""
        if node.keywords or len(node.args) != 1:
            raise self.reject("t() with other than one tensor name (write t(\"name\"))")
        argument = node.args[0]
        if not isinstance(argument, ast.Constant) or type(argument.value) is not str:
            raise self.reject("t() of anything but a literal name (write t(\"name\"))")
        name = argument.value
        if not name or len(name) > MAX_NAME_LENGTH or "\0" in name:
            raise self.reject(f"t() of a name that is empty, longer than {MAX_NAME_LENGTH} "
                              "characters or holds a NUL")
        if name not in self.tensor_names:
            self.tensor_names.append(name)
        self.x_uses += 1
        # repr() of a str is a str literal: the generated code names only _t and it.
        return f"_t({name!r})"


def _describe(node: ast.AST) -> str:
    names = {"Subscript": "indexing", "Lambda": "a lambda", "ListComp": "a comprehension",
             "GeneratorExp": "a generator", "Starred": "unpacking", "JoinedStr": "an f-string",
             "IfExp": "a conditional (use where(cond, a, b))", "BoolOp": "and/or (use & and |)",
             "NamedExpr": "an assignment", "Await": "await", "Yield": "yield",
             "List": "a list", "Tuple": "a tuple", "Dict": "a dict", "Set": "a set"}
    return names.get(type(node).__name__, type(node).__name__)
