"""Per-replica CPU, memory and GPU limits for local processes: cgroups where writable, else rlimit.

Three ways to enforce, picked at run time by :func:`detect_limiter`:

- **cgroup v2** (a writable delegated cgroup2 tree with the memory and cpu controllers):
  one child group per replica with ``memory.max`` and ``cpu.max``; the kernel OOM-kills
  inside the group and counts it in ``memory.events`` (``oom_kill``).
- **cgroup v1** (writable ``memory`` and ``cpu`` hierarchies, as on many VMs and CI
  machines): ``memory.limit_in_bytes`` and ``cpu.cfs_quota_us``; OOM kills are counted
  in ``memory.oom_control``.
- **rlimit** otherwise: ``RLIMIT_AS`` for memory and CPU affinity for cores. RLIMIT_AS
  caps *virtual* address space, which a Python server with thread pools reserves far
  beyond what it touches, so the cap is the asked memory plus :data:`RLIMIT_HEADROOM_MIB`;
  going over it raises ``MemoryError`` inside the replica rather than a kernel kill.

Limits are applied right after the process is spawned (``os.posix_spawn`` has no
pre-exec hook, and a Python ``preexec_fn`` is unsafe in a threaded control plane); the
few milliseconds of interpreter start-up before that run unlimited.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import resource
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

logger = logging.getLogger(__name__)

#: address space given on top of the asked memory under RLIMIT_AS (thread stacks, arenas)
RLIMIT_HEADROOM_MIB = 2048
CPU_PERIOD_US = 100_000

Mode = Literal["cgroup2", "cgroup1", "rlimit"]


@dataclass(frozen=True)
class Resources:
    """What a replica asks for: cores, MiB of memory, GPUs (None = unbounded)."""

    cpu: float | None = None
    memory_mib: int | None = None
    gpu: int = 0

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Resources:
        res = spec.get("resources") or {}
        cpu, memory = res.get("cpu"), res.get("memory")
        return cls(
            cpu=float(cpu) if cpu else None,
            memory_mib=int(memory) if memory else None,
            gpu=int(res.get("gpu") or 0),
        )


# ---- pure decisions ---------------------------------------------------------------------


def spread_cpus(
    want: float, available: Sequence[int], in_use: Sequence[Sequence[int]]
) -> tuple[int, ...]:
    """ceil(want) of the available CPUs, the least used first (ties: lowest number)."""
    count = min(len(available), max(1, math.ceil(want)))
    load = dict.fromkeys(available, 0)
    for cpus in in_use:
        for cpu in cpus:
            if cpu in load:
                load[cpu] += 1
    ranked = sorted(available, key=lambda cpu: (load[cpu], cpu))
    return tuple(sorted(ranked[:count]))


def assign_gpus(want: int, devices: int, in_use: Sequence[Sequence[int]]) -> tuple[int, ...]:
    """``want`` distinct device indices out of ``devices``, the least used first.

    Asking for more than there are gives every device once (CUDA ignores repeats).
    """
    if want <= 0 or devices <= 0:
        return ()
    load = [0] * devices
    for gpus in in_use:
        for gpu in gpus:
            load[gpu % devices] += 1
    ranked = sorted(range(devices), key=lambda gpu: (load[gpu], gpu))
    return tuple(sorted(ranked[: min(want, devices)]))


def describe_limits(
    mode: Mode,
    res: Resources,
    cpus: Sequence[int] = (),
    gpus: Sequence[int] = (),
    gpus_detected: bool = True,
) -> str:
    """The limits applied to one replica, in words (the ``limits`` field of its record)."""
    parts: list[str] = []
    if mode == "rlimit":
        if res.memory_mib is not None:
            cap = res.memory_mib + RLIMIT_HEADROOM_MIB
            parts.append(
                f"rlimit: address space {cap}MiB ({res.memory_mib}MiB asked + "
                f"{RLIMIT_HEADROOM_MIB}MiB virtual headroom)"
            )
        if cpus:
            parts.append("affinity: CPUs " + ",".join(str(c) for c in cpus))
    else:
        name = "cgroup v2" if mode == "cgroup2" else "cgroup v1"
        limits = []
        if res.memory_mib is not None:
            key = "memory.max" if mode == "cgroup2" else "memory.limit_in_bytes"
            limits.append(f"{key}={res.memory_mib}MiB")
        if res.cpu is not None:
            key = "cpu.max" if mode == "cgroup2" else "cpu.cfs_quota_us"
            limits.append(f"{key}={res.cpu:g} cores")
        if limits:
            parts.append(f"{name}: " + ", ".join(limits))
    if res.gpu:
        visible = ",".join(str(g) for g in gpus)
        note = "" if gpus_detected else " (no GPU found on this machine; indices assumed)"
        parts.append(f"gpu: CUDA_VISIBLE_DEVICES={visible}{note}")
    return "; ".join(parts) or "none"


# ---- the machine --------------------------------------------------------------------------


def detect_gpu_count() -> int:
    """NVIDIA devices on this machine (/dev/nvidiaN); 0 when there are none."""
    try:
        return sum(
            1
            for p in Path("/dev").iterdir()
            if p.name[6:].isdigit() and p.name.startswith("nvidia")
        )
    except OSError:
        return 0


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def _counter(text: str, key: str) -> int:
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == key and value.strip().isdigit():
            return int(value)
    return 0


class Limiter:
    """Applies one replica's limits and reads back whether the kernel OOM-killed it."""

    def __init__(self, mode: Mode, groups: dict[str, Path] | None = None) -> None:
        self.mode: Mode = mode
        #: controller ("memory", "cpu", or "unified") → the parent group holding replica groups
        self.groups = groups or {}

    def _dirs(self, replica_id: str) -> dict[str, Path]:
        return {name: parent / replica_id for name, parent in self.groups.items()}

    def apply(self, pid: int, replica_id: str, res: Resources, cpus: Sequence[int]) -> None:
        """Put ``pid`` under the replica's limits; OSError when the kernel refuses."""
        if self.mode == "rlimit":
            if res.memory_mib is not None:
                cap = (res.memory_mib + RLIMIT_HEADROOM_MIB) << 20
                resource.prlimit(pid, resource.RLIMIT_AS, (cap, cap))
            if cpus:
                os.sched_setaffinity(pid, cpus)
            return
        for name, group in self._dirs(replica_id).items():
            group.mkdir(exist_ok=True)
            self._set_limits(name, group, res)
            _write(group / "cgroup.procs", str(pid))

    def _set_limits(self, name: str, group: Path, res: Resources) -> None:
        mem = str(res.memory_mib << 20) if res.memory_mib is not None else None
        quota = int(res.cpu * CPU_PERIOD_US) if res.cpu is not None else None
        if name == "unified":
            _write(group / "memory.max", mem or "max")
            _write(group / "cpu.max", f"{quota or 'max'} {CPU_PERIOD_US}")
        elif name == "memory":
            _write(group / "memory.limit_in_bytes", mem or "-1")
        elif name == "cpu":
            _write(group / "cpu.cfs_period_us", str(CPU_PERIOD_US))
            _write(group / "cpu.cfs_quota_us", str(quota or -1))

    def oom_kills(self, replica_id: str) -> int:
        """How many times the kernel OOM-killed in the replica's group (0 under rlimit)."""
        dirs = self._dirs(replica_id)
        if "unified" in dirs:
            return _counter(_read(dirs["unified"] / "memory.events"), "oom_kill")
        if "memory" in dirs:
            return _counter(_read(dirs["memory"] / "memory.oom_control"), "oom_kill")
        return 0

    def remove(self, replica_id: str) -> None:
        """Delete the replica's groups (they must be empty: call after the process is gone)."""
        for group in self._dirs(replica_id).values():
            try:
                group.rmdir()
            except FileNotFoundError:
                pass
            except OSError as exc:
                logger.warning("cannot remove cgroup %s: %s", group, exc)

    def close(self) -> None:
        """Remove this home's parent groups if no replica group is left in them."""
        for parent in self.groups.values():
            with contextlib.suppress(OSError):
                parent.rmdir()


