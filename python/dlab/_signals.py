"""SIGTERM → dlab.should_stop().

dlab stops an attempt (cancel, preemption, max_runtime) with SIGTERM, then SIGKILL after a grace
period. The handler installed here turns should_stop() True so that a training loop can save a
checkpoint and exit. The rules:

* Every SIGTERM sets the flag and then calls the Python handler that was installed before ours,
  if there was one.
* The first SIGTERM does nothing more when the program has called should_stop() at least once
  (it polls the flag) or had its own handler. Otherwise nobody would notice the flag, so the
  handler raises SystemExit(143) in the main thread, as the default action would end the process,
  but with `finally:` blocks and the atexit flush of pending reports.
* A second SIGTERM always raises SystemExit(143): it is never swallowed.

The handler writes its one line with os.write, never through sys.stderr, which the interrupted
code may be in the middle of using.
"""

import os
import signal
import threading

EXIT_CODE = 128 + signal.SIGTERM  # what a shell reports for a process ended by SIGTERM

_stop = False
_count = 0
_polled = False
_installed = False
_previous = None
_in_handler = False


def _say(text):
    try:
        os.write(2, ("dlab: " + text + "\n").encode())
    except OSError:
        pass


def _handler(signum, frame):
    global _stop, _count, _in_handler
    if _in_handler:  # our previous handler chained back to us
        return
    _stop = True
    _count += 1
    previous = _previous
    _in_handler = True
    try:
        if callable(previous):
            previous(signum, frame)
    finally:
        _in_handler = False
    if _count == 1 and (_polled or callable(previous)):
        _say("SIGTERM received: dlab.should_stop() is now True; save a checkpoint and exit "
             "(a second SIGTERM exits at once)")
        return
    if _count == 1:
        _say("SIGTERM received and nothing calls dlab.should_stop(): exiting (status %d)"
             % EXIT_CODE)
    else:
        _say("second SIGTERM received: exiting (status %d)" % EXIT_CODE)
    raise SystemExit(EXIT_CODE)


def install():
    """Installs the SIGTERM handler (chaining to the current one). Returns False when it cannot:
    not in the main thread."""
    global _installed, _previous
    if threading.current_thread() is not threading.main_thread():
        return False
    try:
        current = signal.getsignal(signal.SIGTERM)
        if current is _handler:
            _installed = True
            return True
        signal.signal(signal.SIGTERM, _handler)
    except (ValueError, OSError):  # not the main interpreter, or signals unavailable
        return False
    _previous = current
    _installed = True
    return True


def should_stop():
    """True once this process has received SIGTERM: save a checkpoint and leave the loop."""
    global _polled
    if not _polled:
        _polled = True
        install()
    return _stop


def _reset_for_tests():
    global _stop, _count, _polled
    _stop = False
    _count = 0
    _polled = False
