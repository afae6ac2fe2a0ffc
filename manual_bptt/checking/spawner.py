"""Worker processes forked from a process that has already imported what they import.

A worker started as a new Python process spends about 0.2 s of CPU importing numpy and
serve.py's modules before it loads the target, and verify starts one per run (another
after each time-out or death): in a test suite or ``bptt gallery``, which verify many
times, that is most of a short run. The spawner is one process per verifier, started
as a worker would be (same interpreter, environment, ``sys.path``), which imports those
modules once and then forks a worker for each :meth:`Spawner.fork`. Each child is a
process of its own, as before: its own pid, session and memory, begun from the
spawner's state, which no code under test has touched, since no request is answered in
the spawner. What worker.py relies on is kept:

- the child's standard input is /dev/null and its file descriptors 1 and 2 are the
  worker's output file; it is a session of its own, so ``os.killpg`` ends it and
  whatever it started;
- its environment, ``sys.path``, resource limits, umask and niceness are those the
  verifier would give a new process: a spawner is started again when they change
  (:func:`spawner_for`; but for ``VOLATILE`` variables, which the child is given as
  they are at its fork), and the child changes to the verifier's current directory;
- its exit code is kept by the spawner (the child's parent) and read through
  :class:`Forked`, which answers what worker.py asks of a ``subprocess.Popen``.

Differences from a new process, none of which a call can see through serve.py:
the children share the spawner's hash seed (``PYTHONHASHSEED``), and the modules the
spawner imported are already in ``sys.modules`` before the target loads (serve.main
imports the same ones first in a new process too). ``random`` is re-seeded in each
child by Python's own at-fork hook, and serve.py seeds both global generators before
every call anyway.

When a spawner cannot be had (no ``fork`` or no ``SOCK_SEQPACKET``, as on Windows),
cannot be started, or stops answering (the code under test may kill or stop its parent),
:func:`spawner_for` returns None or :meth:`Spawner.fork` raises :class:`SpawnerGone`,
and worker.py starts a new process instead.
"""

from __future__ import annotations

import atexit
import os
import pickle
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

# Started as "python -c BOOT FD"; the same sys.path clean-up as a worker's boot.
BOOT = (
    "import sys; sys.path[:] = [p for p in sys.path if p]; "
    "from manual_bptt.checking.spawner import main; main(int(sys.argv[1]))"
)
REPLY_TIMEOUT = 60.0  # seconds for the spawner to import and to answer a request
# How the verifier opens its current folder for a fork (O_PATH: no read permission needed).
FOLDER = getattr(os, "O_PATH", os.O_RDONLY) | getattr(os, "O_DIRECTORY", 0)
STOP_CHECK = 0.05  # seconds between looks at whether a spawner that has not answered is stopped
MESSAGE = 1 << 20  # the largest message either side reads (a pickled tuple)
# Variables that change while a process runs and that nothing the spawner imports reads:
# left out of the spawner's key, and set in each child as they are at its fork. pytest
# sets PYTEST_CURRENT_TEST for every phase of every test.
VOLATILE = frozenset({"PYTEST_CURRENT_TEST"})


class SpawnerGone(Exception):
    """The spawner did not answer, or answered nonsense: start a new process instead."""


