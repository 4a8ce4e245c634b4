"""Who holds a sync's lease: an owner id naming this process, and whether a holder has died.

Public entry points: :func:`process_owner`, :func:`owner_is_gone`.

A run holds its sync's lease (:func:`hub.store.acquire_lease`) until it ends, and the lease
expires on its own (``hub.engine.LEASE_TTL``) so that a run on a machine that vanished cannot
block the sync forever. A run killed outright (SIGKILL, the OOM killer) never releases it; without
more, ``crmhub sync`` right after would refuse to start for the whole TTL, claiming the sync is
"already running". So an owner id names where its pid means one process — the host and, on
Linux, the pid namespace, since containers sharing a hostname each count their own pids — and the
pid: a run on the same host and namespace can see that the holder's process no longer exists and
take the lease over. Anything it cannot be sure of (another machine, another namespace, a pid
reused by a new process) counts as alive, and the lease is left to expire.
"""

from __future__ import annotations

import os
import socket
import uuid


def _pid_scope() -> str:
    """Where a pid names one process: the host, and the pid namespace where Linux shows it."""
    host = socket.gethostname()
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return host
    return f"{host}/{namespace}"


def process_owner() -> str:
    """A new owner id for a run of this process: ``scope:pid:token``, unique per call."""
    return f"{_pid_scope()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_is_gone(owner: str) -> bool:
    """True when ``owner`` names a process of this host and pid namespace that has exited.

    A process that exited but was not yet reaped (a zombie) has gone. False whenever that
    cannot be known: an owner id of another form, another machine or namespace, a platform
    without POSIX signals, or a live process (even an unrelated one that took the pid over).
    """
    scope, _, rest = owner.partition(":")
    pid_text, _, token = rest.partition(":")
    if os.name != "posix" or not token or not pid_text.isdigit() or scope != _pid_scope():
        return False
    pid = int(pid_text)
    if pid <= 0:
        return False  # 0 would ask about our own process group
    try:
        os.kill(pid, 0)  # signal 0: is there such a process? Nothing is sent.
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # it exists, under another user
    return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """True when ``pid`` has exited but was not yet reaped. A Celery pool process killed with its
    worker is one until init reaps it, and in a container without an init that can be a while;
    signal 0 still finds it."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            # "pid (command) state ...": the command may hold spaces and parentheses.
            return stat.read().rpartition(")")[2].split()[0] == "Z"
    except (OSError, IndexError):
        return False
