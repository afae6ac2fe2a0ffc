"""The worker process of ``bptt verify``: the only place the code under test runs.

Started by worker.py as ``python -c "…serve.main(r, w)"`` with the verifier's pipe on
file descriptors r and w, standard input from /dev/null and standard output and error
(file descriptors 1 and 2) going to a file the verifier only counts. It answers one
request at a time (wire.py says what may cross), so whatever the code under test does
here (prints, exits, leaves threads running, patches numpy, catches BaseException,
installs signal handlers, loops for ever) cannot reach the verifier's verdict: the
verifier waits for each reply with its own time limit, and ends this process when it
has the verdict or when a reply is late.

Before a call, the global random generators (``random``, ``numpy.random``) are seeded
with the seed the request carries, so that a call is a function of its problem;
afterwards every argument is compared with a copy taken before the call and the
reply names what changed (``x``, ``cache[2]``, ``params.U``).

What this module uses after the user's code has been loaded it binds at import, so that
``np.array_equal = …`` in that code does not change how changes are seen.
"""

from __future__ import annotations

import copy
import inspect
import os
import random
import sys
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from manual_bptt.checking import wire

_array_equal = np.array_equal
_asarray = np.asarray
_ndarray = np.ndarray
_generic = np.generic
_integer = np.integer
_masked = np.ma.MaskedArray
_seed_numpy = np.random.seed
_seed_random = random.seed
_deepcopy = copy.deepcopy
_signature = inspect.signature
_isclass = inspect.isclass
_isfunction = inspect.isfunction
_ModuleType = types.ModuleType
_exit = os._exit

ROOT = 0  # the handle of the loaded target
SNAPSHOT_DEPTH = 3  # how deep an object's attributes are compared for changes


