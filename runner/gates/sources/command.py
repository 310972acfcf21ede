"""The ``command`` source: an argument list run without a shell, a JSON object on stdout.

- Each argument is a sandboxed Jinja2 template (flag, window, percentage):
  ``["scripts/metrics.py", "--flag", "{{ flag }}", "--window", "{{ window }}"]``.
- It runs in the repository root with the run's environment plus ``ROLLOUT_FLAG``,
  ``ROLLOUT_WINDOW``, ``ROLLOUT_PERCENTAGE`` and ``ROLLOUT_NOW`` (the injected clock, ISO 8601).
- Standard output is a JSON object read like the metrics file (built-in gates by name, custom
  gates by their ``query`` field, an optional ``timestamp``).
- With comparison gates, the output's ``cohorts`` object holds each cohort's counts, and the
  command also gets ``ROLLOUT_STEP_STARTED_AT``, ``ROLLOUT_STEP_WINDOW``,
  ``ROLLOUT_TREATMENT_VARIANT``, ``ROLLOUT_CONTROL_VARIANT`` and ``ROLLOUT_OBJECTIVE_MS``
  (docs/guarded.md, "Cohort metrics").
- Exit status not 0, output that is not a JSON object, more than :data:`MAX_OUTPUT` bytes on
  standard output or error, or no exit within ``timeout`` (a deadline for the whole run of
  the command, output included) is an error; the whole process group is killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import time

from runner.gates.readings import (
    Reading,
    SourceCall,
    SourceError,
    check_fresh,
    cohort_readings_from_document,
    judges_counts,
    objective_ms,
    reading_from_document,
    step_readings_from_document,
    step_window,
    template_vars,
)
from runner.gates.templates import render

#: The most a metrics command may print on standard output (and on standard error).
MAX_OUTPUT = 1024 * 1024
#: After a kill, how long to wait for the process to be reaped.
_REAP_SECONDS = 5.0


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(process.pid, signal.SIGKILL)


def _collect(process: subprocess.Popen[bytes], timeout: float, shown: str) -> tuple[bytes, bytes]:
    """Standard output and error, read within ``timeout`` for the whole exchange and at most
    :data:`MAX_OUTPUT` bytes each; else the process group is killed and this raises."""
    deadline = time.monotonic() + timeout
    assert process.stdout is not None and process.stderr is not None  # started with two pipes
    out_fd, err_fd = process.stdout.fileno(), process.stderr.fileno()
    chunks: dict[int, list[bytes]] = {}
    sizes: dict[int, int] = {}
    with selectors.DefaultSelector() as selector:
        for fd in (out_fd, err_fd):
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_READ)
            chunks[fd], sizes[fd] = [], 0
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                raise SourceError(f"metrics command {shown}: no answer within {timeout:g}s (killed)")
            for key, _ in selector.select(left):
                try:
                    data = os.read(key.fd, 65536)
                except BlockingIOError:
                    continue
                if not data:
                    selector.unregister(key.fd)
                    continue
                sizes[key.fd] += len(data)
                if sizes[key.fd] > MAX_OUTPUT:
                    which = "output" if key.fd == out_fd else "error output"
                    raise SourceError(f"metrics command {shown}: printed more than {MAX_OUTPUT} "
                                      f"bytes of standard {which} (killed): a metrics command "
                                      "prints one small JSON object")
                chunks[key.fd].append(data)
    left = max(deadline - time.monotonic(), 0.0)
    try:
        process.wait(timeout=left)
    except subprocess.TimeoutExpired:  # closed its output but did not exit
        raise SourceError(f"metrics command {shown}: no answer within {timeout:g}s (killed)") from None
    return b"".join(chunks[out_fd]), b"".join(chunks[err_fd])


def read(call: SourceCall) -> dict[str, Reading]:
    m = call.metrics
    if not m.command:
        raise SourceError("metrics type command needs a command (an argument list)")
    extra = template_vars(call)
    argv = [render(arg, what=f"metrics command argument {i}", flag=call.flag, window=m.window,
                   percentage=call.percentage, extra=extra) for i, arg in enumerate(m.command)]
    env = dict(call.env)
    env.update(ROLLOUT_FLAG=call.flag, ROLLOUT_WINDOW=m.window, ROLLOUT_PERCENTAGE=f"{call.percentage:g}",
               ROLLOUT_NOW=call.now.isoformat(),
               ROLLOUT_STEP_STARTED_AT=call.step_started_at.isoformat() if call.step_started_at else "",
               ROLLOUT_STEP_WINDOW=step_window(call),
               ROLLOUT_TREATMENT_VARIANT=call.treatment_variant,
               ROLLOUT_CONTROL_VARIANT=call.control_variant)
    objective = objective_ms(call.compare)
    if objective is not None:
        env["ROLLOUT_OBJECTIVE_MS"] = f"{objective:g}"
    shown = argv[0]
    try:
        process = subprocess.Popen(argv, cwd=call.root, env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   start_new_session=True)  # its own group: killed as a whole
    except OSError as e:
        raise SourceError(f"metrics command {shown}: cannot run: {e.strerror or e}") from e
    try:
        out, err = _collect(process, m.timeout, shown)
    except BaseException:
        _kill_group(process)  # the whole group: grandchildren holding the pipes too
        raise
    finally:
        if process.poll() is None:
            _kill_group(process)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=_REAP_SECONDS)
        # a grandchild that left the group may still hold the pipes: never wait for it
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
    if process.returncode != 0:
        last = err.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise SourceError(f"metrics command {shown}: exit status {process.returncode}"
                          + (f": {last[0][:200]}" if last[0] else ""))
    try:
        document = json.loads(out)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SourceError(f"metrics command {shown}: standard output is not JSON: {e}") from e
    if not isinstance(document, dict):
        raise SourceError(f"metrics command {shown}: expected a JSON object, "
                          f"found {type(document).__name__}")
    origin = f"command {shown}"
    check_fresh(document, call.now, m.window, origin)
    readings = {g.name: reading_from_document(document, g, origin) for g in call.gates}
    if judges_counts(call.gates):
        readings.update(step_readings_from_document(document, origin))
    if call.compare is not None:
        readings.update(cohort_readings_from_document(document, call.compare, origin))
    return readings
