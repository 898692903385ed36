"""Stops an idle course machine: run every few minutes by a systemd timer.

`setup/bootstrap.sh` installs it as `course-idle-stop.timer`. Each run asks
JupyterLab (on 127.0.0.1) whether any kernel is busy, and when a kernel last
did anything, and `nvidia-smi` how busy the GPU is. It records the last time
anything was busy (a kernel's last activity counts, so cells run between two
checks do too); once nothing has been busy for `--minutes`, it shuts the
machine down. On an EC2 box launched by
`setup/gpubox.py` a shutdown *stops* the instance (the GPU bill stops, the
disk is kept); `.venv/bin/python setup/gpubox.py start` brings it back. On
Azure a shutdown does not stop the bill: a VM is billed until it is
deallocated (`bootstrap.sh` says so there).

With `--exit-when-idle` it does not shut down: it keeps checking every
`--interval` seconds and exits once the machine is idle. `setup/skypilot.yaml`
runs it that way as the cluster's job, so SkyPilot's own autostop (which waits
for jobs) stops the machine through the cloud's API, on any cloud.

Standard library only: it runs with the system's python3, outside the venv.
Change the minutes in /etc/default/course-idle-stop (0 turns it off).
"""

import argparse
import datetime
import json
import pathlib
import shutil
import subprocess
import sys
import time
import urllib.request

# /run is emptied at each boot, so a restarted machine gets its full idle time again.
DEFAULT_STATE = "/run/course-idle-stop/last-busy"
SHUTDOWN = ["shutdown", "-h", "now", "course idle auto-stop"]  # what stops the machine (tests replace it)


def jupyter_kernels(jupyter_url, token, timeout=10):
    """Returns Jupyter's list of kernels (dicts), or None when Jupyter did not answer."""
    request = urllib.request.Request(f"{jupyter_url}/api/kernels",
                                     headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            kernels = json.load(response)
    except (OSError, ValueError):
        return None
    return kernels if isinstance(kernels, list) else None


def busy_kernels(jupyter_url, token, timeout=10):
    """Returns how many Jupyter kernels are busy, or None when Jupyter did not answer."""
    return count_busy(jupyter_kernels(jupyter_url, token, timeout))


def count_busy(kernels):
    """Returns how many of `kernels` (Jupyter's list) are busy, or None for None (Jupyter did not answer)."""
    if kernels is None:
        return None
    return sum(1 for kernel in kernels if isinstance(kernel, dict) and kernel.get("execution_state") == "busy")


def last_kernel_activity(kernels):
    """Returns the latest `last_activity` of the kernels (epoch seconds), or None.

    Jupyter Server sets a kernel's `last_activity` on each message the kernel sends, so a cell that ran
    between two checks counts too. (The server's own /api/status `last_activity` is not used: every API
    request moves it, this script's own request for /api/kernels included.)
    """
    times = []
    for kernel in kernels or []:
        text = kernel.get("last_activity") if isinstance(kernel, dict) else None
        try:  # Jupyter writes UTC as ...Z, which Python before 3.11 (the box's python3) does not read
            when = datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
        except ValueError:
            continue
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.timezone.utc)
        times.append(when.timestamp())
    return max(times, default=None)


