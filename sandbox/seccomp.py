"""A seccomp filter for the bubblewrap backend: an extra layer, used where pyseccomp works.

It refuses (EPERM) the system calls sandboxed data-science code has no use for and that
sandbox escapes and kernel exploits lean on: tracing other processes, namespaces and mounts,
BPF and perf, keyrings, io_uring, kernel modules, clocks and reboot. Docker applies its own
default profile, so this is for bwrap only.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import tempfile

DENIED = (
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "keyctl", "add_key", "request_key",
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "fsopen", "fsmount",
    "fsconfig", "fspick", "move_mount", "open_tree", "mount_setattr",
    "open_by_handle_at", "name_to_handle_at", "kexec_load", "kexec_file_load",
    "init_module", "finit_module", "delete_module", "iopl", "ioperm", "swapon", "swapoff",
    "syslog", "acct", "quotactl", "reboot", "settimeofday", "clock_settime", "clock_adjtime",
    "adjtimex", "fanotify_init", "lookup_dcookie", "vhangup", "nfsservctl",
)  # fmt: skip


@functools.cache
def filter_bpf() -> bytes | None:
    """The compiled filter, or None where pyseccomp/libseccomp is unavailable."""
    try:
        import pyseccomp
    except (ImportError, OSError):
        return None
    try:
        rules = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
        for name in DENIED:
            with contextlib.suppress(Exception):  # a call this kernel/arch does not have
                rules.add_rule(pyseccomp.ERRNO(errno.EPERM), name)
        with tempfile.TemporaryFile() as handle:
            rules.export_bpf(handle)
            handle.seek(0)
            return handle.read()
    except Exception:
        return None


def filter_fd() -> int | None:
    """A readable fd holding the filter, for ``bwrap --seccomp FD``; the caller closes it."""
    program = filter_bpf()
    if program is None:
        return None
    read_end, write_end = os.pipe()
    os.write(write_end, program)  # a few hundred bytes: fits the pipe buffer
    os.close(write_end)
    return read_end
