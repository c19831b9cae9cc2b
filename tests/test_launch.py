"""madx launch: accelerate flags from the gpu resource, and GPU leases that give concurrent jobs distinct GPUs."""

import os

import pytest

from madx.cli import main as cli
from madx.experiment.launch import LaunchError, accelerate_flags, build_command, lease_gpus


def test_accelerate_flags_follow_the_gpu_count():
    four = accelerate_flags(4, "bf16")
    assert four[:5] == ["--multi_gpu", "--num_processes", "4", "--main_process_port", "0"]
    assert four[four.index("--mixed_precision") + 1] == "bf16"
    command = build_command(["train-lang", "--lang", "sw"], 2, True, "no")
    assert command[1:3] == ["-m", "accelerate.commands.launch"] and "--multi_gpu" in command
    assert command[-4:] == ["madx.cli", "train-lang", "--lang", "sw"]
    assert build_command(["evaluate"], 4, False, "no")[1:] == ["-m", "madx.cli", "evaluate"]
    # one process (a CPU, one GPU) runs directly: accelerate's launcher would only add a second interpreter
    for gpus in (0, 1):
        assert build_command(["train-lang"], gpus, True, "bf16")[1:] == ["-m", "madx.cli", "train-lang"]


def test_concurrent_leases_get_distinct_gpus(tmp_path):
    first, fds1 = lease_gpus(2, tmp_path, total=4)
    second, fds2 = lease_gpus(1, tmp_path, total=4)
    third, fds3 = lease_gpus(1, tmp_path, total=4)
    assert sorted(first + second + third) == [0, 1, 2, 3]
    with pytest.raises(LaunchError, match="no 1 free GPUs"):
        lease_gpus(1, tmp_path, total=4, timeout_s=0.2, poll_s=0.05)
    for fd in fds2:
        os.close(fd)  # a finished job frees its GPU (the lock goes with the process, even if it is killed)
    again, fds4 = lease_gpus(1, tmp_path, total=4, timeout_s=1)
    assert again == second
    with pytest.raises(LaunchError, match=r"asks for 8 GPU\(s\) but this machine has 4; set .*gpus .* at most 4"):
        lease_gpus(8, tmp_path, total=4)
    for fd in fds1 + fds3 + fds4:
        os.close(fd)


def test_a_job_asking_for_gpus_a_machine_lacks_gets_one_clear_line(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr("madx.experiment.launch.visible_gpu_count", lambda: 0)  # what a machine without nvidia-smi reports
    assert cli(["launch", "--gpus", "1", "--lock-dir", str(tmp_path), "--", "inspect", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "madx: error: this job asks for 1 GPU(s) but this machine has 0" in err and "Traceback" not in err


def test_jobs_of_a_group_share_the_allocation_gpus(tmp_path):
    """A Slurm group job: the allocation's CUDA_VISIBLE_DEVICES lists 4 GPUs and its jobs ask for fewer; each gets
    its own share of them (held while it runs); a job given exactly what it asks for keeps the scheduler's choice."""
    from madx.experiment.launch import devices_for

    env = {"CUDA_VISIBLE_DEVICES": "3,5,7,9", "SLURM_JOB_ID": "4242"}
    (a, fa), (b, fb), (c, fc) = (devices_for(n, env, tmp_path) for n in (1, 1, 2))
    assert sorted([a, b, *c.split(",")]) == ["3", "5", "7", "9"]  # distinct GPUs of the allocation
    assert (tmp_path / "allocation-4242").is_dir()
    with pytest.raises(LaunchError, match="no 1 free GPUs"):  # all four held
        lease_gpus(1, tmp_path / "allocation-4242", total=4, timeout_s=0.2, poll_s=0.05)
    for fd in fa:
        os.close(fd)  # a finished job frees its share
    again, fd_again = devices_for(1, env, tmp_path)
    assert again == a
    assert devices_for(4, env, tmp_path) == ("3,5,7,9", [])  # exactly what it asks for: the scheduler's choice
    assert devices_for(0, env, tmp_path) == ("", [])
    for fd in fb + fc + fd_again:
        os.close(fd)