def _own_cgroups() -> dict[str, str]:
    """Controller name → this process's cgroup path ("unified" for cgroup v2)."""
    found: dict[str, str] = {}
    for line in _read(Path("/proc/self/cgroup")).splitlines():
        hid, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hid == "0" and controllers == "":
            found["unified"] = path
        for name in controllers.split(","):
            if name:
                found[name] = path
    return found


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, fs type, options) of every cgroup mount."""
    out = []
    for line in _read(Path("/proc/self/mounts")).splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[2] in ("cgroup", "cgroup2"):
            out.append((fields[1], fields[2], set(fields[3].split(","))))
    return out


def _make_parent(base: Path, name: str) -> Path | None:
    """Create (or reuse) ``base/name`` for replica groups; None when not writable."""
    parent = base / name
    try:
        parent.mkdir(exist_ok=True)
        probe = parent / f"probe-{os.getpid()}"
        probe.mkdir(exist_ok=True)
        probe.rmdir()
    except OSError:
        return None
    return parent


def _try_cgroup2(name: str) -> dict[str, Path] | None:
    own = _own_cgroups().get("unified")
    if own is None:
        return None
    for mount, fstype, _ in _mounts():
        if fstype != "cgroup2":
            continue
        base = Path(mount) / own.lstrip("/")
        if not {"memory", "cpu"} <= set(_read(base / "cgroup.controllers").split()):
            continue
        parent = _make_parent(base, name)
        if parent is None:
            continue
        try:
            # Both levels must hand the controllers down. This fails (EBUSY) when ``base``
            # holds processes and is not the root: then cgroup v2 cannot be used here.
            for group in (base, parent):
                _write(group / "cgroup.subtree_control", "+memory +cpu")
        except OSError:
            continue
        return {"unified": parent}
    return None


def _try_cgroup1(name: str) -> dict[str, Path] | None:
    own = _own_cgroups()
    groups: dict[str, Path] = {}
    for controller in ("memory", "cpu"):
        for mount, fstype, options in _mounts():
            if fstype == "cgroup" and controller in options and controller in own:
                parent = _make_parent(Path(mount) / own[controller].lstrip("/"), name)
                if parent is not None:
                    groups[controller] = parent
                    break
    # Memory is the limit that matters most (and the one that yields OOM evidence).
    return groups if "memory" in groups else None


def detect_limiter(home_root: Path, prefer: Mode | None = None) -> Limiter:
    """The best enforcement this machine allows (``prefer`` forces one, for tests)."""
    # One parent group per home, so two control planes on one machine never mix replicas.
    name = "pier-" + hashlib.sha256(str(home_root.resolve()).encode()).hexdigest()[:10]
    if prefer in (None, "cgroup2"):
        groups = _try_cgroup2(name)
        if groups is not None:
            return Limiter("cgroup2", groups)
    if prefer in (None, "cgroup1"):
        groups = _try_cgroup1(name)
        if groups is not None:
            return Limiter("cgroup1", groups)
    if prefer not in (None, "rlimit"):
        logger.warning("%s is not available here; limits fall back to rlimit", prefer)
    return Limiter("rlimit")
