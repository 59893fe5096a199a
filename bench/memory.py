"""This process's resident memory, for the bench scripts: now, the peak, and a peak reset."""

from __future__ import annotations

_PAGE = 4096


def rss_mib() -> float:
    """Resident memory now, MiB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE / 2**20


def hwm_mib() -> float | None:
    """The kernel's peak resident memory (VmHWM), MiB; None where it cannot be read."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (Linux 4.0+), so a later VmHWM covers only what follows."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        return True
    except OSError:
        return False
