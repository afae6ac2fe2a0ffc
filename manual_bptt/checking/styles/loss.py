"""--style loss: any loss function that returns its own gradients, checked against itself.

min-char-rnn's convention, generalised. Given ``--loss L --args A --params P``:

    L(*args) -> (loss, g_1, …, g_k, *anything)   args in the order of --args

where g_i is the gradient of the loss with respect to the i-th parameter of --params.
The parameters are the file's module globals, set before each call and restored after
it; with ``--object "EXPR"`` (a call of a class of the file, e.g. "RNN(V, H, 0.1)",
whose arguments are sizes of the shapes language or numbers) they are instead
attributes of the object EXPR builds, set before each call, and L is its method.

The expected gradients are the derivative of the returned loss itself, computed from
calls of L on perturbed parameters (numeric_reference.py). The --args stay as drawn
(they are the data), the --params are drawn again for "new weights". Gradients are
reported under the names in --params ("dWxh", key "Wxh").

A size passed as a plain int is an --args entry ``NAME:=SIZE`` (``vocab_size:=V``); a
size the file keeps in a module global is ``--globals "vocab_size=V"``, set for every
call (the constructor of --object's class too); ``--loss OTHER.py:NAME`` reads L from
another file (without --object).
"""

from __future__ import annotations

import ast
from typing import Any

import numpy as np

from manual_bptt.checking.guard import CodeFailed
from manual_bptt.checking.shapes import (
    Drawn,
    Entry,
    ShapesError,
    parse_shapes,
    parse_size,
    require_array_letters,
)
from manual_bptt.checking.styles.base import (
    Observed,
    Target,
    UsageError,
    facts,
    member,
    require_callable,
    type_name,
)
from manual_bptt.checking.styles.layer import (
    GenericStyle,
    fresh,
    other_file,
    phi_value,
    result_array,
)


def parse_object(text: str) -> tuple[str, list[Any]]:
    """(class name, its arguments) from ``NAME(ARG, …)``; each ARG a size expression of
    the shapes language (kept as its text) or a number; UsageError for anything else."""
    refusal = UsageError(
        f"--object {text!r} is not a call of a class of the file with sizes or numbers; "
        'write e.g. --object "RNN(V, H, 0.1)"'
    )
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise refusal from None
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name) or node.keywords:
        raise refusal
    args: list[Any] = []
    for arg in node.args:
        if isinstance(arg, ast.Constant) and type(arg.value) in (int, float):
            args.append(arg.value)
            continue
        try:
            args.append(parse_size(ast.unparse(arg), "--object"))
        except ShapesError:
            raise refusal from None
    return node.func.id, args


