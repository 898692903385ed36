#!/usr/bin/env bash
# Makes an Ubuntu 22.04/24.04 machine with an NVIDIA GPU ready for the course:
# driver check, the course's virtual environment with TensorFlow's CUDA extra,
# JupyterLab on localhost as a systemd service, and an idle auto-stop.
#
# setup/gpubox.py sends this file, gzipped, as the box's user data (it runs as root at
# first boot). On your own GPU machine, from the kit's folder:
#
#     sudo setup/bootstrap.sh --dry-run      # list the steps, change nothing
#     sudo setup/bootstrap.sh                # do them (safe to run again)
#
# Settings (flags, or environment variables of the same name):
#     --repo URL          COURSE_REPO    clone the kit from here if it is not on disk
#     --dir PATH          COURSE_DIR     where the kit lives (default: this checkout,
#                                        else ~COURSE_USER/cnn-course-kit)
#     --user NAME         COURSE_USER    who runs JupyterLab (default: the sudo user)
#     --idle-minutes N    IDLE_MINUTES   stop the machine after N idle minutes; 0 turns
#                                        the auto-stop off (default: 60 on a cloud VM,
#                                        0 on any other machine, e.g. your workstation)
set -euo pipefail

TF_VERSION="2.21.0"
DRY_RUN=0
COURSE_REPO="${COURSE_REPO:-}"
COURSE_DIR="${COURSE_DIR:-}"
COURSE_USER="${COURSE_USER:-${SUDO_USER:-$(id -un)}}"
IDLE_MINUTES="${IDLE_MINUTES:-}"
GPU_BUSY_PERCENT="${GPU_BUSY_PERCENT:-10}"

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --repo) COURSE_REPO="${2:?--repo needs a URL}"; shift ;;
        --dir) COURSE_DIR="${2:?--dir needs a path}"; shift ;;
        --user) COURSE_USER="${2:?--user needs a name}"; shift ;;
        --idle-minutes) IDLE_MINUTES="${2:?--idle-minutes needs a number}"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bootstrap.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done

# A cloud VM stops when idle (on AWS and Google Cloud its compute bill stops too;
# on Azure it does not, see on_azure); a learner's own machine is never powered
# off unless they ask for it with --idle-minutes.
# Told apart by the firmware's own names (a Surface laptop's vendor is also
# Microsoft, but its product is not "Virtual Machine").
DMI_DIR="${COURSE_DMI_DIR:-/sys/class/dmi/id}"
ROOT_DIR="${COURSE_ROOT_DIR:-}"  # empty: the system's own folders (tests install under a folder of their own)
# systemd makes this folder when it boots the machine; the tests point at a folder of their own
SYSTEMD_RUN_DIR="${COURSE_SYSTEMD_RUN_DIR:-/run/systemd/system}"
UNITS="$ROOT_DIR/etc/systemd/system"
dmi() { cat "$DMI_DIR/$1" 2>/dev/null || true; }
# Azure bills a VM's compute until it is deallocated: a shutdown from inside leaves it "Stopped", still billed.
on_azure() { [[ "$(dmi sys_vendor)" == "Microsoft Corporation" && "$(dmi product_name)" == "Virtual Machine" ]]; }
on_cloud_vm() {
    [[ "$(dmi sys_vendor)" == "Amazon EC2" || "$(dmi bios_version)" == *amazon* ]] ||  # AWS (Nitro, Xen)
        [[ "$(dmi product_name)" == "Google Compute Engine" ]] ||                    # Google Cloud
        on_azure ||                                                                  # Azure
        [[ "$(dmi chassis_asset_tag)" == "OracleCloud.com" ]]                        # Oracle Cloud
}
if [[ -z "$IDLE_MINUTES" ]]; then
    if on_cloud_vm; then IDLE_MINUTES=60; else IDLE_MINUTES=0; fi
fi
if ! [[ "$IDLE_MINUTES" =~ ^[0-9]+$ ]]; then
    echo "bootstrap.sh: --idle-minutes must be a whole number of minutes, not '$IDLE_MINUTES'" >&2
    exit 2
fi

COURSE_HOME="$(getent passwd "$COURSE_USER" | cut -d: -f6 || true)"
if [[ -z "$COURSE_HOME" ]]; then
    echo "bootstrap.sh: there is no user '$COURSE_USER'; pass --user NAME" >&2
    exit 2
