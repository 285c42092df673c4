"""What the benchmarks record about the machine they ran on (one place for every script in bench/)."""
import platform


def cpu_name() -> str:
    "The CPU's model name (Linux), or what the platform module knows."
    try:
        return next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()