class LossStyle(GenericStyle):
    name = "loss"
    summary = "--loss L --args A --params P [--object EXPR]: L's gradients against its own loss"
    reference = "the derivative of its own loss"
    option_names = ("loss", "args", "params", "object", "globals")
    required = ("loss", "args", "params")
    sizes_option = "--args"
    arrays_from = "--args or --params"
    n_args = 0
    object: tuple[str, list[Any]] = ("", [])

    def parse(self, options: dict[str, Any]) -> tuple[Entry, ...]:
        args = parse_shapes(str(options["args"]), "--args")
        params = parse_shapes(str(options["params"]), "--params")
        floats = [p.name for p in params if p.kind != "float"]
        if floats:
            raise ShapesError(
                f"--params entry {floats[0]!r}: a parameter is a float array (NAME:DIMS); "
                'write e.g. --params "Wxh:H,V Whh:H,H Why:V,H bh:H,1 by:V,1"'
            )
        both = [a.name for a in args if a.name in {p.name for p in params}]
        if both:
            raise ShapesError(f"{both[0]} is in both --args and --params; give it once")
        self.n_args = len(args)
        if options.get("globals"):
            clash = [p.name for p in params if any(p.name == g for g in _names(options["globals"]))]
            if clash:
                raise ShapesError(f"{clash[0]} is in both --globals and --params; give it once")
        if options.get("object"):
            if other_file(str(options["loss"])):
                raise ShapesError(
                    f"--loss {options['loss']} names a function of another file; with "
                    "--object, --loss is a method of the object's class (--loss NAME)"
                )
            self.object = parse_object(str(options["object"]))
            shown = f"--object {options['object']!r}"
            sizes = tuple((shown, a) for a in self.object[1] if hasattr(a, "letters"))
            require_array_letters(sizes, (*args, *params), self.arrays_from)
        return (*args, *params)

    @property
    def shapes(self) -> str:
        return " ".join(f"{self.options['args']} {self.options['params']}".split())

    @property
    def keep(self) -> int:
        return self.n_args

    def floats(self) -> list[Entry]:
        return list(self.entries[self.n_args :])

    def function(self) -> str:
        return self.short("loss")

    def bind(self, obj: Target, where: str) -> Target:
        self.require_options()
        loss = self.function()
        if self.options.get("object"):
            cls, args = self.object
            found = member(obj, cls, where)
            require_callable(found, cls, tuple(args), str(self.options["object"]))
            self.check_globals([(found, where)])
            return obj
        fn, file = self.function_of("loss", obj, where)
        names = ", ".join(e.name for e in self.entries[: self.n_args])
        require_callable(fn, loss, (None,) * self.n_args, f"{loss}({names})")
        if not facts(fn)["function"]:
            raise UsageError(
                f"{loss} is not a Python function, so it has no module globals to read "
                "--params from (give --object for a method)"
            )
        self.check_globals([(fn, file)])
        return obj

    def observe(self, target: Target, case: Any, seen: Observed) -> Observed:
        loss = self.function()
        arg_names = tuple(e.name for e in self.entries[: self.n_args])
        self.new_problem()
        with seen.attempt():
            call = self._caller(target, case, seen, arg_names)
            params = {e.name: np.array(case.values[e.name]) for e in self.floats()}
            returned = call(params)
            k = len(params)
            if not isinstance(returned, (tuple, list)) or len(returned) < 1 + k:
                count = (
                    f"{len(returned)} values"
                    if isinstance(returned, (tuple, list))
                    else type_name(returned)
                )
                message = (
                    f"{loss} returned {count}; expected at least {1 + k}: (loss, "
                    + ", ".join(f"d{n}" for n in params)
                    + ", ...)"
                )
                seen.interface.append(message)
                raise CodeFailed(f"{loss} returned the wrong number of values", message)
            value = result_array(f"{loss}'s loss", returned[0])
            if value.size != 1:
                raise CodeFailed(
                    f"{loss}'s loss is not a number",
                    f"{loss}'s loss has shape {value.shape}; expected one number",
                )
            got = dict(zip(params, returned[1 : 1 + k], strict=True))

            def phi(values: dict[str, np.ndarray]) -> float | complex:
                moved = any(np.iscomplexobj(v) for v in values.values())
                r = call(values)
                first = r[0] if isinstance(r, (tuple, list)) and r else r
                return phi_value(result_array(f"{loss}'s loss", first).reshape(()), 1.0, moved)

            self.judge(seen, got, case, phi)
        return self.hint_globals(seen)

    def _caller(
        self, target: Target, case: Drawn, seen: Observed, arg_names: tuple[str, ...]
    ) -> Any:
        """A function of the parameters' values that calls L once with the drawn args
        (and --globals at the problem's sizes)."""
        loss = self.function()

        def args() -> list[Any]:
            return [fresh(case.values[name]) for name in arg_names]

        if not self.options.get("object"):
            fn = self.fetch("loss", seen, target)
            return lambda values: seen.call(
                loss,
                fn,
                *args(),
                names=arg_names,
                module_globals=self.global_values(case, **values),
            )
        known = self.global_values(case)
        cls_name, raw = self.object
        built = [a.value(case.sizes) if hasattr(a, "value") else a for a in raw]
        what = f"{cls_name}(…)"  # one name whatever the sizes, so that a failure is one key
        instance = seen.call(
            f"{cls_name}({', '.join(map(str, built))})",
            seen.get(cls_name, target, cls_name),
            *built,
            module_globals=known,
        )
        method = seen.get(loss, instance, loss)
        if method is None:
            raise CodeFailed(f"{what} has no {loss}", f"{what} has no method {loss}")

        def call(values: dict[str, np.ndarray]) -> Any:
            for name, value in values.items():
                seen.set(what, instance, name, value)
            return seen.call(
                f"{what}.{loss}", method, *args(), names=arg_names, module_globals=known
            )

        return call


def _names(text: str) -> list[str]:
    """The names of a --globals text (NAME=SIZE entries), however malformed the rest."""
    return [part.partition("=")[0] for part in str(text).split()]


STYLE = LossStyle
