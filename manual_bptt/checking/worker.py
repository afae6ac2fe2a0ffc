"""The verifier's side of the worker process that runs the code under test (serve.py).

:class:`Worker` starts the process, loads the target there (``MODULE[:NAME]``,
``FILE.py[:NAME]``, ``NOTEBOOK.ipynb[:NAME]``), and sends it one request at a time,
waiting for each reply at most the time limit. What the code returns comes back as
arrays and builtins (wire.py); every other object stays in the worker and is seen here
as a :class:`Remote`, whose attributes, items and calls are requests again. So the
styles use the target as if it were here, and everything the code under test does
stays there:

- a reply later than the time limit ends the process (SIGKILL: no handler, thread or
  ``except BaseException`` can hold it) and is a finding, "… timed out";
- a process that ends or garbles its reply is a finding, "… ended the worker process";
- output to file descriptors 1 and 2 (print, sys.__stdout__, os.write) goes to a file
  that is only counted;
- patches to numpy, torch or signal handlers change the worker's copies only;
- the worker is ended when the verdict is known, threads and all.

After a time-out or a death the next request starts a new worker and loads the target
again, so that one bad call does not decide the rest.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from manual_bptt.checking import wire
from manual_bptt.checking.guard import CodeFailed
from manual_bptt.checking.spawner import FOLDER, Forked, SpawnerGone, forget, spawner_for
from manual_bptt.errors import UsageError

# python -c puts the current directory first on sys.path: taken off before anything is
# imported, so that a student's random.py or json.py there is not imported in place of
# the standard module (source.load puts it back for a MODULE target, as python -m would)
BOOT = (
    "import sys; sys.path[:] = [p for p in sys.path if p]; "
    "from manual_bptt.checking.serve import main; main(int(sys.argv[1]), int(sys.argv[2]))"
)
LONGEST_WAIT = 3600.0  # seconds per poll(); a longer limit is waited for in pieces
START_TIMEOUT = 60.0  # seconds for a new worker to import numpy and answer
INSIDE = "MANUAL_BPTT_WORKER"  # set to "1" in a worker's environment
# The replies serve.py sends, by kind: the types of the parts after the kind. Each part
# is checked before a finding formats it: a forged one may be any value pickle makes,
# such as an int too long for str() (ValueError past 4,300 digits). "ok" holds a tree
# (wire.decode_tree checks it) and a note (loading), the arguments changed (a call) or None.
_STR = (str,)
REPLIES: dict[str, tuple[tuple[type, ...] | None, ...]] = {
    "ok": (None, (str, list, type(None))),
    "usage": (_STR,),
    "exit": (_STR,),
    "missing": (),
    "raised": (_STR, _STR, (str, type(None)), (bool,)),
}


def _well_formed(reply: Any) -> bool:
    """Whether ``reply`` is of a kind serve.py sends, each part of its type."""
    if not (type(reply) is tuple and reply and type(reply[0]) is str):
        return False
    parts = REPLIES.get(reply[0])
    if parts is None or len(reply) != 1 + len(parts):
        return False
    if reply[0] == "ok" and type(reply[2]) is list and not all(type(c) is str for c in reply[2]):
        return False
    return all(types is None or type(v) in types for v, types in zip(reply[1:], parts, strict=True))


class Remote:
    """An object that lives in the worker: its attributes, items and calls are requests.

    ``info`` holds what the worker said of it: "type" (its type's name), "class",
    "callable", "function" (a Python function with module globals), "module".
    """

    __slots__ = ("_generation", "_id", "_worker", "info")
    # The slots' types (set through object.__setattr__, as __setattr__ is a request).
    _generation: int
    _id: int
    _worker: Worker
    info: dict[str, Any]

    def __init__(self, worker: Worker, ident: int, info: Mapping[str, Any], generation: int):
        object.__setattr__(self, "_worker", worker)
        object.__setattr__(self, "_id", ident)
        object.__setattr__(self, "_generation", generation)
        object.__setattr__(self, "info", dict(info))

    def _ref(self) -> tuple[str, int]:
        return ("r", self._id)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # copy, pickle and numpy probe these: not the target's
        reply = self._worker.request(self, ("getattr", self._id, name), f"reading .{name}")
        if reply is _MISSING:
            raise AttributeError(name)
        return reply

    def __setattr__(self, name: str, value: Any) -> None:
        self._worker.request(self, ("setattr", self._id, name, encode(value)), f"setting .{name}")

    def __getitem__(self, key: Any) -> Any:
        return self._worker.request(self, ("getitem", self._id, encode(key)), f"reading [{key!r}]")

    def __contains__(self, key: Any) -> bool:
        return bool(self._worker.request(self, ("contains", self._id, encode(key)), "testing in"))

    def __repr__(self) -> str:
        return f"<{self.info.get('type', 'object')} in the worker process>"

    def signature_problem(
        self, n_args: int, keywords: tuple[str, ...] = ()
    ) -> tuple[str, str, str] | None:
        """None if it can be called with n_args positional arguments and these keywords;
        else ("not callable", its type's name, "") or ("signature", its signature, why)."""
        answer = self._worker.request(
            self, ("signature", self._id, n_args, list(keywords)), "reading its signature"
        )
        if answer is None:
            return None
        kind, detail, error = answer
        return str(kind), str(detail), str(error)

    def global_names(self) -> dict[str, str] | None:
        """The module globals its code may use, each with its type's name ("" if unset):
        serve.global_names; None if it has none."""
        found = self._worker.request(self, ("globals", self._id), "reading its module globals")
        return None if found is None else dict(found)

    def names(self) -> dict[str, dict[str, Any]]:
        """Its public attributes, each with the worker's facts about it."""
        return dict(self._worker.request(self, ("names", self._id), "listing its names"))


_MISSING = object()


def encode(value: Any, depth: int = 0) -> Any:
    """A value of the verifier (arrays, parameters, builtins, Remotes) for the wire."""
    from manual_bptt.params import CellParams

    kind = type(value)
    if kind in wire.ATOMS:
        return value
    if isinstance(value, Remote):
        return value._ref()
    if kind is complex:
        return ("c", value.real, value.imag)
    if isinstance(value, (np.ndarray, np.generic)):
        return wire.encode_array(np.asarray(value), scalar=isinstance(value, np.generic))
    if isinstance(value, CellParams):
        arrays = {k: wire.encode_array(v) for k, v in value.as_dict().items()}
        return ("p", value.CELL, getattr(value, "reset", None), arrays)
    if depth > wire.MAX_DEPTH:
        raise TypeError("too deeply nested to send to the worker")
    if kind is tuple:
        return ("t", [encode(v, depth + 1) for v in value])
    if kind is list:
        return ("l", [encode(v, depth + 1) for v in value])
    if kind is dict:
        return ("d", [(encode(k, depth + 1), encode(v, depth + 1)) for k, v in value.items()])
    raise TypeError(f"a {kind.__name__} cannot be sent to the worker")


def checked_timeout(timeout: float | None) -> float | None:
    """``timeout`` if it is None (no limit) or a number of seconds > 0 (inf too); else
    UsageError (NaN once made the wait for a reply spin for ever)."""
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
        raise UsageError(
            f"timeout must be a number of seconds > 0, or None for no limit; got {timeout!r}"
        )
    return timeout


def worker_environment() -> dict[str, str]:
    """A worker's environment: this process's, with its sys.path as PYTHONPATH (so the
    worker imports what this process would) and INSIDE set."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env[INSIDE] = "1"
    return env


class Worker:
    """One worker process running the target named by ``spec``.

    Args:
        spec: ``MODULE[:NAME]``, ``FILE.py[:NAME]`` or ``NOTEBOOK.ipynb[:NAME]``.
        timeout: seconds allowed for loading the target and for each request (None:
            no limit).
    Raises (from :meth:`start`):
        UsageError: the target cannot be loaded (no such file or name, cannot be
            parsed, its loading raised, exited, timed out or ended the process).
    """

    def __init__(self, spec: str, timeout: float | None) -> None:
        self.spec = spec
        self.timeout = checked_timeout(timeout)
        self.note = ""
        self.generation = 0
        self.restarts = 0
        self.process: subprocess.Popen[bytes] | Forked | None = None
        self.inbox: Connection | None = None
        self.outbox: Connection | None = None
        self.output = tempfile.TemporaryFile()  # noqa: SIM115 (open as long as the worker)
        self.number = 0
        self.target: Remote | None = None

    # -- life -----------------------------------------------------------------------
    def start(self) -> Remote:
        """Start the process, load the target there, and return it as a Remote."""
        if os.environ.get(INSIDE) == "1":
            # each worker is a session of its own, so a chain of them would outlive the
            # time-outs that end each one: the second link is refused
            raise UsageError(
                "verify was started inside a worker process of verify's: the code under "
                "test, or a module it imports, runs verify when it is loaded (put that "
                'call under `if __name__ == "__main__":`)'
            )
        env = worker_environment()
        self.process, read_here, write_here = self._forked(env) or self._new_process(env)
        self.inbox = Connection(read_here, writable=False)
        self.outbox = Connection(write_here, readable=False)
        self.generation += 1
        started = time.monotonic()
        try:
            reply = self._exchange(("load", self.spec), self._load_limit(), "loading")
        except CodeFailed as err:
            self.stop()
            raise UsageError(self._load_failure(err, time.monotonic() - started)) from None
        if reply[0] == "usage":
            self.stop()
            raise UsageError(str(reply[1]))
        if reply[0] != "ok":
            self.stop()
            raise UsageError(f"loading {self.spec} {self._raised(reply)}")
        self.note = str(reply[2] or "")
        self.target = self._decode(reply[1])
        return self.target

    def _forked(self, env: dict[str, str]) -> tuple[Forked, int, int] | None:
        """The worker forked by this environment's spawner (spawner.py) and this side's
        ends of its pipes (to read, to write), or None if no spawner can be had or it
        fails now (then a new process is started instead)."""
        try:
            os.getcwd()
        except OSError:  # the current folder was deleted: only a new process inherits it
            return None
        spawner = spawner_for(env)
        if spawner is None:
            return None
        try:
            folder = os.open(".", FOLDER)
        except OSError:
            return None
        read_here, write_there = os.pipe()
        read_there, write_here = os.pipe()
        try:
            forked = spawner.fork(read_there, write_there, self.output.fileno(), folder, env)
        except SpawnerGone:
            forget(spawner)
            # it may have forked a child on these pipes before it failed to answer: they
            # are closed here, so that the child reads their end and no request of the
            # new process's
            os.close(read_here)
            os.close(write_here)
            return None
        finally:
            os.close(read_there)
            os.close(write_there)
            os.close(folder)
        return forked, read_here, write_here

    def _new_process(self, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int, int]:
        """A worker started as a new Python process, and this side's ends of its pipes."""
        read_here, write_there = os.pipe()
        read_there, write_here = os.pipe()
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", BOOT, str(read_there), str(write_there)],
                stdin=subprocess.DEVNULL,
                stdout=self.output,
                stderr=self.output,
                pass_fds=(read_there, write_there),
                env=env,
                start_new_session=True,
            )
        except BaseException:
            os.close(read_here)
            os.close(write_here)
            raise
        finally:
            os.close(read_there)
            os.close(write_there)
        return process, read_here, write_here

    def _load_limit(self) -> float | None:
        return None if self.timeout is None else max(self.timeout, START_TIMEOUT)

    def _load_failure(self, err: CodeFailed, seconds: float) -> str:
        if err.key.endswith("timed out"):
            return (
                f"loading {self.spec} did not finish within {seconds:.0f} s: does it "
                "train, read data or loop at import? (FILE.py:NAME takes only definitions)"
            )
        return f"loading {self.spec}: {err.message}"

    def stop(self) -> None:
        """End the process (and anything it started): the verdict does not wait for it."""
        for connection in (self.inbox, self.outbox):
            if connection is not None:
                connection.close()
        self.inbox = self.outbox = None
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.process.kill()
        if self.process is not None:
            self.process.wait()
        self.process = None

    def close(self) -> None:
        self.stop()
        self.output.close()

    def __enter__(self) -> Worker:  # noqa: PYI034 (Self is Python 3.11+)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def printed(self) -> int:
        """How many bytes the code under test wrote to standard output and error."""
        try:
            return os.fstat(self.output.fileno()).st_size
        except (OSError, ValueError):
            return 0

    def _ensure(self) -> None:
        """A live worker with the target loaded (a new one after a death or time-out)."""
        if self.process is None:
            self.restarts += 1
            self.start()

    # -- requests -------------------------------------------------------------------
    def request(self, owner: Remote, request: tuple[Any, ...], doing: str) -> Any:
        """The value a request about ``owner`` returns (attributes, items, signature).
        Raises CodeFailed if the code raised, exited, timed out or ended the worker."""
        what = f"{doing} of {owner.info.get('type', 'object')}"
        self._check(owner, what)
        reply = self._exchange(request, self.timeout, what)
        if reply[0] == "missing":
            return _MISSING
        if reply[0] != "ok":
            raise self._failure(what, reply)
        return self._decode(reply[1])

    def call(
        self,
        what: str,
        fn: Remote,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        timeout: float | None,
        seed: int,
        layout: str = "C",
        module_globals: dict[str, Any] | None = None,
    ) -> tuple[Any, list[str]]:
        """``fn(*args, **kwargs)`` in the worker: (its value, the arguments it changed).

        The changed arguments are named "#0", "#1", … by position, by keyword, "$NAME"
        for ``module_globals`` (set in fn's module before the call, restored after),
        each followed by where inside it changed ("[2]", ".U", or "" for the whole).
        ``seed`` seeds the worker's global random generators first; ``layout`` ("C",
        "F" or "strided") lays out every float array argument so.
        Raises CodeFailed if the code raised, exited, timed out or ended the worker.
        """
        self._check(fn, what)
        request = (
            "call",
            fn._id,
            encode(tuple(args)),
            encode(dict(kwargs)),
            int(seed),
            layout,
            None if module_globals is None else encode(module_globals),
        )
        reply = self._exchange(request, timeout, what)
        if reply[0] == "usage":
            raise UsageError(f"{what}: {reply[1]}")
        if reply[0] != "ok":
            raise self._failure(what, reply)
        changed = reply[2]
        if not isinstance(changed, list) or not all(isinstance(c, str) for c in changed):
            raise CodeFailed(f"{what} ended the worker process", f"{what}: a garbled reply")
        return self._decode(reply[1]), changed

    def module_state(self) -> dict[str, str]:
        """What the globals of the target's module hold in the worker (serve.module_state)."""
        assert self.target is not None
        return dict(self.request(self.target, ("state", self.target._id), "reading its module"))

    def new_problem(self) -> None:
        """Forget the objects the last problem left in the worker (its caches, results)."""
        if self.process is not None:
            try:
                self._exchange(("clear",), self.timeout, "clearing")
            except CodeFailed:
                self.stop()

    def _check(self, owner: Remote, what: str) -> None:
        if owner._id == 0 and owner._generation != self.generation:
            self._ensure()
            object.__setattr__(owner, "_generation", self.generation)
            return
        self._ensure()
        if owner._generation != self.generation:
            raise CodeFailed(
                f"{what} ended the worker process",
                f"{what}: its object was lost when the worker process was restarted",
            )

    def _exchange(self, request: tuple[Any, ...], timeout: float | None, what: str) -> Any:
        """Send a request and wait for its reply; CodeFailed for a time-out or a death."""
        assert self.inbox is not None
        assert self.outbox is not None
        assert self.process is not None
        self.number += 1
        try:
            self.outbox.send_bytes(wire.dumps((self.number, request)))
        except (BrokenPipeError, OSError):
            raise self._died(what) from None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = LONGEST_WAIT if deadline is None else deadline - time.monotonic()
            try:
                ready = left > 0 and self.inbox.poll(min(left, LONGEST_WAIT))
            except (OSError, EOFError):
                raise self._died(what) from None
            if ready:
                break
            if deadline is not None and time.monotonic() >= deadline:
                self.stop()
                raise CodeFailed(
                    f"{what} timed out", f"{what} did not return within {timeout:g} s (--timeout)"
                )
        try:
            message = wire.loads(self.inbox.recv_bytes())
        except (EOFError, OSError):
            raise self._died(what) from None
        except wire.WireError as err:
            self.stop()
            raise CodeFailed(f"{what} ended the worker process", f"{what}: {err}") from None
        garbled = CodeFailed(f"{what} ended the worker process", f"{what}: a garbled reply")
        if not (type(message) is tuple and len(message) == 2):
            self.stop()  # e.g. written on the worker's pipe by the code under test itself
            raise garbled
        number, reply = message
        if number != self.number:
            self.stop()
            raise CodeFailed(
                f"{what} ended the worker process", f"{what}: a reply out of turn (garbled pipe)"
            )
        if not _well_formed(reply):
            self.stop()
            raise garbled
        return reply

    def _died(self, what: str) -> CodeFailed:
        code = None
        if self.process is not None:
            try:
                code = self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                code = None
        self.stop()
        how = "" if code is None else f" (exit code {code})"
        return CodeFailed(
            f"{what} ended the worker process",
            f"{what} ended the worker process{how}: code under test must return, not exit",
        )

    def _raised(self, reply: tuple[Any, ...]) -> str:
        if reply[0] == "exit":
            return f"called sys.exit({reply[1]})"
        if reply[0] == "raised":
            _, name, message, hint, base = reply
            text = f"raised {name}: {message}"
            if base:
                text += " (a BaseException, not an Exception)"
            return text + (f"; {hint}" if hint else "")
        return f"sent a reply of kind {reply[0]!r}"

    def _failure(self, what: str, reply: tuple[Any, ...]) -> CodeFailed:
        if reply[0] == "exit":
            return CodeFailed(
                f"{what} called sys.exit",
                f"{what} called sys.exit({reply[1]}): code under test must return, not exit",
            )
        if reply[0] == "raised":
            return CodeFailed(f"{what} raised {reply[1]}", f"{what} {self._raised(reply)}")
        return CodeFailed(f"{what} ended the worker process", f"{what}: {self._raised(reply)}")

    def _decode(self, node: Any) -> Any:
        generation = self.generation

        def handle(ident: int, info: dict[str, Any]) -> Remote:
            return Remote(self, ident, info, generation)

        try:
            return wire.decode_tree(node, handle)
        except wire.WireError as err:
            self.stop()
            raise CodeFailed("the worker's reply was garbled", str(err)) from None


def run_call(
    what: str,
    fn: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    timeout: float | None,
    seed: int,
    layout: str = "C",
    module_globals: dict[str, Any] | None = None,
) -> tuple[Any, list[str]]:
    """Call the code under test, in the worker when ``fn`` lives there, else here.

    Returns (value, the arguments changed, named as :meth:`Worker.call` names them).
    Here, in this process (a target given as an object that cannot be named for the
    worker), the call runs under guard.py's limits, the arguments are compared with
    deep copies, and the global random generators are seeded and then restored.
    """
    if isinstance(fn, Remote):
        return fn._worker.call(
            what,
            fn,
            args,
            kwargs,
            timeout=timeout,
            seed=seed,
            layout=layout,
            module_globals=module_globals,
        )
    return _call_here(what, fn, args, kwargs, timeout, seed, layout, module_globals)


def _call_here(
    what: str,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    timeout: float | None,
    seed: int,
    layout: str,
    module_globals: dict[str, Any] | None,
) -> tuple[Any, list[str]]:
    import copy
    import random

    from manual_bptt.checking import guard, serve

    if layout != "C":
        from manual_bptt.cases import in_layout

        def lay(v: Any) -> Any:
            if isinstance(v, np.ndarray) and v.dtype.kind == "f":
                return in_layout(v, layout)
            if type(v) in (tuple, list):
                return type(v)(lay(e) for e in v)
            return v

        args = tuple(lay(a) for a in args)
        kwargs = {k: lay(v) for k, v in kwargs.items()}
    namespace: dict[str, Any] | None = None
    saved: dict[str, Any] = {}
    if module_globals is not None:
        namespace = serve.globals_of(fn)
        if namespace is None:
            raise UsageError(f"{what}: {serve.NO_GLOBALS}")
        module_globals = copy.deepcopy(module_globals)
        saved = {k: namespace[k] for k in module_globals if k in namespace}
    before = [serve._snapshot(a) for a in (*args, *kwargs.values())]
    globals_before = {k: serve._snapshot(v) for k, v in (module_globals or {}).items()}
    # the caller's own global generators: seeded for the call, then given back
    states = random.getstate(), np.random.get_state()  # noqa: NPY002
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002
    try:
        if namespace is not None:
            namespace.update(module_globals or {})
        value = guard.call(what, fn, *args, timeout=timeout, **kwargs)
        names = [f"#{i}" for i in range(len(args))] + list(kwargs)
        changed = [
            f"{name}{path}"
            for name, old, now in zip(names, before, (*args, *kwargs.values()), strict=True)
            for path in serve._changes(old, now)
        ]
        if namespace is not None:
            changed += [
                f"${k}{path}"
                for k, old in globals_before.items()
                for path in serve._changes(old, namespace.get(k))
            ]
        return value, changed
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])  # noqa: NPY002
        if namespace is not None:
            for k in module_globals or {}:
                namespace.pop(k, None)
            namespace.update(saved)
