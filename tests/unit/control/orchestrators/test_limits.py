"""The pure parts of the local orchestrator: backoff, scale-down choice, CPU/GPU spreading, words."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from pier.control.orchestrators.limits import (
    RLIMIT_HEADROOM_MIB,
    Resources,
    assign_gpus,
    describe_limits,
    spread_cpus,
)
from pier.control.orchestrators.local import backoff_delay, pick_victims
from pier.control.orchestrators.processes import Exit
from pier.control.orchestrators.replica_files import (
    ReplicaFile,
    error_reason,
    rotate_log,
    tail_lines,
)


def test_backoff_doubles_up_to_the_cap() -> None:
    delays = [backoff_delay(n, 0.5, 4.0) for n in range(1, 7)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_scale_down_stops_not_ready_then_youngest() -> None:
    replicas = [("old", True, 100.0), ("young", True, 300.0), ("sick", False, 50.0)]
    assert pick_victims(replicas, 1) == ["sick"]
    assert pick_victims(replicas, 2) == ["sick", "young"]
    assert pick_victims(replicas, 0) == []


def test_cpus_spread_over_the_least_used() -> None:
    assert spread_cpus(1.5, [0, 1, 2, 3], []) == (0, 1)
    assert spread_cpus(1.5, [0, 1, 2, 3], [(0, 1)]) == (2, 3)
    assert spread_cpus(0.25, [0, 1], [(0,)]) == (1,)
    assert spread_cpus(8, [0, 1], []) == (0, 1)  # never more than there are


def test_gpus_are_distinct_and_balanced() -> None:
    assert assign_gpus(0, 4, []) == ()
    assert assign_gpus(2, 4, []) == (0, 1)
    assert assign_gpus(2, 4, [(0, 1)]) == (2, 3)
    assert assign_gpus(1, 2, [(0,), (1,), (0,)]) == (1,)
    assert assign_gpus(3, 2, []) == (0, 1)


def test_limits_are_described_in_words() -> None:
    res = Resources(cpu=1.5, memory_mib=2048, gpu=1)
    assert describe_limits("cgroup2", res, gpus=(0,)) == (
        "cgroup v2: memory.max=2048MiB, cpu.max=1.5 cores; gpu: CUDA_VISIBLE_DEVICES=0"
    )
    v1 = describe_limits("cgroup1", Resources(memory_mib=512))
    assert v1 == "cgroup v1: memory.limit_in_bytes=512MiB"
    rl = describe_limits("rlimit", res, cpus=(0, 1), gpus=(1,), gpus_detected=False)
    assert rl.startswith(f"rlimit: address space {2048 + RLIMIT_HEADROOM_MIB}MiB")
    assert "affinity: CPUs 0,1" in rl
    assert "no GPU found" in rl
    assert describe_limits("rlimit", Resources()) == "none"


def test_resources_from_spec() -> None:
    spec = {"resources": {"cpu": 2, "memory": 1024, "gpu": 1}}
    assert Resources.from_spec(spec) == Resources(cpu=2.0, memory_mib=1024, gpu=1)
    assert Resources.from_spec({}) == Resources()


def test_exit_descriptions() -> None:
    assert Exit(0).describe() == "exited with code 0"
    assert Exit(-signal.SIGKILL).describe() == "killed by SIGKILL"
    assert "exit code unknown" in Exit(None).describe()


def test_error_reason_takes_the_last_error(tmp_path: Path) -> None:
    log = tmp_path / "replica.log"
    lines = [
        {"level": "error", "msg": "first problem"},
        {"level": "info", "msg": "fine"},
        {"level": "error", "msg": "model 'x' failed to load: bad protobuf"},
        {"level": "info", "msg": "still fine"},
    ]
    log.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    assert error_reason(log) == "model 'x' failed to load: bad protobuf"
    log.write_text("Traceback (most recent call last):\nMemoryError: cannot allocate\n")
    assert error_reason(log) == "MemoryError: cannot allocate"
    assert error_reason(tmp_path / "missing.log") == ""


def test_log_rotation_keeps_one_old_file(tmp_path: Path) -> None:
    log = tmp_path / "replica.log"
    log.write_text("a\n" * 100)
    assert not rotate_log(log, limit=1000)
    assert rotate_log(log, limit=100)
    assert log.stat().st_size == 0
    assert (tmp_path / "replica.log.1").read_text() == "a\n" * 100
    log.write_text("1\n2\n3\n")
    assert tail_lines(log, 2) == (["2", "3"], 6)


def test_replica_file_round_trip(tmp_path: Path) -> None:
    saved = ReplicaFile("s-1-abcde", "s", 1, 8000, 42, 1234, ["python"], {"name": "s"}, gpus=[0])
    saved.save(tmp_path)
    assert ReplicaFile.load(tmp_path) == saved
    assert ReplicaFile.load(tmp_path / "nothing") is None
