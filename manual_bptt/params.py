"""The cells' parameters: what every cell's share, and the vanilla cell's own.

The vanilla cell's θ = (U, W, V, b, c) (:class:`Params`) and what every cell's
parameters share (:class:`CellParams`; LSTMParams and GRUParams live beside their
cells). :func:`manual_bptt.cells.init_params` makes them for any cell: it sits above
the cells, so that this module imports none of them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import DTypeLike, NDArray

from manual_bptt.arraychecks import first_non_finite

if TYPE_CHECKING:
    from typing_extensions import Self

PARAM_NAMES = ("U", "W", "V", "b", "c")
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# complex128 parameters are accepted for the complex-step derivative only: forward and
# loss run on them; bptt refuses them.
COMPLEX_DTYPE = np.dtype(np.complex128)
INIT_SCHEMES = ("uniform", "normal", "identity")


def _is_torch(value: object) -> bool:
    # Told by its module's name: this package never imports torch.
    return type(value).__module__.split(".")[0] == "torch"


def plain_array(name: str, value: object) -> np.ndarray:
    """The one rule for every array argument: a plain ndarray with the same numbers, or
    a TypeError naming the argument.

    Converted exactly: Python lists and tuples (np.asarray), np.matrix and other ndarray
    subclasses (their plain ndarray view: the same numbers without matrix semantics, so
    ``*`` stays elementwise), and non-native byte order (a native copy). Negative
    strides, Fortran order and read-only arrays are used as they are (nothing here
    writes to an argument). Refused: masked arrays (the numbers under the mask have no
    meaning here), torch tensors (pass ``t.detach().cpu().numpy()``), arrays of Python
    objects, and anything np.asarray cannot read.
    """
    if _is_torch(value):
        raise TypeError(
            f"{name} must be a NumPy array, not a {type(value).__module__}.{type(value).__name__}; "
            f"pass {name}.detach().cpu().numpy()"
        )
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(
            f"{name} must be a plain NumPy array, not a masked array: the entries under its "
            f"mask would be used as they are; pass {name}.filled(...) (or the mask option "
            "for masked losses)"
        )
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError, RuntimeError) as err:
        raise TypeError(f"{name} must be array-like; could not convert it: {err}") from None
    if arr.dtype == object:
        raise TypeError(f"{name} must be a numeric array; got an array of Python objects")
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))  # the same numbers in native order
    return arr


def check_arrays(params: object, names: tuple[str, ...]) -> np.dtype:
    """Every named field of the frozen dataclass ``params`` made a plain ndarray by
    :func:`plain_array` (written back in place of the given one), all of one floating
    dtype (or complex128); returns that dtype. Messages name the class ("Params.U").
    """
    owner = type(params).__name__
    for name in names:
        value = getattr(params, name)
        if not isinstance(value, np.ndarray) and not _is_torch(value):
            raise TypeError(f"{owner}.{name} must be a numpy array; got {type(value).__name__}")
        # A frozen dataclass: the plain array replaces the given one.
        object.__setattr__(params, name, plain_array(f"{owner}.{name}", value))
    arrays = {name: getattr(params, name) for name in names}
    first = next(iter(arrays))
    dtype: np.dtype = np.dtype(arrays[first].dtype)
    for name, value in arrays.items():
        assert isinstance(value, np.ndarray)
        if value.dtype not in (*FLOAT_DTYPES, COMPLEX_DTYPE):
            raise TypeError(f"{owner}.{name} must be float32 or float64; got dtype {value.dtype}")
        if value.dtype != dtype:
            raise TypeError(
                f"all parameters must share one dtype: {first} is {dtype} but "
                f"{name} is {value.dtype}; convert with .astype(np.{dtype})"
            )
    return dtype


def check_finite_arrays(owner: str, arrays: Mapping[str, NDArray[Any]]) -> None:
    """ValueError naming the first parameter with a NaN or an infinity, and where."""
    for name, value in arrays.items():
        bad = first_non_finite(value)
        if bad is not None:
            raise ValueError(f"{owner}.{name} must be finite; entry {bad} is {value[bad]}")


class CellParams:
    """What every cell's parameters share: U, W, b, V, c and the sizes read from them.

    A subclass is a frozen dataclass whose fields NAMES are the arrays (and possibly
    options such as GRUParams.reset, which are not arrays).
    """

    NAMES: ClassVar[tuple[str, ...]]
    CELL: ClassVar[str]  # "rnn", "lstm" or "gru": what init_params(cell=...) calls it
    # The parts of the state, h first ("h"; the LSTM's "h", "s"): a cell with a second
    # part takes c0 for it, and returns its gradient as "c0".
    STATE: ClassVar[tuple[str, ...]] = ("h",)
    GATE_COUNT: ClassVar[int] = 1  # G: U is (G·H, D), W (G·H, H), b (G·H,)
    U: NDArray[Any]
    W: NDArray[Any]
    b: NDArray[Any]
    V: NDArray[Any]
    c: NDArray[Any]

    @property
    def D(self) -> int:
        """Input size: columns of U."""
        return int(self.U.shape[1])

    @property
    def H(self) -> int:
        """Hidden size: columns of W."""
        return int(self.W.shape[1])

    @property
    def K(self) -> int:
        """Number of classes: rows of V."""
        return int(self.V.shape[0])

    @property
    def dtype(self) -> np.dtype:
        """The one dtype every parameter, state and gradient has."""
        return self.U.dtype

    @classmethod
    def grad_names(cls) -> tuple[str, ...]:
        """The gradients bptt returns for this cell, in order: the parameters', then
        h0 (and c0 for a second state part), then x (for float inputs)."""
        return (*cls.NAMES, "h0", *(("c0",) if len(cls.STATE) > 1 else ()), "x")

    def as_dict(self) -> dict[str, NDArray[Any]]:
        """name → array for the names in NAMES, the arrays themselves (not copies)."""
        return {name: getattr(self, name) for name in self.NAMES}

    def astype(self, dtype: DTypeLike) -> Self:
        """A copy of the parameters in another floating dtype (options kept)."""
        return self.with_arrays(**{k: v.astype(dtype) for k, v in self.as_dict().items()})

    def with_arrays(self, **arrays: NDArray[Any]) -> Self:
        """The same cell (options kept) with the named arrays replaced, checked anew."""
        return dataclasses.replace(self, **arrays)  # type: ignore[type-var]


@dataclass(frozen=True)
class Params(CellParams):
    """U (H, D), W (H, H), V (K, H), b (H,), c (K,): one floating dtype for all five.

    float32 or float64; complex128 is accepted too, for the complex-step check only
    (:func:`manual_bptt.forward` and :func:`manual_bptt.loss` run on it, ``bptt`` not).

    a_t = b + W h_{t−1} + U x_t (1) and o_t = c + V h_t (3) use them. The shapes are
    checked on construction, and so is that every entry is finite. The arrays are
    stored as given (not copied) and never written to by this package, except that
    np.matrix and big-endian arrays are stored as their plain native equivalent and
    masked arrays and torch tensors are refused (:func:`plain_array`).
    """

    NAMES: ClassVar[tuple[str, ...]] = ("U", "W", "V", "b", "c")
    CELL: ClassVar[str] = "rnn"
    U: NDArray[np.floating]
    W: NDArray[np.floating]
    V: NDArray[np.floating]
    b: NDArray[np.floating]
    c: NDArray[np.floating]

    def __post_init__(self) -> None:
        check_arrays(self, self.NAMES)
        if self.U.ndim != 2:
            raise ValueError(f"U must have shape (H, D); got shape {self.U.shape}")
        H, D = self.U.shape
        if self.V.ndim != 2:
            raise ValueError(f"V must have shape (K, H); got shape {self.V.shape}")
        K = self.V.shape[0]
        expected = {"W": (H, H), "V": (K, H), "b": (H,), "c": (K,)}
        letters = {"W": "(H, H)", "V": "(K, H)", "b": "(H,)", "c": "(K,)"}
        for name, shape in expected.items():
            got = getattr(self, name).shape
            if got != shape:
                raise ValueError(
                    f"{name} must have shape {letters[name]} = {shape} to match U's "
                    f"H = {H} and V's K = {K}; got {got}"
                )
        if H == 0 or D == 0 or K == 0:
            raise ValueError(f"D, H and K must be at least 1; got D={D}, H={H}, K={K}")
        check_finite_arrays("Params", self.as_dict())

    @property
    def H(self) -> int:
        """Hidden size: rows of U."""
        return int(self.U.shape[0])


def check_gated_shapes(owner: str, arrays: Mapping[str, NDArray[Any]], gates: int) -> None:
    """Shapes of a gated cell's parameters: U (G·H, D), W (G·H, H), V (K, H), c (K,) and
    every other array (the biases) (G·H,), where G = ``gates`` and H is read from W."""
    W, V = arrays["W"], arrays["V"]
    if W.ndim != 2:
        raise ValueError(f"W must have shape ({gates}H, H); got shape {W.shape}")
    if V.ndim != 2:
        raise ValueError(f"V must have shape (K, H); got shape {V.shape}")
    H, K = W.shape[1], V.shape[0]
    U = arrays["U"]
    if U.ndim != 2:
        raise ValueError(f"U must have shape ({gates}H, D); got shape {U.shape}")
    D = U.shape[1]
    GH = gates * H
    expected = {
        "U": (f"({gates}H, D)", (GH, D)),
        "W": (f"({gates}H, H)", (GH, H)),
        "V": ("(K, H)", (K, H)),
        "c": ("(K,)", (K,)),
    }
    for name in arrays:
        letters, shape = expected.get(name, (f"({gates}H,)", (GH,)))
        if arrays[name].shape != shape:
            raise ValueError(
                f"{name} must have shape {letters} = {shape} to match W's H = {H} "
                f"(W is ({gates}H, H) = {W.shape}) and V's K = {K}; got {arrays[name].shape}"
            )
    if H == 0 or D == 0 or K == 0:
        raise ValueError(f"D, H and K must be at least 1; got D={D}, H={H}, K={K}")
    check_finite_arrays(owner, arrays)