fi
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# A --dir typed as ~/kit, or relative to here, made absolute: the systemd unit's
# WorkingDirectory= and ExecStart= must be absolute paths. ~ is the course user's home.
if [[ -n "$COURSE_DIR" ]]; then
    case "$COURSE_DIR" in
        \~) COURSE_DIR="$COURSE_HOME" ;;
        \~/*) COURSE_DIR="$COURSE_HOME/${COURSE_DIR#\~/}" ;;
    esac
    COURSE_DIR="$(realpath --canonicalize-missing --no-symlinks -- "$COURSE_DIR")"
fi
if [[ -z "$COURSE_DIR" ]]; then
    if [[ -f "$SCRIPT_DIR/../requirements.txt" ]]; then
        COURSE_DIR="$(cd "$SCRIPT_DIR/.." && pwd)"
    else
        COURSE_DIR="$COURSE_HOME/cnn-course-kit"
    fi
fi
STATE_DIR="$COURSE_HOME/.course"
TOKEN_FILE="$STATE_DIR/jupyter-token"
VENV="$COURSE_DIR/.venv"

STEP=0
step() {
    STEP=$((STEP + 1))
    echo "==> step $STEP/8: $*"
}

# Runs a command, or only shows it under --dry-run.
run() {
    if [[ "$DRY_RUN" == 1 ]]; then
        echo "    would run: $*"
    else
        "$@"
    fi
}

# Runs a command as the course's user (who owns the kit and its venv).
as_user() {
    if [[ "$(id -un)" == "$COURSE_USER" ]]; then
        run "$@"
    else
        run sudo -u "$COURSE_USER" -H "$@"
    fi
}

# Writes stdin to a file with the given mode (and owner), or shows it under --dry-run.
write_file() {
    local path="$1" mode="$2" owner="${3:-root}"
    if [[ "$DRY_RUN" == 1 ]]; then
        echo "    would write: $path (mode $mode)"
        cat >/dev/null
    else
        if [[ -L "$path" || -L "$(dirname "$path")" ]]; then  # root must not write or chown through a link
            echo "bootstrap.sh: $path (or its folder) is a symbolic link; refusing to write through it" \
                 "as root. Remove the link, then run bootstrap.sh again." >&2
            exit 2
        fi
        [[ -d "$(dirname "$path")" ]] || install -d -o "$owner" "$(dirname "$path")"
        (umask 077 && cat >"$path")  # a new file is readable by no one else, even before the chmod
        chmod "$mode" "$path"
        chown "$owner" "$path"
    fi
}

# Makes (or, made earlier, restricts) a folder only the course user can read: ~/.course holds the Jupyter token.
private_dir() {
    local path="$1"
    if [[ -L "$path" ]]; then  # root must not chown or chmod what a link points at
        echo "bootstrap.sh: $path (or its folder) is a symbolic link; refusing to write through it" \
             "as root. Remove the link, then run bootstrap.sh again." >&2
        exit 2
    fi
    run install -d -m 700 -o "$COURSE_USER" "$path"
}

need_root() {
    if [[ "$DRY_RUN" == 0 && "$(id -u)" != 0 ]]; then
        echo "bootstrap.sh: run it with sudo (it installs packages and systemd services)," \
             "or add --dry-run to see the steps" >&2
        exit 2
    fi
}

[[ "$DRY_RUN" == 1 ]] && echo "Dry run: listing the steps; nothing is changed."
echo "Course kit in $COURSE_DIR for user $COURSE_USER; idle auto-stop: $IDLE_MINUTES min"
if (( 10#$IDLE_MINUTES != 0 )) && on_azure; then
    echo "    NOTE: on Azure the idle auto-stop (and a failed setup's stop) only shuts the VM down, and Azure" \
         "keeps billing a shut-down VM until it is deallocated: when you are done, run" \
         "\`az vm deallocate --resource-group GROUP --name VM\` or press Stop in the Azure portal."
fi
need_root
# JupyterLab and the idle auto-stop are systemd services: without systemd (a container, WSL without it) the
# steps below would write their files and then fail, so nothing is changed.
if [[ ! -d "$SYSTEMD_RUN_DIR" ]]; then
    if [[ "$DRY_RUN" == 1 ]]; then
        echo "    NOTE: this machine does not run systemd ($SYSTEMD_RUN_DIR is missing): a run without" \
             "--dry-run would stop here and change nothing."
    else
        echo "bootstrap.sh: this machine does not run systemd ($SYSTEMD_RUN_DIR is missing), and the course's" \
             "JupyterLab and idle auto-stop are systemd services; nothing was changed. In WSL, turn systemd on" \
             "([boot] systemd=true in /etc/wsl.conf, then \`wsl --shutdown\` in Windows); in a container, run" \
             "\`make lab\` in the kit's folder instead." >&2
        exit 2
    fi
fi

# A cloud box whose setup fails half-way would bill until someone notices. Until the idle
# auto-stop is installed (step 4), a failing step schedules a shutdown in IDLE_MINUTES instead.
IDLE_MINUTES=$((10#$IDLE_MINUTES))  # "060" is 60, "00" is 0
IDLE_STOP_INSTALLED=0  # a run again on a set-up box: its timer is there already
if [[ "$DRY_RUN" == 0 ]] && systemctl is-enabled --quiet course-idle-stop.timer 2>/dev/null; then
    IDLE_STOP_INSTALLED=1
fi
stop_later_if_setup_failed() {
    local status=$?
    if [[ "$status" != 0 && "$DRY_RUN" == 0 && "$IDLE_MINUTES" != 0 && "$IDLE_STOP_INSTALLED" == 0 ]] && on_cloud_vm; then
        echo "bootstrap.sh: setup stopped at step $STEP/8 (exit status $status) before the idle auto-stop" \
             "was installed, so this machine shuts down in $IDLE_MINUTES minutes. Fix the step above and" \
             "run bootstrap.sh again (sudo shutdown -c cancels the shutdown)." >&2
        shutdown -h "+$IDLE_MINUTES" "course setup failed; stopping in $IDLE_MINUTES minutes" || true
        # A scheduled shutdown lasts until the next boot, and the user data that ran this runs only
        # at the first: a box restarted before the shutdown (AWS restarts a stopped spot box, or
        # `gpubox.py start`) would bill with nothing to stop it. This timer stops it after every boot.
        if cat 2>/dev/null >"$UNITS/course-setup-failed.service" <<EOF &&
[Unit]
Description=Stop this machine: its course setup failed (sudo setup/bootstrap.sh again removes this)

[Service]
Type=oneshot
ExecStart=/usr/bin/systemctl poweroff
EOF
            cat 2>/dev/null >"$UNITS/course-setup-failed.timer" <<EOF &&
[Unit]
Description=Stop this machine $IDLE_MINUTES minutes after each boot until its course setup succeeds

[Timer]
OnBootSec=${IDLE_MINUTES}min

[Install]
WantedBy=timers.target
EOF
            systemctl daemon-reload 2>/dev/null && systemctl enable course-setup-failed.timer 2>/dev/null; then
            echo "bootstrap.sh: it also stops $IDLE_MINUTES minutes after each restart until setup succeeds" \
                 "(sudo systemctl disable --now course-setup-failed.timer keeps it on)." >&2
        else
            echo "bootstrap.sh: WARN: could not install course-setup-failed.timer, so a restart of this" \
                 "machine is not stopped by itself: stop it yourself when you are done." >&2
        fi
    fi
}
trap stop_later_if_setup_failed EXIT
# apt-get waits for the package lock (unattended-upgrades holds it at a cloud box's first boot)
APT=(apt-get -o DPkg::Lock::Timeout=600)
# `apt-get update` also takes the package lists' lock, which that option may not cover ("Could not get
# lock /var/lib/apt/lists/lock"), and needs the network, which plain `update` treats as a mere warning
# (it exits 0): with --error-on=any it is tried up to 10 times, a minute apart, then once as plain
# `update`, so that one unreachable package source does not stop the setup.
apt_update() {
    local try
    for try in 1 2 3 4 5 6 7 8 9 10; do
        run "${APT[@]}" update -qq --error-on=any && return 0
        echo "    apt-get update failed (try $try of 10); trying again in a minute"
        sleep "${APT_RETRY_SECONDS:-60}"
    done
    run "${APT[@]}" update -qq
}

step "check the NVIDIA driver"
if command -v nvidia-smi >/dev/null && nvidia-smi >/dev/null 2>&1; then
    echo "    OK: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -n 1)"
elif command -v lspci >/dev/null && lspci | grep -qi nvidia; then
    echo "    an NVIDIA GPU without a working driver: installing one with ubuntu-drivers"
    apt_update
    run "${APT[@]}" install -y -qq ubuntu-drivers-common
    run ubuntu-drivers install
    echo "    reboot once the script has finished, so the new driver loads"
else
    echo "    WARN: no NVIDIA GPU here; the course still runs, on the CPU (sample mode)"
fi

step "install Python 3.11, git and curl"
if command -v python3.11 >/dev/null && python3.11 -c 'import venv, ensurepip' 2>/dev/null \
        && command -v git >/dev/null && command -v curl >/dev/null; then
    echo "    OK: already installed"
else
    if ! apt-cache show python3.11-venv >/dev/null 2>&1; then
        # Ubuntu 24.04 ships Python 3.12; the deadsnakes archive has 3.11.
        run "${APT[@]}" install -y -qq software-properties-common
        run add-apt-repository -y ppa:deadsnakes/ppa
    fi
    apt_update
    run "${APT[@]}" install -y -qq python3.11 python3.11-venv git curl
fi

step "get the course kit into $COURSE_DIR"
if [[ -f "$COURSE_DIR/requirements.txt" ]]; then
    echo "    OK: already there (left as it is)"
elif [[ -n "$COURSE_REPO" ]]; then
    as_user git clone --quiet "$COURSE_REPO" "$COURSE_DIR"
else
    echo "bootstrap.sh: $COURSE_DIR has no kit and no --repo URL was given to clone it from" >&2
    exit 2
fi

step "install the idle auto-stop ($IDLE_MINUTES idle minutes, GPU busy above $GPU_BUSY_PERCENT%)"
# A root-owned copy: the timer runs it as root, so it must not be editable by the user.
run install -D -m 755 "$COURSE_DIR/setup/idle_stop.py" "$ROOT_DIR/usr/local/lib/course/idle_stop.py"
write_file "$ROOT_DIR/etc/default/course-idle-stop" 644 <<EOF
# Stop the machine after this many minutes with no kernel activity and the GPU
# under GPU_BUSY_PERCENT utilization. 0 turns the auto-stop off.
IDLE_MINUTES=$IDLE_MINUTES
GPU_BUSY_PERCENT=$GPU_BUSY_PERCENT
EOF
write_file "$UNITS/course-idle-stop.service" 644 <<EOF
[Unit]
Description=Stop this machine when the course has been idle (see /etc/default/course-idle-stop)

[Service]
Type=oneshot
EnvironmentFile=/etc/default/course-idle-stop
ExecStart=/usr/bin/python3 /usr/local/lib/course/idle_stop.py --minutes \${IDLE_MINUTES} --gpu-busy-percent \${GPU_BUSY_PERCENT} --token-file $TOKEN_FILE
EOF
write_file "$UNITS/course-idle-stop.timer" 644 <<EOF
[Unit]
Description=Check every 5 minutes whether the course is idle

[Timer]
OnBootSec=10min
OnUnitActiveSec=5min
AccuracySec=1s

[Install]
WantedBy=timers.target
EOF
run systemctl daemon-reload
run systemctl enable --now course-idle-stop.timer
IDLE_STOP_INSTALLED=1  # from here on a failed step leaves a box the timer stops
# a shutdown an earlier, failed run scheduled is no longer needed: the timer stops the box when it is idle
if [[ "$DRY_RUN" == 0 ]] && grep -qs "course setup failed" /run/systemd/shutdown/scheduled; then
    shutdown -c "course setup finished: the idle auto-stop takes over" || true
fi
if [[ -e "$UNITS/course-setup-failed.timer" ]]; then  # and so is the stop after each boot (running if restarted)
    run systemctl disable --now course-setup-failed.timer || true
    run rm -f "$UNITS/course-setup-failed.timer" "$UNITS/course-setup-failed.service"
    run systemctl daemon-reload
fi

step "create the course's virtual environment with TensorFlow's CUDA extra"
STAMP="$VENV/.gpu-installed"
REQUIREMENTS_HASH="not cloned yet"
if [[ -f "$COURSE_DIR/requirements.txt" ]]; then
    REQUIREMENTS_HASH="$(sha256sum "$COURSE_DIR/requirements.txt" | cut -c1-16)"
fi
WANTED="tensorflow[and-cuda]==$TF_VERSION requirements $REQUIREMENTS_HASH"
VENV_CHANGED=0  # a new TensorFlow or kit must reach the running JupyterLab (its restart, below)
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANTED" ]]; then
    echo "    OK: $VENV is up to date"
else
    VENV_CHANGED=1
    [[ -x "$VENV/bin/python" ]] || as_user python3.11 -m venv "$VENV"
    as_user "$VENV/bin/python" -m pip install --quiet --upgrade pip
    as_user "$VENV/bin/python" -m pip install --quiet -r "$COURSE_DIR/requirements.txt" \
        "tensorflow[and-cuda]==$TF_VERSION"
    as_user "$VENV/bin/python" -m pip install --quiet --no-deps -e "$COURSE_DIR"
    echo "$WANTED" | write_file "$STAMP" 644 "$COURSE_USER"
fi

step "configure JupyterLab: localhost only, token authentication"
# What course-jupyter runs with: a run again restarts it (ending the learner's kernels) only if one of these, or the
# virtual environment (VENV_CHANGED), changed.
JUPYTER_FILES=("$UNITS/course-jupyter.service" "$STATE_DIR/jupyter_config.py" "$TOKEN_FILE")
jupyter_files() { sha256sum -- "${JUPYTER_FILES[@]}" 2>/dev/null || true; }
JUPYTER_BEFORE="$(jupyter_files)"
private_dir "$STATE_DIR"
if [[ -s "$TOKEN_FILE" ]]; then
    echo "    OK: token already in $TOKEN_FILE"
else
    python3 -c 'import secrets; print(secrets.token_hex(24))' | write_file "$TOKEN_FILE" 600 "$COURSE_USER"
fi
write_file "$STATE_DIR/jupyter_config.py" 644 "$COURSE_USER" <<EOF
# Written by setup/bootstrap.sh: JupyterLab for the course, reached by SSH tunnel.
import pathlib
c.ServerApp.ip = "127.0.0.1"
c.ServerApp.port = 8888
c.ServerApp.open_browser = False
c.ServerApp.root_dir = "$COURSE_DIR"
c.IdentityProvider.token = pathlib.Path("$TOKEN_FILE").read_text().strip()
EOF

step "run JupyterLab as the systemd service course-jupyter"
write_file "$UNITS/course-jupyter.service" 644 <<EOF
[Unit]
Description=JupyterLab for the CNN course (127.0.0.1:8888)
After=network-online.target

[Service]
User=$COURSE_USER
WorkingDirectory=$COURSE_DIR
ExecStart=$VENV/bin/jupyter lab --config=$STATE_DIR/jupyter_config.py
Restart=on-failure

[Install]
WantedBy=multi-user.target
EOF
run systemctl daemon-reload
if [[ "$DRY_RUN" == 1 ]]; then
    echo "    would run: systemctl restart course-jupyter.service, only if its unit, settings or venv changed" \
         "(else systemctl enable --now course-jupyter.service, which starts it if it is not running)"
elif [[ "${VENV_CHANGED:-0}" == 1 || "$(jupyter_files)" != "$JUPYTER_BEFORE" ]]; then
    run systemctl enable course-jupyter.service
    run systemctl restart course-jupyter.service  # new settings: started afresh
else
    echo "    its unit, settings and venv are as they were: started only if not running (running kernels are kept)"
    run systemctl enable --now course-jupyter.service
fi

step "check the setup with python -m utils.doctor"
if [[ "$DRY_RUN" == 1 ]]; then
    echo "    would run: $VENV/bin/python -m utils.doctor"
else
    (cd "$COURSE_DIR" && as_user "$VENV/bin/python" -m utils.doctor) || true
fi
if [[ "$DRY_RUN" == 1 ]]; then
    echo "Dry run done: nothing was changed."
else
    echo "Done. JupyterLab listens on 127.0.0.1:8888; its token is in $TOKEN_FILE."
fi