def gpu_utilization(nvidia_smi="nvidia-smi"):
    """Returns the busiest GPU's utilization in percent, or None without nvidia-smi."""
    if shutil.which(nvidia_smi) is None:
        return None
    try:
        output = subprocess.run(
            [nvidia_smi, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=30, check=True).stdout
        values = [int(line.strip()) for line in output.splitlines() if line.strip()]
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return max(values) if values else None


def boot_time():
    """Returns when this machine booted (epoch seconds), or 0 if unknown."""
    try:
        uptime = float(pathlib.Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    return time.time() - uptime


def check(minutes, state_file, kernels, gpu_percent, gpu_busy_percent, now=None, booted_at=0.0,
          last_activity=None):
    """Decides whether to stop; updates the last-busy time in state_file.

    Args:
        minutes: idle minutes before stopping; 0 never stops.
        state_file: path holding the last time (epoch seconds) anything was busy.
        kernels: number of busy Jupyter kernels, or None if Jupyter did not answer
            (not running: nothing to lose by stopping).
        gpu_percent: GPU utilization in percent, or None without a GPU.
        gpu_busy_percent: utilization at or above which the GPU counts as busy.
        now: the current time in epoch seconds (for tests).
        booted_at: boot time; a last-busy time from before it is ignored, so a
            restarted machine gets its full idle time again.
        last_activity: the latest kernel activity (epoch seconds), or None; a
            later one than the last-busy time becomes the last-busy time.

    Returns:
        (stop, message): whether to shut down, and a line for the log.
    """
    now = time.time() if now is None else now
    state_file = pathlib.Path(state_file)
    busy = bool(kernels) or (gpu_percent is not None and gpu_percent >= gpu_busy_percent)
    try:
        last_busy = float(state_file.read_text())
    except (OSError, ValueError):
        last_busy = None
    latest = last_busy
    if busy or last_busy is None or last_busy < booted_at:
        latest = now
    elif last_activity is not None and last_activity > last_busy:  # a cell ran since the last check
        latest = min(last_activity, now)
    if latest != last_busy:
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state_file.write_text(f"{latest:.0f}\n")
        last_busy = latest
    idle_minutes = (now - last_busy) / 60
    gpu = "no GPU" if gpu_percent is None else f"GPU {gpu_percent}%"
    jupyter = "Jupyter not answering" if kernels is None else f"{kernels} busy kernel(s)"
    summary = f"{jupyter}, {gpu}, idle for {idle_minutes:.0f} of {minutes} min"
    if minutes > 0 and idle_minutes >= minutes:
        return True, f"{summary}: stopping the machine"
    return False, summary


def whole_number_or(default, name):
    """An argparse type: a whole number >= 0, else `default` and a line for the log.

    The timer passes what /etc/default/course-idle-stop holds: a typo there must not turn the
    auto-stop off (a usage error on every run would leave the machine running for good).
    """
    def parse(text):
        if text.strip().isdigit():
            return int(text)
        print(f"{name} {text!r} in /etc/default/course-idle-stop is not a whole number: using {default}",
              file=sys.stderr)
        return default
    return parse


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=whole_number_or(60, "IDLE_MINUTES"), default=60,
                        help="idle minutes before the machine stops; 0 turns the stop off (default 60)")
    parser.add_argument("--gpu-busy-percent", type=whole_number_or(10, "GPU_BUSY_PERCENT"), default=10,
                        help="GPU use at or above which the machine counts as busy (default 10)")
    parser.add_argument("--token-file", required=True, help="file holding JupyterLab's token")
    parser.add_argument("--jupyter-url", default="http://127.0.0.1:8888", help="default http://127.0.0.1:8888")
    parser.add_argument("--state-file", default=DEFAULT_STATE,
                        help=f"where the last busy time is kept (default {DEFAULT_STATE})")
    parser.add_argument("--nvidia-smi", default="nvidia-smi", help="the nvidia-smi program to ask (default nvidia-smi)")
    parser.add_argument("--dry-run", action="store_true", help="say what it would do, do not stop")
    parser.add_argument("--exit-when-idle", action="store_true",
                        help="keep checking; exit (instead of shutting down) once idle")
    parser.add_argument("--interval", type=float, default=60, help="seconds between checks (default 60)")
    args = parser.parse_args(argv)
    while True:
        try:
            token = pathlib.Path(args.token_file).read_text().strip()
        except OSError:
            token = ""
        try:
            kernels = jupyter_kernels(args.jupyter_url, token)
            stop, message = check(args.minutes, args.state_file,
                                  count_busy(kernels),
                                  gpu_utilization(args.nvidia_smi), args.gpu_busy_percent,
                                  booted_at=boot_time(), last_activity=last_kernel_activity(kernels))
        except OSError as error:  # the last-busy time cannot be kept: say so in the timer's log
            print(f"cannot record the last busy time in {args.state_file} ({error.strerror}): "
                  "pass --state-file a writable path", file=sys.stderr)
            return 1
        print(message, flush=True)
        if not args.exit_when_idle or stop:
            break
        time.sleep(args.interval)
    if stop and not args.dry_run and not args.exit_when_idle:
        subprocess.run(SHUTDOWN, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