class Spawner:
    """The verifier's side of one spawner process (started and ready on return).

    Args:
        env: the environment for the spawner, and so for every worker it forks.
    Raises:
        SpawnerGone: the process could not be started or did not say it was ready.
    """

    def __init__(self, env: dict[str, str]) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", BOOT, str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                env=env,
                start_new_session=True,  # a terminal's Ctrl-C or a killpg does not reach it
            )
        except OSError as err:
            ours.close()
            raise SpawnerGone(f"could not start: {err}") from None
        finally:
            theirs.close()
        self.sock = ours
        self.sock.settimeout(REPLY_TIMEOUT)
        self.lasting = _lasting(env)
        self.owner = os.getpid()  # a fork of the verifier must not use or end it
        self.lock = threading.Lock()  # one request and its reply at a time
        try:
            if self._receive() != ("ready",):
                raise SpawnerGone("it did not say it was ready")
        except SpawnerGone:
            self.close()
            raise

    def fork(
        self, read_fd: int, write_fd: int, output_fd: int, folder_fd: int, env: dict[str, str]
    ) -> Forked:
        """A worker: a child running serve.main(read_fd, write_fd) in the folder open as
        ``folder_fd`` (:data:`FOLDER`) with ``env`` as its environment, and the output
        file on its descriptors 1 and 2 (all four descriptors are copied to the spawner
        and closed there; the caller closes its own). The folder goes as a descriptor,
        as a new process inherits it: its path may be more than chdir takes, or lead
        elsewhere by now. ``env`` is the spawner's but for ``VOLATILE`` variables, which
        alone are sent: a whole environment may be more than one message can hold."""
        if _lasting(env) != self.lasting:
            raise SpawnerGone("asked for another environment than its own")
        volatile = {k: v for k, v in env.items() if k in VOLATILE}
        with self.lock:
            try:
                socket.send_fds(
                    self.sock,
                    [pickle.dumps(("fork", volatile))],
                    [read_fd, write_fd, output_fd, folder_fd],
                )
            except OSError as err:
                raise SpawnerGone(f"could not send: {err}") from None
            reply = self._receive()
        if not (type(reply) is tuple and len(reply) == 2 and reply[0] == "pid"):
            raise SpawnerGone(f"a reply of {reply!r} to a fork")
        return Forked(self, int(reply[1]))

    def status(self, pid: int) -> tuple[str, int | None]:
        """("running", None), ("exited", its exit code as Popen.returncode gives it:
        negative for a signal), or ("unknown", None) for a pid it does not know."""
        with self.lock:
            try:
                self.sock.send(pickle.dumps(("status", pid)))
            except OSError as err:
                raise SpawnerGone(f"could not send: {err}") from None
            reply = self._receive()
        if not (type(reply) is tuple and len(reply) == 2 and reply[0] in STATUSES):
            raise SpawnerGone(f"a reply of {reply!r} to a status")
        return reply

    def alive(self) -> bool:
        return (
            self.owner == os.getpid()
            and self.sock.fileno() >= 0
            and self.process.poll() is None
            and not self._stopped()
        )

    def _receive(self) -> Any:
        """The reply to the request just sent. SpawnerGone if there is none within
        REPLY_TIMEOUT, the spawner ended or was stopped, or the reply is garbled; the
        socket is then closed, so that a late reply is never read as another's."""
        try:
            return self._reply()
        except SpawnerGone:
            self.sock.close()
            raise

    def _reply(self) -> Any:
        deadline = time.monotonic() + REPLY_TIMEOUT
        try:
            # a stopped spawner (the code under test may SIGSTOP its parent) would let
            # each request wait out REPLY_TIMEOUT: it is looked for while waiting
            while not select.select([self.sock], [], [], STOP_CHECK)[0]:
                if self._stopped():
                    raise SpawnerGone("it was stopped")
                if time.monotonic() >= deadline:
                    raise SpawnerGone(f"no reply within {REPLY_TIMEOUT:g} s")
            data = self.sock.recv(MESSAGE)
        except (OSError, ValueError) as err:  # ValueError: closed by another thread
            raise SpawnerGone(f"no reply: {err}") from None
        if not data:
            raise SpawnerGone("it ended")
        try:
            return pickle.loads(data)  # the spawner is ours and runs no user code
        except Exception as err:  # noqa: BLE001
            raise SpawnerGone(f"a garbled reply: {err}") from None

    def _stopped(self) -> bool:
        """Whether the spawner is stopped now (SIGSTOP, SIGTSTP), asked without reaping."""
        try:
            info = os.waitid(os.P_PID, self.process.pid, os.WSTOPPED | os.WNOHANG | os.WNOWAIT)
        except (AttributeError, OSError):  # no waitid here, or it is not our child
            return False
        return info is not None and info.si_code == getattr(os, "CLD_STOPPED", None)

    def close(self) -> None:
        """End the spawner (its children live on until their own pipes close); in a
        fork of the verifier, only let go of this process's copy of the socket."""
        self.sock.close()
        if self.owner != os.getpid():
            return
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


