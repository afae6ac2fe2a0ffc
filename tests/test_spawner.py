"""Workers forked by the spawner (manual_bptt/checking/spawner.py) are what new worker
processes were: fresh each time, a session of their own, in the verifier's current
folder, environment and sys.path, with their exit code and output kept; and when the
spawner is gone or turned off, a new process is started instead. Each test runs on both
paths where both exist."""

from __future__ import annotations

import os
import signal
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from manual_bptt.checking import spawner
from manual_bptt.checking.guard import CodeFailed
from manual_bptt.checking.spawner import Forked
from manual_bptt.checking.verify import verify
from manual_bptt.checking.worker import Remote, Worker, worker_environment

PROBE = '''
import os
import signal
import subprocess
import sys

CALLS = []


def calls():
    """How many times this process has called it: 1 in a fresh process."""
    CALLS.append(1)
    return len(CALLS)


def where():
    return os.getpid(), os.getsid(0), os.getcwd(), os.environ.get("SPAWNER_PROBE", "")


def variable(name):
    return os.environ.get(name, "")


def importable(name):
    try:
        __import__(name)
    except ImportError:
        return False
    return True


def child_runs():
    """A subprocess of its own exits 0 and is waited for (SIGCHLD is not ignored)."""
    return subprocess.run([sys.executable, "-c", "pass"]).returncode, int(
        signal.getsignal(signal.SIGCHLD) == signal.SIG_DFL
    )


def prints():
    print("to standard output")
    os.write(2, b"to descriptor 2")
    return 0


def exits():
    os._exit(3)


def kills_its_parent():
    os.kill(os.getppid(), signal.SIGKILL)
    return 0


def stops_its_parent():
    os.kill(os.getppid(), signal.SIGSTOP)
    return 0


def inherited():
    """What a process inherits besides its environment: (RLIMIT_NOFILE, umask, nice)."""
    import resource

    mask = os.umask(0)
    os.umask(mask)
    return resource.getrlimit(resource.RLIMIT_NOFILE), mask, os.getpriority(os.PRIO_PROCESS, 0)


def raises_outside_the_call(expression):
    """Makes the worker's own loop raise ``expression`` once this call has returned."""
    from manual_bptt.checking import wire

    def refuse(*args, **kwargs):
        raise eval(expression)

    wire.dumps = refuse
    return 0
'''