class _Worker:
    def __init__(self) -> None:
        self.objects: dict[int, Any] = {}
        self.next_id = 1
        self.skipped_note: Callable[[str], str | None] = lambda name: None

    # -- values out -------------------------------------------------------------
    def handle(self, value: Any, known: int | None = None) -> tuple[Any, ...]:
        if known is None:
            known, self.next_id = self.next_id, self.next_id + 1
        self.objects[known] = value
        return ("h", known, _facts(value))

    def encode(self, value: Any, depth: int = 0) -> Any:
        kind = type(value)
        if kind in wire.ATOMS:
            return value
        if kind is complex:
            return ("c", value.real, value.imag)
        if isinstance(value, _generic) and value.dtype.kind in "biufc":
            return wire.encode_array(_asarray(value), scalar=True)
        if (
            isinstance(value, _ndarray)
            and not isinstance(value, _masked)
            and value.dtype.kind in "biufc"
            and value.dtype.fields is None
        ):
            return wire.encode_array(_asarray(value))
        tensor = _from_torch(value)
        if tensor is not None:
            return wire.encode_array(tensor)
        if depth < wire.MAX_DEPTH:
            if kind is tuple:
                return ("t", [self.encode(v, depth + 1) for v in value])
            if kind is list:
                return ("l", [self.encode(v, depth + 1) for v in value])
            # a dict keyed by anything but builtins (np.str_) stays here, where its
            # keys still equal the names it is asked for
            if kind is dict and all(type(k) in wire.ATOMS for k in value):
                return (
                    "d",
                    [
                        (self.encode(k, depth + 1), self.encode(v, depth + 1))
                        for k, v in value.items()
                    ],
                )
        return self.handle(value)

    # -- values in --------------------------------------------------------------
    def decode(self, node: Any, layout: str = "C") -> Any:
        if type(node) in wire.ATOMS:
            return node
        tag = node[0]
        if tag == "a":
            array = wire.decode_array(node)
            if layout != "C" and isinstance(array, _ndarray) and array.dtype.kind == "f":
                from manual_bptt.cases import in_layout

                array = in_layout(array, layout)
            return array
        if tag == "c":
            return complex(node[1], node[2])
        if tag == "r":
            return self.objects[node[1]]
        if tag == "p":
            return _params(node[1], node[2], {k: wire.decode_array(v) for k, v in node[3].items()})
        if tag == "t":
            return tuple(self.decode(v, layout) for v in node[1])
        if tag == "l":
            return [self.decode(v, layout) for v in node[1]]
        if tag == "d":
            return {self.decode(k): self.decode(v, layout) for k, v in node[1]}
        raise wire.WireError(f"a request node {tag!r}")

    # -- requests -----------------------------------------------------------------
    def answer(self, request: tuple[Any, ...]) -> Any:
        op, *rest = request
        try:
            return getattr(self, f"op_{op}")(*rest)
        except SystemExit as stop:
            code = stop.code
            return ("exit", _text(lambda: repr(code)))
        except _Missing:
            return ("missing",)
        except BaseException as err:  # noqa: BLE001 (the code under test may raise anything)
            return self.raised(err)

    def raised(self, err: BaseException) -> tuple[Any, ...]:
        name = _text(lambda: type(err).__name__)
        message = _text(lambda: str(err))
        hint = None
        if isinstance(err, NameError) and getattr(err, "name", None):
            hint = _text(lambda: self.skipped_note(str(err.name)) or "") or None
        base = not isinstance(err, Exception)
        return ("raised", name, message, hint, base)

    def op_load(self, spec: str) -> Any:
        from manual_bptt.checking import source

        try:
            obj, note = source.load_with_note(spec)
        except source.UsageError as err:
            return ("usage", str(err))
        explain = getattr(source, "explain_missing_name", None)
        if explain is not None:
            self.skipped_note = lambda name: explain(obj, name)
        self.objects.clear()
        return ("ok", self.handle(obj, ROOT), note)

    def op_state(self, ref: int) -> Any:
        """What the globals of the object's module hold (:func:`module_state`)."""
        return ("ok", ("d", list(module_state(self.objects[ref]).items())), None)

    def op_clear(self) -> Any:
        root = self.objects.get(ROOT)
        self.objects = {ROOT: root}
        return ("ok", None, None)

    def op_getattr(self, ref: int, name: str) -> Any:
        try:
            value = getattr(self.objects[ref], name)
        except AttributeError:
            raise _Missing from None
        return ("ok", self.encode(value), None)

    def op_setattr(self, ref: int, name: str, node: Any) -> Any:
        setattr(self.objects[ref], name, self.decode(node))
        return ("ok", None, None)

    def op_getitem(self, ref: int, key: Any) -> Any:
        return ("ok", self.encode(self.objects[ref][self.decode(key)]), None)

    def op_contains(self, ref: int, key: Any) -> Any:
        return ("ok", bool(self.decode(key) in self.objects[ref]), None)

    def op_names(self, ref: int) -> Any:
        obj = self.objects[ref]
        names = [n for n in dir(obj) if not n.startswith("_")]
        kinds = {n: _facts(_attribute(obj, n)) for n in names}
        return (
            "ok",
            ("d", [(n, ("d", [(k, v) for k, v in f.items()])) for n, f in kinds.items()]),
            None,
        )

    def op_globals(self, ref: int) -> Any:
        """The module globals the object's code may use (:func:`global_names`)."""
        found = global_names(self.objects[ref])
        return ("ok", None if found is None else ("d", list(found.items())), None)

    def op_signature(self, ref: int, n_args: int, keywords: list[str]) -> Any:
        """None if the object can be called with n_args positional arguments and these
        keywords; else why not (a sentence)."""
        obj = self.objects[ref]
        if not callable(obj):
            return ("ok", ("t", ["not callable", _text(lambda: type(obj).__name__), ""]), None)
        try:
            signature = _signature(obj)
        except (TypeError, ValueError):
            return ("ok", None, None)  # a builtin without a signature: the first call tells
        try:
            signature.bind(*([None] * n_args), **dict.fromkeys(keywords))
        except TypeError as err:
            return ("ok", ("t", ["signature", _text(lambda: str(signature)), str(err)]), None)
        return ("ok", None, None)

    def op_call(
        self,
        ref: int,
        args_node: Any,
        kwargs_node: Any,
        seed: int,
        layout: str,
        module_globals: Any,
    ) -> Any:
        fn = self.objects[ref]
        args = list(self.decode(args_node, layout))
        kwargs = self.decode(kwargs_node, layout)
        namespace: dict[str, Any] | None = None
        saved: dict[str, Any] = {}
        if module_globals is not None:
            namespace = globals_of(fn)
            if namespace is None:
                return ("usage", NO_GLOBALS)
            new = self.decode(module_globals)
            saved = {k: namespace[k] for k in new if k in namespace}
        before = [_snapshot(a) for a in args] + [_snapshot(v) for v in kwargs.values()]
        if namespace is not None:
            globals_before = {k: _snapshot(v) for k, v in new.items()}
            namespace.update(new)
        _seed_random(seed)
        _seed_numpy(seed % 2**32)
        try:
            value = fn(*args, **kwargs)
            changed = [
                f"{name}{path}"
                for name, old, now in zip(
                    [f"#{i}" for i in range(len(args))] + list(kwargs),
                    before,
                    [*args, *kwargs.values()],
                    strict=True,
                )
                for path in _changes(old, now)
            ]
            if namespace is not None:
                changed += [
                    f"${k}{path}"
                    for k, old in globals_before.items()
                    for path in _changes(old, namespace.get(k))
                ]
            return ("ok", self.encode(value), changed)
        finally:
            if namespace is not None:
                for k in new:
                    namespace.pop(k, None)
                namespace.update(saved)


