"""The ``command`` source: an argument list run without a shell, a JSON object on stdout.

- Each argument is a sandboxed Jinja2 template (flag, window, percentage):
  ``["scripts/metrics.py", "--flag", "{{ flag }}", "--window", "{{ window }}"]``.
- It runs in the repository root with the run's environment plus ``ROLLOUT_FLAG``,
  ``ROLLOUT_WINDOW``, ``ROLLOUT_PERCENTAGE`` and ``ROLLOUT_NOW`` (the injected clock, ISO 8601).
- Standard output is a JSON object read like the metrics file (built-in gates by name, custom
  gates by their ``query`` field, an optional ``timestamp``).
- Exit status not 0, output that is not a JSON object, or no exit within ``timeout`` (the
  whole process group is killed) is an error.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess

from runner.gates.readings import Reading, SourceCall, SourceError, check_fresh, reading_from_document
from runner.gates.templates import render

#: After a kill, how long to wait for the pipes to close (a grandchild that left the group
#: may hold them) before giving up on its output.
_REAP_SECONDS = 5.0


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(process.pid, signal.SIGKILL)


def read(call: SourceCall) -> dict[str, Reading]:
    m = call.metrics
    if not m.command:
        raise SourceError("metrics type command needs a command (an argument list)")
    argv = [render(arg, what=f"metrics command argument {i}", flag=call.flag, window=m.window,
                   percentage=call.percentage) for i, arg in enumerate(m.command)]
    env = dict(call.env)
    env.update(ROLLOUT_FLAG=call.flag, ROLLOUT_WINDOW=m.window, ROLLOUT_PERCENTAGE=f"{call.percentage:g}",
               ROLLOUT_NOW=call.now.isoformat())
    shown = argv[0]
    try:
        process = subprocess.Popen(argv, cwd=call.root, env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   start_new_session=True)  # its own group: killed as a whole
    except OSError as e:
        raise SourceError(f"metrics command {shown}: cannot run: {e.strerror or e}") from e
    try:
        out, err = process.communicate(timeout=m.timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        try:
            process.communicate(timeout=_REAP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
        raise SourceError(f"metrics command {shown}: no answer within {m.timeout:g}s (killed)") from None
    finally:
        if process.poll() is None:
            _kill_group(process)
            process.wait()
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
    return {g.name: reading_from_document(document, g, origin) for g in call.gates}