@pytest.fixture(params=["spawner", "new process"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "new process":
        monkeypatch.setenv("MANUAL_BPTT_SPAWNER", "0")
    return str(request.param)


@pytest.fixture
def probe(tmp_path: Path) -> Path:
    file = tmp_path / "probe.py"
    file.write_text(textwrap.dedent(PROBE))
    return file


def call(spec: str, timeout: float = 30) -> tuple[Any, Worker]:
    """The value of calling the target ``spec`` with no arguments in a new worker."""
    worker = Worker(spec, timeout)
    target = worker.start()
    assert isinstance(target, Remote)
    value, _changed = worker.call("calling", target, (), {}, timeout=timeout, seed=0)
    return value, worker


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.close()


def test_the_path_is_the_one_asked_for(path: str, probe: Path, workers: list[Worker]) -> None:
    _, worker = call(f"{probe}:calls")
    workers.append(worker)
    assert isinstance(worker.process, Forked) == (path == "spawner")


def test_each_worker_is_a_fresh_process_and_a_session_of_its_own(
    path: str, probe: Path, workers: list[Worker]
) -> None:
    pids = set()
    for _ in range(3):
        count, worker = call(f"{probe}:calls")
        workers.append(worker)
        assert count == 1  # the module state of the worker before is not there
        (pid, session, _, _), _ = call(f"{probe}:where")
        assert session == pid  # os.killpg(pid) reaches it and what it starts
        pids.add(pid)
    assert len(pids) == 3


def test_the_folder_environment_and_path_are_the_verifiers_at_the_start(
    path: str, probe: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: list[Worker]
) -> None:
    def seen() -> tuple[str, str]:
        (_, _, cwd, variable), worker = call(f"{probe}:where")
        workers.append(worker)
        return cwd, variable

    assert seen() == (os.getcwd(), "")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # each change alone, as a spawner may outlive another
    assert seen() == (str(elsewhere), "")
    monkeypatch.setenv("SPAWNER_PROBE", "set after the first worker")
    assert seen() == (str(elsewhere), "set after the first worker")
    for phase in ("call", "teardown", ""):  # pytest's own, left out of the spawner's key
        if phase:
            monkeypatch.setenv("PYTEST_CURRENT_TEST", f"test_spawner.py::probe ({phase})")
        else:  # unset since the spawner started
            monkeypatch.delenv("PYTEST_CURRENT_TEST")
        found = Worker(f"{probe}:variable", 30)
        workers.append(found)
        target = found.start()
        value, _ = found.call("calling", target, ("PYTEST_CURRENT_TEST",), {}, timeout=30, seed=0)
        assert value == (f"test_spawner.py::probe ({phase})" if phase else "")
    (elsewhere / "only_on_the_new_path.py").write_text("")
    monkeypatch.syspath_prepend(str(elsewhere))
    found = Worker(f"{probe}:importable", 30)
    workers.append(found)
    target = found.start()
    value, _ = found.call("calling", target, ("only_on_the_new_path",), {}, timeout=30, seed=0)
    assert value is True


def test_a_large_environment_is_no_reason_to_start_a_new_process(
    probe: Path, monkeypatch: pytest.MonkeyPatch, workers: list[Worker]
) -> None:
    # 400 kB of variables: more than a Unix socket takes in one message (about 200 kB
    # here), so sending the environment with each fork failed and every start began a
    # spawner, then a new process as well
    for i in range(4):
        monkeypatch.setenv(f"SPAWNER_PROBE_{i}", str(i) * 100_000)
    worker = Worker(f"{probe}:variable", 30)
    workers.append(worker)
    target = worker.start()
    assert isinstance(worker.process, Forked)
    value, _ = worker.call("calling", target, ("SPAWNER_PROBE_3",), {}, timeout=30, seed=0)
    assert value == "3" * 100_000


def test_a_folder_whose_path_is_too_long_to_name_is_the_workers_too(
    path: str, probe: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: list[Worker]
) -> None:
    # a new process inherits its folder, whatever its path; a forked worker changed to
    # it by its path, which chdir refuses past PATH_MAX (4096 bytes on Linux)
    monkeypatch.chdir(tmp_path)
    for _ in range(20):
        os.mkdir("d" * 250)
        os.chdir("d" * 250)
    deep = os.getcwd()
    assert len(deep) > 4096
    (_, _, cwd, _), worker = call(f"{probe}:where")
    workers.append(worker)
    assert cwd == deep


def test_one_spawner_serves_until_a_lasting_variable_changes(
    probe: Path, monkeypatch: pytest.MonkeyPatch, workers: list[Worker]
) -> None:
    def spawner_now() -> spawner.Spawner:
        _, worker = call(f"{probe}:calls")
        workers.append(worker)
        assert isinstance(worker.process, Forked)
        return worker.process.spawner

    first = spawner_now()
    assert spawner_now() is first
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "another test (call)")
    assert spawner_now() is first
    monkeypatch.setenv("SPAWNER_PROBE", "read at import, for all the spawner knows")
    assert spawner_now() is not first
    assert first.process.poll() is not None  # the one before was ended


def test_a_child_of_the_code_under_test_is_waited_for_normally(
    path: str, probe: Path, workers: list[Worker]
) -> None:
    value, worker = call(f"{probe}:child_runs")
    workers.append(worker)
    assert value == (0, 1)


def test_output_goes_to_the_output_file_and_is_counted(
    path: str, probe: Path, workers: list[Worker]
) -> None:
    _, worker = call(f"{probe}:prints")
    workers.append(worker)
    assert worker.printed == len("to standard output\n") + len("to descriptor 2")


def test_an_exit_is_reported_with_its_exit_code(path: str, probe: Path) -> None:
    worker = Worker(f"{probe}:exits", 30)
    target = worker.start()
    with pytest.raises(CodeFailed) as failed:
        worker.call("calling exits", target, (), {}, timeout=30, seed=0)
    worker.close()
    assert failed.value.message == (
        "calling exits ended the worker process (exit code 3): "
        "code under test must return, not exit"
    )


@pytest.mark.parametrize(
    ("expression", "code"),
    [
        ("SystemExit(5)", 5),
        ("SystemExit(None)", 0),
        ("SystemExit('a message')", 1),
        ("KeyboardInterrupt()", -signal.SIGINT),
        ("RuntimeError('raised in the loop')", 1),
    ],
)
def test_an_exception_out_of_the_workers_loop_ends_it_as_python_would(
    path: str, probe: Path, expression: str, code: int
) -> None:
    worker = Worker(f"{probe}:raises_outside_the_call", 30)
    target = worker.start()
    with pytest.raises(CodeFailed) as failed:
        worker.call("calling", target, (expression,), {}, timeout=30, seed=0)
    worker.close()
    assert failed.value.message == (
        f"calling ended the worker process (exit code {code}): "
        "code under test must return, not exit"
    )


def test_code_that_kills_the_spawner_changes_nothing_but_the_next_start(
    probe: Path, workers: list[Worker]
) -> None:
    value, worker = call(f"{probe}:kills_its_parent")
    workers.append(worker)
    assert value == 0
    assert isinstance(worker.process, Forked)
    killed = worker.process.spawner
    # this worker can still be ended and waited for; its parent's gone, so no exit code
    worker.stop()
    assert_the_next_start_has_a_new_spawner(probe, workers, killed)


def assert_the_next_start_has_a_new_spawner(
    probe: Path, workers: list[Worker], old: spawner.Spawner
) -> None:
    """The next worker is fresh and forked by a new spawner; ``old`` was killed."""
    count, after = call(f"{probe}:calls")
    workers.append(after)
    assert count == 1
    assert isinstance(after.process, Forked)
    assert after.process.spawner is not old
    assert old.process.poll() == -signal.SIGKILL


def state_of(pid: int) -> str:
    """A process's state letter in /proc (T: stopped), "" once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return ""


def test_a_spawner_stopped_by_the_code_under_test_is_given_up_at_once(
    probe: Path, workers: list[Worker]
) -> None:
    if not Path("/proc/self/stat").exists():
        pytest.skip("reads process states from /proc")
    value, worker = call(f"{probe}:stops_its_parent")
    workers.append(worker)
    assert value == 0
    assert isinstance(worker.process, Forked)
    stopped = worker.process.spawner
    for _ in range(1000):  # the signal is sent; wait until it has taken effect
        if state_of(stopped.process.pid) == "T":
            break
        time.sleep(0.01)
    assert not stopped.alive()
    # asked anyway, it does not wait out spawner.REPLY_TIMEOUT (60 s) for an answer
    with pytest.raises(spawner.SpawnerGone) as gone:
        stopped.status(worker.process.pid)
    assert str(gone.value) == "it was stopped"
    worker.stop()  # ended by its pid file descriptor, without its parent
    assert_the_next_start_has_a_new_spawner(probe, workers, stopped)


def test_a_pid_given_again_is_the_new_childs() -> None:
    """pid_max is often 32768: a spawner that serves a long session forks a worker with
    the pid of one it reaped before. That worker is running, not the old one's exit
    code (which made Worker.stop leave it running after a time-out)."""
    children = spawner.Children()
    children.forked(4321)
    children.running.discard(4321)  # as reap() leaves a child that exited with 3
    children.ended[4321] = 3
    assert children.status(4321) == ("exited", 3)
    children.forked(4321)  # the same pid, given to a new child
    assert children.status(4321) == ("running", None)
    assert children.status(1234) == ("unknown", None)


def test_a_spawner_that_does_not_answer_is_replaced_by_a_new_process(
    probe: Path, monkeypatch: pytest.MonkeyPatch, workers: list[Worker]
) -> None:
    def silent(*args: Any) -> Forked:
        raise spawner.SpawnerGone("no reply: timed out")

    monkeypatch.setattr(spawner.Spawner, "fork", silent)
    count, worker = call(f"{probe}:calls")
    workers.append(worker)
    assert count == 1
    assert not isinstance(worker.process, Forked)


def test_a_fork_whose_reply_is_lost_leaves_the_new_process_its_own_pipes(
    probe: Path, monkeypatch: pytest.MonkeyPatch, workers: list[Worker]
) -> None:
    # the spawner forked a child on the pipes, then was stopped or killed before its
    # reply: that child must not read the requests meant for the new process
    lost: list[Forked] = []
    fork = spawner.Spawner.fork

    def forks_then_goes(self: spawner.Spawner, *args: Any) -> Forked:
        lost.append(fork(self, *args))
        raise spawner.SpawnerGone("no reply: timed out")

    monkeypatch.setattr(spawner.Spawner, "fork", forks_then_goes)
    worker = Worker(f"{probe}:where", 30)
    workers.append(worker)
    target = worker.start()
    started = worker.process
    assert started is not None
    assert not isinstance(started, Forked)
    assert len(lost) == 1
    for _ in range(5):
        (pid, _, _, _), _ = worker.call("calling", target, (), {}, timeout=30, seed=0)
        assert pid == started.pid
    lost[0].wait(timeout=30)  # its pipes were closed: it ended (its parent is gone)
    assert lost[0].ended


def test_threads_that_start_workers_at_once_share_one_spawner() -> None:
    if spawner._current is not None:
        spawner.forget(spawner._current[1])
    env = worker_environment()
    gate = threading.Barrier(4)
    got: list[spawner.Spawner | None] = []

    def start() -> None:
        gate.wait()
        got.append(spawner.spawner_for(env))

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    distinct = {id(one): one for one in got if one is not None}
    for one in distinct.values():
        spawner.forget(one)
    assert len(got) == 4
    assert len(distinct) == 1  # each of the others was a process left running


def test_the_spawner_ends_when_the_verifier_lets_go_of_it(probe: Path) -> None:
    _, worker = call(f"{probe}:calls")
    worker.close()
    assert worker.process is None
    current = spawner.spawner_for(worker_environment())
    assert current is not None
    spawner.forget(current)
    assert current.process.poll() is not None


def test_verify_gives_the_same_report_on_both_paths(path: str) -> None:
    report = verify(
        "manual_bptt.checking.gallery:CurrentStateInDW", style="tutorial", max_examples=10
    )
    assert not report.passed
    assert [f.key for f in report.findings] == ["W"]


FORKS = """
import os, sys
from manual_bptt.checking import spawner
from manual_bptt.checking.worker import Worker

def calls(spec):
    worker = Worker(spec, 30)
    target = worker.start()
    value, _ = worker.call("calling", target, (), {}, timeout=30, seed=0)
    kind = type(worker.process).__name__
    worker.close()
    return value, kind, spawner._current[1]

value, kind, first = calls(sys.argv[1])
assert (value, kind) == (1, "Forked"), (value, kind)
child = os.fork()
if child == 0:  # a fork of the verifier: a spawner of its own, the parent's left alone
    value, kind, own = calls(sys.argv[1])
    os._exit(0 if (value, kind) == (1, "Forked") and own is not first else 7)
_, status = os.waitpid(child, 0)
assert os.waitstatus_to_exitcode(status) == 0, status
value, kind, again = calls(sys.argv[1])
assert (value, kind) == (1, "Forked") and again is first and first.alive()
print("ok")
"""


INHERITS = """
import os, resource, sys
from manual_bptt.checking.worker import Worker

def seen():
    worker = Worker(sys.argv[1], 30)
    target = worker.start()
    value, _ = worker.call("calling", target, (), {}, timeout=30, seed=0)
    kind = type(worker.process).__name__
    worker.close()
    return value, kind

before, kind = seen()
assert kind == "Forked", kind
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
os.umask(0o077)
os.nice(3)
after, kind = seen()
assert kind == "Forked", kind
print(before != after, after == ((64, hard), 0o077, os.getpriority(os.PRIO_PROCESS, 0)))
"""


def run_script(script: str, spec: str) -> tuple[int, str, str]:
    """A verifying script of its own, run as ``python -c script spec``: (exit code,
    standard output, standard error)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", script, spec],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def test_limits_umask_and_niceness_are_the_verifiers_at_the_start(probe: Path) -> None:
    assert run_script(INHERITS, f"{probe}:inherited") == (0, "True True\n", "")


def test_a_fork_of_the_verifier_starts_a_spawner_of_its_own(probe: Path) -> None:
    assert run_script(FORKS, f"{probe}:calls") == (0, "ok\n", "")