class _Missing(Exception):
    pass


def _text(make: Callable[[], str]) -> str:
    """A string from code that may itself raise (a user's __str__)."""
    try:
        return str(make())
    except BaseException:  # noqa: BLE001
        return "<unprintable>"


def _facts(value: Any) -> dict[str, Any]:
    return {
        "type": _text(lambda: type(value).__name__),
        "class": bool(_isclass(value)),
        "callable": bool(callable(value)),
        "function": isinstance(_attribute(value, "__globals__"), dict),
        "module": isinstance(value, _ModuleType),
        # a tuple or list subclass (a namedtuple) stays here; its length lets it be unpacked
        "length": _length(value),
    }


def _length(value: Any) -> int | None:
    try:
        return len(value) if isinstance(value, (tuple, list)) else None
    except BaseException:  # noqa: BLE001 (a subclass's own __len__)
        return None


def _attribute(value: Any, name: str) -> Any:
    """``getattr(value, name, None)``, also None when the object's own __getattr__
    raises something else (``return self.d[name]`` raises KeyError)."""
    try:
        return getattr(value, name, None)
    except BaseException:  # noqa: BLE001 (the code under test's own attribute code)
        return None


def module_state(obj: Any) -> dict[str, str]:
    """What each global of ``obj``'s module holds, as far as it can differ between the
    module as a program changed it and the same module imported afresh: a builtin by its
    repr, an array by its bytes, a function or class by its module and name, anything
    else by its type (a dict's keys too: no __repr__ of the code's runs here). The names
    are the module's own (not pytest's @py_builtins)."""
    import hashlib

    def seen(value: Any, depth: int = 0) -> str:
        if type(value) in wire.ATOMS:
            return repr(value)
        if isinstance(value, _ndarray) and value.dtype.kind != "O":
            digest = hashlib.sha1(value.tobytes()).hexdigest()
            return f"array {value.dtype} {value.shape} {digest}"
        if isinstance(value, _ModuleType):
            return f"module {value.__name__}"
        if type(value) in (tuple, list, dict) and depth < 2:
            items = value.items() if isinstance(value, dict) else enumerate(value)
            inner = sorted(f"{seen(k, depth + 1)}: {seen(v, depth + 1)}" for k, v in items)
            return f"{type(value).__name__} {inner}"
        if type(value) in (set, frozenset) and depth < 2:  # in no order, like the set
            return f"{type(value).__name__} {sorted(seen(v, depth + 1) for v in value)}"
        if _isclass(value) or _isfunction(value):
            return f"{_text(lambda: value.__module__)}.{_text(lambda: value.__qualname__)}"
        return f"a {_text(lambda: type(value).__qualname__)}"

    def described(value: Any) -> str:
        return _text(lambda: seen(value))

    home = _home(obj)
    if home is None:
        return {}
    return {
        name: described(value)
        for name, value in list(home.items())
        if isinstance(name, str) and name.isidentifier() and not name.startswith("__")
    }


