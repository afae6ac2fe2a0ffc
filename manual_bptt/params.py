"""The network's parameters θ = (U, W, V, b, c) and how to initialise them."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import DTypeLike, NDArray

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


@dataclass(frozen=True)
class Params:
    """U (H, D), W (H, H), V (K, H), b (H,), c (K,): one floating dtype for all five.

    float32 or float64; complex128 is accepted too, for the complex-step check only
    (:func:`manual_bptt.forward` and :func:`manual_bptt.loss` run on it, ``bptt`` not).

    a_t = b + W h_{t−1} + U x_t (1) and o_t = c + V h_t (3) use them. The shapes are
    checked on construction, and so is that every entry is finite. The arrays are
    stored as given (not copied) and never written to by this package, except that
    np.matrix and big-endian arrays are stored as their plain native equivalent and
    masked arrays and torch tensors are refused (:func:`plain_array`).
    """

    U: NDArray[np.floating]
    W: NDArray[np.floating]
    V: NDArray[np.floating]
    b: NDArray[np.floating]
    c: NDArray[np.floating]

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, np.ndarray) and not _is_torch(value):
                raise TypeError(
                    f"Params.{f.name} must be a numpy array; got {type(value).__name__}"
                )
            # A frozen dataclass: the plain array replaces the given one in place of it.
            object.__setattr__(self, f.name, plain_array(f"Params.{f.name}", value))
        dtype = self.U.dtype
        for f in fields(self):
            value = getattr(self, f.name)
            if value.dtype not in (*FLOAT_DTYPES, COMPLEX_DTYPE):
                raise TypeError(
                    f"Params.{f.name} must be float32 or float64; got dtype {value.dtype}"
                )
            if value.dtype != dtype:
                raise TypeError(
                    f"all parameters must share one dtype: U is {dtype} but "
                    f"{f.name} is {value.dtype}; convert with .astype(np.{dtype})"
                )
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
        for f in fields(self):
            value = getattr(self, f.name)
            if not np.all(np.isfinite(value)):
                bad = tuple(int(i) for i in np.argwhere(~np.isfinite(value))[0])
                raise ValueError(f"Params.{f.name} must be finite; entry {bad} is {value[bad]}")

    @property
    def D(self) -> int:
        """Input size: columns of U."""
        return int(self.U.shape[1])

    @property
    def H(self) -> int:
        """Hidden size: rows of U."""
        return int(self.U.shape[0])

    @property
    def K(self) -> int:
        """Number of classes: rows of V."""
        return int(self.V.shape[0])

    @property
    def dtype(self) -> np.dtype:
        """The one dtype every parameter, state and gradient has."""
        return self.U.dtype

    def as_dict(self) -> dict[str, NDArray[np.floating]]:
        """{"U": U, "W": W, "V": V, "b": b, "c": c}, the arrays themselves (not copies)."""
        return {name: getattr(self, name) for name in PARAM_NAMES}

    def astype(self, dtype: DTypeLike) -> Params:
        """A copy of the parameters in another floating dtype."""
        return Params(**{k: v.astype(dtype) for k, v in self.as_dict().items()})


def init_params(
    D: int,
    H: int,
    K: int,
    *,
    seed: int | np.random.Generator = 0,
    dtype: DTypeLike = np.float64,
    scheme: str = "uniform",
    scale: float = 1.0,
) -> Params:
    """Random parameters for input size D, hidden size H and K classes.

    Schemes (each weight matrix M with n_in inputs; biases b, c are zero):
      - "uniform" (default): M ~ U(−s/√n_in, s/√n_in), the tutorial's and
        torch.nn.RNN's initialisation, s = ``scale``.
      - "normal": M ~ N(0, (s/√n_in)²).
      - "identity": as "uniform" for U and V, but W = s·I, the IRNN initialisation
        for relu networks (Le, Jaitly & Hinton 2015).
    n_in is D for U and H for W and V. ``scale`` > 1 gives saturating (tanh, sigmoid)
    or exploding (relu, identity) networks.

    Returns Params with U (H, D), W (H, H), V (K, H), b (H,), c (K,) of ``dtype``.
    """
    for name, value in (("D", D), ("H", H), ("K", K)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be an integer ≥ 1; got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer | np.random.Generator):
        raise TypeError(
            f"seed must be an integer ≥ 0 or a numpy.random.Generator; got "
            f"{type(seed).__name__} {seed!r}"
        )
    if not isinstance(seed, np.random.Generator) and seed < 0:
        raise ValueError(f"seed must be an integer ≥ 0 or a numpy.random.Generator; got {seed}")
    if isinstance(scale, bool) or not isinstance(scale, int | float | np.integer | np.floating):
        raise TypeError(f"scale must be a number > 0; got {type(scale).__name__} {scale!r}")
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a finite number > 0; got {scale!r}")
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"scheme must be one of {INIT_SCHEMES}; got {scheme!r}")
    dt = np.dtype(dtype)
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64; got {dt}")
    rng = np.random.default_rng(seed)

    def draw(rows: int, cols: int) -> NDArray[np.float64]:
        bound = scale / np.sqrt(cols)
        if scheme == "normal":
            return rng.normal(0.0, bound, size=(rows, cols))
        return rng.uniform(-bound, bound, size=(rows, cols))

    too_large = ValueError(
        f"scale must be small enough for {dt} weights; got {scale!r}, whose weights overflow"
    )
    try:
        U = draw(H, D)
        W = scale * np.eye(H) if scheme == "identity" else draw(H, H)
        V = draw(K, H)
    except OverflowError:  # numpy's uniform refuses a range wider than float64's
        raise too_large from None
    with np.errstate(over="ignore"):
        if not all(np.all(np.isfinite(M.astype(dt))) for M in (U, W, V)):
            raise too_large
    return Params(
        U=U.astype(dt), W=W.astype(dt), V=V.astype(dt), b=np.zeros(H, dt), c=np.zeros(K, dt)
    )
