"""What the MPI tests share: the mpirun command line (oversubscribed, and
--allow-run-as-root as root) and a run of nextuser, alone or under mpirun,
bounded in time so that a hang fails a test instead of blocking it."""
import os
import subprocess


def launcher(mpirun, ranks):
    cmd = [mpirun, "--oversubscribe", "-np", str(ranks)]
    if os.geteuid() == 0:
        cmd.insert(1, "--allow-run-as-root")
    return cmd


def run(exe, mpirun, args, ranks=None, limit=60):
    """nextuser ARGS (under mpirun -np RANKS when given); a timeout is
    returned as status 124 with the message in stderr."""
    cmd = ([] if ranks is None else launcher(mpirun, ranks)) + [exe] + args
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(cmd, 124, "", "timed out after %d s" % limit)
