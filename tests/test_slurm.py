"""The Slurm profile against a real Slurm: a single-node cluster started on this machine (as root).

Installs Debian's slurm-wlm and munge when missing; if they cannot be installed (or this is not
root), the test is skipped and says why. Job status comes from squeue (no accounting database:
MinJobAge keeps finished jobs visible). Every daemon started here is stopped at the end.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from test_workflow import REPO, SNAKEMAKE, clone, demo_config, job_counts, write_config

pytestmark = pytest.mark.slow  # a real Slurm cluster started here

SLURM_CONF = """\
ClusterName=madx
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmctldLogFile={dir}/slurmctld.log
SlurmdLogFile={dir}/slurmd.log
SlurmctldPort=6917
SlurmdPort=6918
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MinJobAge=900
ReturnToService=2
MpiDefault=none
NodeName={host} CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def _install() -> str | None:
    """None when slurm and munge are there (installing them if needed), else why not."""
    if os.geteuid() != 0:
        return "not root: cannot start slurmctld/slurmd/munged"
    if all(shutil.which(t) for t in ("slurmctld", "slurmd", "munged", "sbatch", "squeue")):
        return None
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "slurm-wlm", "munge"]):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        if proc.returncode != 0:
            return f"{' '.join(cmd)} failed: {proc.stderr.strip()[-300:]}"
    return None


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    why = _install()
    if why:
        print(f"skipping the Slurm test: {why}")
        pytest.skip(why)
    root = tmp_path_factory.mktemp("slurm")
    for sub in ("state", "spool"):
        (root / sub).mkdir()
    host = socket.gethostname().split(".")[0]
    # job steps (srun inside a batch job) read the default location, whatever SLURM_CONF said at submission
    conf = Path("/etc/slurm/slurm.conf")
    if conf.exists():
        pytest.skip(f"{conf} exists: this machine has its own Slurm; not touching it")
    conf.parent.mkdir(parents=True, exist_ok=True)
    mem_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20 - 1024
    conf.write_text(SLURM_CONF.format(host=host, dir=root, cpus=os.cpu_count(), mem_mb=mem_mb))
    env = dict(os.environ, SLURM_CONF=str(conf))
    started = []
    try:
        key = Path("/etc/munge/munge.key")
        if not key.exists():
            subprocess.run(["mungekey", "--create", "--keyfile", str(key)], check=True)
        for path in (Path("/run/munge"), Path("/var/log/munge"), Path("/var/lib/munge")):
            path.mkdir(parents=True, exist_ok=True)
        shutil.chown(key, "munge", "munge")
        key.chmod(0o400)
        for path in (Path("/run/munge"), Path("/var/log/munge"), Path("/var/lib/munge"), Path("/etc/munge")):
            shutil.chown(path, "munge", "munge")
        munged = subprocess.Popen(["runuser", "-u", "munge", "--", "munged", "--foreground"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(munged)
        time.sleep(1)
        for daemon in ("slurmctld", "slurmd"):
            started.append(subprocess.Popen([daemon, "-D", "-f", str(conf)], env=env,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.time() + 60
        while time.time() < deadline:
            out = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True).stdout
            if "idle" in out:
                break
            time.sleep(1)
        else:
            logs = "".join((root / f).read_text()[-1500:] for f in ("slurmctld.log", "slurmd.log") if (root / f).exists())
            pytest.fail(f"the Slurm node never became idle:\n{logs}")
        yield env, root
    finally:
        for proc in reversed(started):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        conf.unlink(missing_ok=True)


def test_reduced_demo_through_slurm_evaluates_as_a_local_run(slurm, tmp_path):
    env, root = slurm
    config = demo_config(("en", "qac"))
    # one adapter setup: every rule runs as a Slurm job once (the other setups, full_ft's whole-model output
    # included, are jobs of the same train_task and evaluate rules; the local workflow tests run them all)
    config["setups"] = ["madx"]
    # two clones of the repository, each run from its root as the README does
    local, cluster = clone(tmp_path / "local"), clone(tmp_path / "cluster")
    for d in (local, cluster):
        write_config(d, config, "reduced.yaml")
    env = dict(env, MADX_NO_PROGRESS="1")
    # the demo's data and base model are given, as a real run's would be: Slurm runs the MAD-X stages
    # (each round of jobs waits for the plugin's status checks, which back off by 10 s per empty check)
    proc = subprocess.run([*SNAKEMAKE, "--cores", "2", "results/demo/base_model", "results/demo/data/README.md",
                           "--configfile", "reduced.yaml"], cwd=local, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    shutil.copytree(local / "results" / "demo", cluster / "results" / "demo")
    _run_on_the_cluster(cluster, env, tmp_path)
    # the cluster's adapters evaluated here, outside Slurm, give the same results (that the trainings are the same
    # wherever they run is the training tests' matter: two processes against one, resumed against uninterrupted)
    for products in ("adapters", "tasks", "corpora"):
        if (cluster / "results" / products).exists():
            shutil.copytree(cluster / "results" / products, local / "results" / products)
    proc = subprocess.run([*SNAKEMAKE, "--cores", "1", "--configfile", "reduced.yaml"], cwd=local, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert set(job_counts(proc.stdout + proc.stderr)) == {"evaluate", "report", "all"}, proc.stderr[-3000:]

    log_dir = cluster / ".snakemake" / "slurm_logs"
    slurm_logs = list(log_dir.rglob("*.log"))
    rules = {p.relative_to(log_dir).parts[0] for p in slurm_logs}
    assert {"rule_train_lang_adapter", "rule_train_task", "group_evaluations_evaluate"} <= rules, rules
    # Slurm's own record of the jobs (squeue keeps finished jobs for MinJobAge): each rule ran as a job
    jobs = [line.split("|") for line in subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i|%T|%k"], env=env,
                                                        capture_output=True, text=True).stdout.splitlines()]
    completed = [comment for _, state, comment in jobs if state == "COMPLETED"]  # comment: rule_<name>[_wildcards...]
    count = lambda rule: sum(c == rule or c.startswith(rule + "_wildcards") for c in completed)  # noqa: E731
    assert (count("rule_train_task"), count("rule_train_lang_adapter"), count("rule_report")) == (1, 2, 1), jobs
    # the two evaluation jobs (en and qac) ran as one group: one Slurm job, both evaluations in it
    groups = [c for c in completed if "evaluations" in c]
    assert len(groups) == 1 and count("rule_evaluate") == 0, jobs
    [group_log] = (log_dir / "group_evaluations_evaluate").rglob("*.log")
    assert "2 of 2 steps (100%) done" in group_log.read_text()
    assert (cluster / "results/report/results.csv").read_text() == (local / "results/report/results.csv").read_text()


def _run_on_the_cluster(cluster: Path, env: dict, tmp_path: Path) -> None:
    """The reduced demo through the shipped Slurm profile, adjusted to this one-node cluster."""
    profile = yaml.safe_load((REPO / "configs/profiles/slurm/config.yaml").read_text())
    # this cluster's partition, no account (no accounting database here), and memory this machine has;
    # the first status check 6 s after submission, so most of these ~15 s jobs are seen done at the second
    profile["default-resources"].update(slurm_partition="debug", mem_mb=1000)
    del profile["default-resources"]["slurm_account"]
    for resources in profile["set-resources"].values():
        resources["mem_mb"] = 1000
    # the evaluation jobs go as groups: two per Slurm job on this 2-CPU node (a group's resources are its jobs' sum)
    assert profile["groups"] == ["evaluate=evaluations"]
    profile["group-components"] = ["evaluations=2"]
    profile.update({"slurm-status-command": "squeue", "slurm-keep-successful-logs": True,
                    "slurm-init-seconds-before-status-checks": 6, "seconds-between-status-checks": 2,
                    "latency-wait": 5})
    (tmp_path / "profile").mkdir()
    (tmp_path / "profile" / "config.yaml").write_text(yaml.safe_dump(profile))
    proc = subprocess.run([*SNAKEMAKE, "--profile", str(tmp_path / "profile"), "--configfile", "reduced.yaml"],
                          cwd=cluster, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