NO_GLOBALS = "it is not a Python function or a class with methods, so it has no module globals"


def globals_of(obj: Any) -> dict[str, Any] | None:
    """The module globals a call of ``obj`` reads: a function's (or a bound method's)
    ``__globals__``, a class's methods' (its own, or a base class's of the same module);
    None for anything else (a builtin, an instance)."""
    found = _attribute(obj, "__globals__")
    if isinstance(found, dict):
        return found
    if _isclass(obj):
        home = _attribute(obj, "__module__")
        for cls in _attribute(obj, "__mro__") or (obj,):
            if _attribute(cls, "__module__") != home:
                continue  # a base class of a library: its module's globals are not the file's
            for member in vars(cls).values():
                found = _attribute(_attribute(member, "__func__") or member, "__globals__")
                if isinstance(found, dict):
                    return found
    return None


def global_names(obj: Any) -> dict[str, str] | None:
    """Every module global ``obj``'s module may give its code, by name, with its type's
    name ("" for one it lacks): the names the module holds, the names a statement of
    its file would have set but was skipped (source.py's record: ``vocab_size =
    len(chars)``), and the names its functions and methods read as globals ("int" for
    any integer but a bool, :func:`_kind`). None when
    ``obj`` has no module globals (:func:`globals_of`)."""
    import dis

    namespace = globals_of(obj)
    if namespace is None:
        return None
    names = {n: _kind(v) for n, v in list(namespace.items())}
    record = namespace.get("__bptt_skipped__")
    skipped = getattr(record, "names", None)
    read: set[str] = set(skipped) if isinstance(skipped, dict) else set()
    codes, seen = [], set()
    for value in list(namespace.values()):
        members = list(vars(value).values()) if _isclass(value) else [value]
        for member in members:
            function = _attribute(member, "__func__") or _attribute(member, "fget") or member
            code = _attribute(function, "__code__")
            if _attribute(function, "__globals__") is namespace and code is not None:
                codes.append(code)
    while codes:
        code = codes.pop()
        if id(code) in seen:
            continue
        seen.add(id(code))
        codes.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
        for instruction in dis.get_instructions(code):
            if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME", "STORE_GLOBAL"):
                read.add(str(instruction.argval))
    names.update({n: "" for n in read if n not in names})
    return {n: t for n, t in names.items() if isinstance(n, str) and not n.startswith("__")}


def _kind(value: Any) -> str:
    """ "int" for any integer but a bool (``np.int64(100)`` too), else its type's name."""
    if isinstance(value, (int, _integer)) and not isinstance(value, bool):
        return "int"
    return _text(lambda: type(value).__name__)


def _home(obj: Any) -> dict[str, Any] | None:
    """The globals of ``obj``'s module (a module's own, a function's, a class's methods')."""
    if isinstance(obj, _ModuleType):
        return vars(obj)
    found = _attribute(obj, "__globals__")
    if isinstance(found, dict):
        return found
    for member in (vars(obj) if _isclass(obj) else {}).values():
        found = _attribute(member, "__globals__")
        if isinstance(found, dict):
            return found
    module = sys.modules.get(_text(lambda: obj.__module__))
    return vars(module) if module is not None else None


def _from_torch(value: Any) -> np.ndarray | None:
    """A torch tensor's numbers (detached, on the CPU), or None for anything else."""
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(value, torch.Tensor):
        return None
    array = _asarray(value.detach().cpu().resolve_conj().numpy())
    return array if array.dtype.kind in "biufc" else None


