"""Time and memory of one W9 gradient, measured in a fresh process:

    python -m bench.memory_probe <runner> <length>     (runners: bench/chains.py)

prints one JSON line: the gradient, its wall time, and resident memory (from /proc/self/status)
relative to the baseline before the call: `peak` (VmHWM, reset before the call through
/proc/self/clear_refs), `after_gradient` (the tape and the output still referenced, as a user
holds them after a non-persistent gradient), `after_release` (all dropped). Freed memory is
handed back to the system with malloc_trim before each reading, so that what is counted is what
is still allocated."""
import ctypes
import gc
import json
import sys
import time


def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def settle():
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return "VmHWM reset before the call"
    except OSError:
        return "VmHWM since process start (could not reset it)"


def main(name, length):
    from bench.chains import RUNNERS
    run = RUNNERS[name][1]
    for _ in range(2):                       # imports, caches and first-call costs
        run(1000)
    settle()
    base = status("VmRSS")
    method = reset_peak()
    t0 = time.perf_counter()
    gradient, keep = run(length)
    seconds = time.perf_counter() - t0
    peak = status("VmHWM") - base
    settle()
    after_gradient = status("VmRSS") - base
    del keep
    settle()
    after_release = status("VmRSS") - base
    print(json.dumps(dict(runner=name, length=length, gradient=gradient, seconds=seconds,
                          baseline=base, peak=peak, after_gradient=after_gradient,
                          after_release=after_release, peak_method=method)))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