STATUSES = ("running", "exited", "unknown")


class Forked:
    """A worker forked by a spawner, seen as worker.py sees a ``subprocess.Popen``:
    ``pid``, ``poll()``, ``wait(timeout)`` and ``kill()``. The spawner is the child's
    parent, so the exit code is asked of it.

    The code under test may kill the spawner. Its child is then reaped by another
    process, and its pid may be given to a new one, so from then on the child is known
    by a pid file descriptor (Linux 5.3+), opened while the spawner still held it: it
    is signalled and watched through that, never through a pid that may be another
    process's. Its exit code was kept by nobody: ``returncode`` stays None, and
    worker.py reports the death without one.
    """

    def __init__(self, spawner: Spawner, pid: int) -> None:
        self.spawner = spawner
        self.pid = pid
        self.returncode: int | None = None
        self.ended = False
        self.pidfd: int | None = None
        if hasattr(os, "pidfd_open"):
            try:
                self.pidfd = os.pidfd_open(pid)
            except OSError:
                self.pidfd = None

    def poll(self) -> int | None:
        if not self.ended:
            try:
                state, code = self.spawner.status(self.pid)
            except SpawnerGone:
                state, code = ("running" if self._exists() else "unknown"), None
            if state != "running":
                self.ended, self.returncode = True, code
                self._close()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.0005
        while self.poll() is None and not self.ended:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0.0)
            time.sleep(pause)
            pause = min(2 * pause, 0.05)
        return self.returncode

    def kill(self) -> None:
        try:
            if self.pidfd is not None:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            elif not self.ended:
                os.kill(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def _exists(self) -> bool:
        """Whether the child has not ended, asked without its parent."""
        if self.pidfd is not None:
            return not select.select([self.pidfd], [], [], 0)[0]  # readable once it ends
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def _close(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None

    def __del__(self) -> None:
        self._close()


_current: tuple[tuple[Any, ...], Spawner] | None = None
# Threads that verify at once would each start a spawner and leave all but one running.
_choosing = threading.Lock()


def _new_lock() -> None:
    global _choosing
    _choosing = threading.Lock()  # a fork of the verifier: a thread there may have held it


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock)


def spawner_for(env: dict[str, str]) -> Spawner | None:
    """The spawner for workers with this environment (started now if there is none, or
    if the environment, interpreter or a relative ``sys.path`` entry's meaning changed),
    or None if spawners cannot be had here. MANUAL_BPTT_SPAWNER=0 turns them off."""
    if os.environ.get("MANUAL_BPTT_SPAWNER") == "0" or not _supported():
        return None
    with _choosing:
        return _choose(env)


def _choose(env: dict[str, str]) -> Spawner | None:
    global _current
    # a relative sys.path entry means another folder after a chdir
    relative = any(p and not os.path.isabs(p) for p in sys.path)
    key = (
        sys.executable,
        tuple(sorted(_lasting(env).items())),
        os.getcwd() if relative else None,
        _inherited(),
    )
    if _current is not None:
        if _current[0] == key and _current[1].alive():
            return _current[1]
        _current[1].close()
        _current = None
    try:
        spawner = Spawner(env)
    except SpawnerGone:
        return None
    _current = (key, spawner)
    return spawner


def forget(spawner: Spawner) -> None:
    """Stop using this spawner (it did not answer): the next worker starts a new one."""
    global _current
    with _choosing:
        if _current is not None and _current[1] is spawner:
            _current = None
    spawner.close()


def _inherited() -> tuple[Any, ...]:
    """What else a new process would inherit from the verifier and a fork takes from the
    spawner, which the verifier may change (a script may limit its workers' memory):
    its resource limits, umask and niceness, where they can be read."""
    try:
        import resource
    except ImportError:  # not on this system
        limits: tuple[Any, ...] = ()
    else:
        names = sorted(n for n in dir(resource) if n.startswith("RLIMIT_"))
        limits = tuple(resource.getrlimit(getattr(resource, n)) for n in names)
    umask = None  # read without setting it (os.umask sets it, for every thread)
    try:
        with open("/proc/self/status") as status:
            umask = next((line for line in status if line.startswith("Umask:")), None)
    except OSError:
        pass
    nice = os.getpriority(os.PRIO_PROCESS, 0) if hasattr(os, "getpriority") else None
    return limits, umask, nice


def _lasting(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in VOLATILE}


def _supported() -> bool:
    return hasattr(os, "fork") and hasattr(socket, "SOCK_SEQPACKET") and hasattr(socket, "send_fds")


@atexit.register
def _close_at_exit() -> None:
    if _current is not None:
        _current[1].close()


# -- the spawner process ------------------------------------------------------------------


def main(fd: int) -> None:
    """Import what a worker imports, say so, then fork a worker for each request until
    the verifier's end of the socket closes."""
    environment = _lasting(dict(os.environ))  # as started, before any import changes it
    from manual_bptt.checking import serve

    serve.preload()
    sock = socket.socket(fileno=fd)
    sock.send(pickle.dumps(("ready",)))
    children = Children()
    while True:
        try:
            data, fds, _flags, _address = socket.recv_fds(sock, MESSAGE, 4)
        except OSError:
            break
        if not data:
            break
        request = pickle.loads(data)  # only the verifier holds the other end
        children.reap()
        if request[0] == "fork" and len(fds) == 4:
            env = {**environment, **request[1]}
            pid = _fork_worker(sock, fds, env)
            children.forked(pid)
            reply: tuple[Any, ...] = ("pid", pid)
        elif request[0] == "status":
            reply = children.status(int(request[1]))
        else:
            for extra in fds:
                os.close(extra)
            reply = ("error", None)
        sock.send(pickle.dumps(reply))
    os._exit(0)


class Children:
    """The spawner's children: the pids of those running, and the exit codes (as
    Popen.returncode gives them) of those it has reaped, for :meth:`Spawner.status`."""

    def __init__(self) -> None:
        self.running: set[int] = set()
        self.ended: dict[int, int] = {}

    def forked(self, pid: int) -> None:
        self.running.add(pid)
        self.ended.pop(pid, None)  # a reaped child's pid, given again (pid_max may be 32768)

    def reap(self) -> None:
        """Wait for those that have ended, without blocking."""
        for pid in list(self.running):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                self.running.discard(pid)
                continue
            if done:
                self.running.discard(pid)
                self.ended[pid] = os.waitstatus_to_exitcode(status)

    def status(self, pid: int) -> tuple[str, int | None]:
        if pid in self.ended:
            return ("exited", self.ended[pid])
        if pid in self.running:
            return ("running", None)
        return ("unknown", None)


def _fork_worker(sock: socket.socket, fds: list[int], env: dict[str, str]) -> int:
    read_fd, write_fd, output_fd, folder_fd = fds
    pid = os.fork()
    if pid == 0:  # the worker
        sock.close()
        os.setsid()
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        os.close(output_fd)
        os.fchdir(folder_fd)
        os.close(folder_fd)
        os.environ.clear()
        os.environ.update(env)
        sys.argv = ["-c", str(read_fd), str(write_fd)]
        from manual_bptt.checking import serve

        # serve.main ends the process itself. An exception out of it (the code under
        # test may patch what its loop uses, or interrupt it) is not caught here: it
        # leaves main() and the -c program, and the interpreter ends this child as it
        # ends a new worker (SystemExit's code; KeyboardInterrupt's SIGINT; else a
        # traceback to the output file and exit code 1; threads joined, atexit run).
        serve.main(read_fd, write_fd)
        os._exit(0)  # not reached: nothing may return into the spawner's loop
    for mine in fds:
        os.close(mine)
    return pid
