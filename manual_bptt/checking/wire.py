"""What crosses the pipe between ``bptt verify`` and its worker process, and nothing else.

The worker runs the code under test (worker.py, serve.py); the verifier compares what it
returns. A value crosses as a tree of builtins that pickle writes without naming any
class or function, so that the verifier can read a reply with an unpickler that refuses
every global (:func:`loads`): no reply, however it was made, can run code in the
verifier. The tree's nodes:

- ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``: themselves;
- ``("a", dtype, shape, data, scalar)``: a numeric array (``dtype`` its ``dtype.str``,
  ``data`` its bytes in C order; ``scalar`` True for a NumPy scalar such as np.float64);
- ``("c", real, imag)``: a complex number;
- ``("t", [...])``, ``("l", [...])``, ``("d", [(key, value), ...])``: a tuple, a list,
  a dict (exactly those types; a namedtuple or an OrderedDict stays in the worker);
- ``("h", id, info)``: an object that stays in the worker, named by a handle, with a
  few facts about it (``info``: its type's name, whether it is a class, callable, a
  Python function, a module);
- ``("r", id)``: the verifier naming such an object in a request;
- ``("p", cell, reset, {name: array})``: the verifier's parameters (Params,
  LSTMParams, GRUParams), rebuilt as such in the worker.
"""

from __future__ import annotations

import io
import math
import pickle
import reprlib
from typing import Any

import numpy as np

ATOMS = (type(None), bool, int, float, str, bytes)
MAX_DEPTH = 20  # deeper nesting than any interface here has stays in the worker


class WireError(ValueError):
    """A message that is not a tree of the nodes above (a garbled or forged reply)."""


class _NoGlobals(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise WireError(f"a reply named {module}.{name}; replies hold builtins only")


def dumps(message: Any) -> bytes:
    """``message`` (already encoded: builtins only) as bytes."""
    return pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)


def loads(data: bytes) -> Any:
    """The message in ``data``; WireError if it is not builtins only."""
    try:
        return _NoGlobals(io.BytesIO(data)).load()
    except WireError:
        raise
    except Exception as err:  # noqa: BLE001 (any garbled byte string: one error)
        raise WireError(f"an unreadable reply ({type(err).__name__}: {err})") from None


def encode_array(value: np.ndarray, scalar: bool = False) -> tuple[Any, ...]:
    """A numeric array (or NumPy scalar) as an ``"a"`` node."""
    array = np.ascontiguousarray(value)
    return ("a", array.dtype.str, tuple(array.shape), array.tobytes(), scalar)


def _shown(value: Any) -> str:
    """A forged value's repr for a message: reprlib's, bounded in depth and length
    (repr of a list nested thousands deep raises RecursionError), or its type's name for
    an int too long for str() (ValueError past 4,300 digits)."""
    try:
        return reprlib.repr(value)
    except ValueError:
        return f"<a {type(value).__name__} too long to show>"


def decode_array(node: tuple[Any, ...]) -> Any:
    """The array of an ``"a"`` node, a fresh writeable copy (a NumPy scalar if it was one)."""
    if len(node) != 5:
        raise WireError("an array node has five parts")
    _, dtype_str, shape, data, scalar = node
    unknown = f"an array of unknown dtype {_shown(dtype_str)}"
    if type(dtype_str) is not str:  # encode_array sends dtype.str, never a list or a dict
        raise WireError(unknown)
    try:
        dtype = np.dtype(dtype_str)
    except Exception as err:  # not only ValueError: NumPy parses "," with ast (SyntaxError)
        raise WireError(unknown) from err
    if dtype.kind not in "biufc" or dtype.fields is not None:
        raise WireError(f"an array of dtype {dtype} crossed the pipe; only numbers may")
    if not (isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape)):
        raise WireError(f"an array node with shape {_shown(shape)}")
    # math.prod: exact, where np.prod wraps around in int64 (a forged shape of 2**32 by
    # 2**32 was counted 0 and passed with no bytes), and 50 ns against 3 µs.
    if not isinstance(data, bytes) or len(data) != dtype.itemsize * math.prod(shape):
        raise WireError(f"an array node whose bytes do not fill its shape {_shown(shape)}")
    try:
        array = np.frombuffer(data, dtype=dtype).reshape(shape).copy()
    except ValueError as err:  # e.g. more dimensions than NumPy's 64
        raise WireError(f"an array node NumPy cannot make: {err}") from None
    return array[()] if scalar and array.ndim == 0 else array


def _facts(info: Any) -> bool:
    """Whether ``info`` is a handle's facts as serve.py gives them: names to None, a bool,
    a string or a length (a forged int too long for str() would raise where it is shown)."""
    return type(info) is dict and all(
        type(k) is str
        and (v is None or type(v) in (bool, str) or (type(v) is int and 0 <= v < 2**63))
        for k, v in info.items()
    )


def decode_tree(node: Any, handle: Any, depth: int = 0) -> Any:
    """A reply's tree as Python values; ``handle(id, info)`` makes what stays behind."""
    if depth > MAX_DEPTH:
        raise WireError("a reply nested deeper than any interface")
    if type(node) in ATOMS:
        return node
    if type(node) is not tuple or not node or node[0] not in ("a", "c", "t", "l", "d", "h"):
        raise WireError(f"a reply node of type {type(node).__name__}")
    tag = node[0]
    if tag == "a":
        return decode_array(node)
    if tag == "c":
        if len(node) != 3 or type(node[1]) is not float or type(node[2]) is not float:
            raise WireError("a complex node holds two floats")
        return complex(node[1], node[2])
    if tag == "h":
        if not (len(node) == 3 and type(node[1]) is int and _facts(node[2])):
            raise WireError("a handle node holds an id and its facts")
        return handle(node[1], node[2])
    if len(node) != 2 or type(node[1]) is not list:
        raise WireError(f"a {tag!r} node holds one list")
    items = node[1]
    if tag == "t":
        return tuple(decode_tree(v, handle, depth + 1) for v in items)
    if tag == "l":
        return [decode_tree(v, handle, depth + 1) for v in items]
    out = {}
    for pair in items:
        if type(pair) is not tuple or len(pair) != 2:
            raise WireError("a dict node holds (key, value) pairs")
        key = decode_tree(pair[0], handle, depth + 1)
        try:
            out[key] = decode_tree(pair[1], handle, depth + 1)
        except TypeError as err:  # an unhashable key
            raise WireError(f"a dict node with key {_shown(key)}") from err
    return out