def _params(cell: str, reset: str | None, arrays: dict[str, np.ndarray]) -> Any:
    from manual_bptt.cells import CELLS

    registered = CELLS[cell]
    options = {"reset": reset or "after"} if "reset" in registered.options else {}
    return registered.params(**arrays, **options)


def _snapshot(value: Any, depth: int = 0) -> Any:
    """A copy of everything in ``value`` that a call could change, for :func:`_changes`."""
    if isinstance(value, _ndarray):
        return ("array", value.copy())
    if type(value) in wire.ATOMS or depth > SNAPSHOT_DEPTH:
        return ("atom", _atom(value))
    if isinstance(value, (list, tuple)):
        return ("seq", [_snapshot(v, depth + 1) for v in value])
    if isinstance(value, dict):
        return ("map", {k: _snapshot(v, depth + 1) for k, v in value.items()})
    fields = getattr(value, "__dict__", None)
    if isinstance(fields, dict) and not isinstance(value, (_ModuleType, type)):
        return ("obj", {k: _snapshot(v, depth + 1) for k, v in fields.items()})
    return ("atom", _atom(value))


def _atom(value: Any) -> tuple[str, Any]:
    """A builtin value by its repr (so that NaN equals NaN), anything else by identity."""
    return ("value", repr(value)) if type(value) in wire.ATOMS else ("id", id(value))


def _changes(old: Any, now: Any, depth: int = 0) -> list[str]:
    """Where ``now`` differs from the snapshot ``old``: "" for the whole, "[2]", ".U"."""
    kind, kept = old
    if kind == "array":
        same = (
            isinstance(now, _ndarray)
            and now.shape == kept.shape
            and now.dtype == kept.dtype
            and bool(_array_equal(now, kept, equal_nan=kept.dtype.kind in "fc"))
        )
        return [] if same else [""]
    if kind == "atom":
        return [] if _atom(now) == kept else [""]
    if kind == "seq":
        if not isinstance(now, (list, tuple)) or len(now) != len(kept):
            return [""]
        return [
            f"[{i}]{p}"
            for i, (o, n) in enumerate(zip(kept, now, strict=True))
            for p in _changes(o, n, depth + 1)
        ]
    if kind == "map":
        if not isinstance(now, dict) or now.keys() != kept.keys():
            return [""]
        return [f"[{k!r}]{p}" for k, o in kept.items() for p in _changes(o, now[k], depth + 1)]
    fields = getattr(now, "__dict__", None)
    if not isinstance(fields, dict) or fields.keys() != kept.keys():
        return [""]
    return [f".{k}{p}" for k, o in kept.items() for p in _changes(o, fields[k], depth + 1)]


def preload() -> None:
    """Import everything the worker imports later, before the target's folder is on
    sys.path (a spawner, spawner.py, imports these once for all the workers it forks)."""
    from multiprocessing import connection  # noqa: F401

    from manual_bptt import cells, gru, lstm, params  # noqa: F401
    from manual_bptt.cases import in_layout  # noqa: F401
    from manual_bptt.checking import source  # noqa: F401


def main(read_fd: int, write_fd: int) -> None:
    """Answer requests on the pipe until it closes; then end at once."""
    from multiprocessing.connection import Connection

    preload()
    inbox, outbox = Connection(read_fd, writable=False), Connection(write_fd, readable=False)
    send = outbox.send_bytes
    worker = _Worker()
    while True:
        try:
            number, request = wire.loads(inbox.recv_bytes())
        except (EOFError, OSError):
            break
        reply = worker.answer(request)
        try:
            data = wire.dumps((number, reply))
        except BaseException as err:  # noqa: BLE001 (e.g. a str subclass that will not pickle)
            data = wire.dumps(
                (number, ("raised", type(err).__name__, "unsendable reply", None, False))
            )
        send(data)
    _exit(0)
