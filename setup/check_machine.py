"""Can the kit's TensorFlow be installed here? `make` asks this before it creates .venv/.

TensorFlow 2.21 publishes builds (wheels) for 64-bit Python on Linux on x86-64 and ARM64, macOS 12 or later
on Apple silicon and Windows, and no source to build from. The kit's Makefile and `.venv/bin/` need Linux or
macOS, so on Windows the kit runs inside WSL. Anywhere else pip would fail after minutes with "No matching
distribution found for tensorflow==2.21.0"; this says what to do instead, in one line, and exits 1.
Under WSL, a kit on a Windows drive (/mnt/c/...) gets a note: it works there, slowly.

Run by the Python that will create .venv/: `python3.11 setup/check_machine.py`.
"""

import os
import platform
import re
import struct
import sys

SUPPORTED = {("Linux", "x86_64"), ("Linux", "aarch64"), ("Darwin", "arm64")}
CLOUD = "or follow the course on a rented cloud GPU box (setup/README.md)"
WINDOWS = ("run the kit inside WSL: `wsl --install` once in PowerShell, then clone the kit and run make in the "
           "Ubuntu terminal it opens")
MAC = ("on an Apple silicon Mac, install an arm64 Python 3.11 (python.org's macOS installer) instead of an "
       "Intel one running under Rosetta. The last TensorFlow for Intel Macs was 2.16.2: on an Intel Mac, use a "
       f"Linux machine {CLOUD}")
PI = "(on a Raspberry Pi 3, 4 or 5: install the 64-bit Raspberry Pi OS)"


def main():
    system, machine = platform.system(), platform.machine()  # the kernel's: a 32-bit Python may run on it
    bits = struct.calcsize("P") * 8
    macos = platform.mac_ver()[0]  # "" elsewhere
    old_macos = system == "Darwin" and int(macos.split(".")[0] or 0) < 12  # TensorFlow's Mac builds need 12
    if (system, machine) in SUPPORTED and bits == 64 and not old_macos:
        if "microsoft" in platform.release().lower() and re.match(r"/mnt/[a-zA-Z]/", os.getcwd() + "/"):  # WSL
            print(f"note: the kit is on a Windows drive ({os.getcwd()}), which WSL reads and writes through a slow "
                  "bridge: installing and the lessons take longer there. Microsoft advises keeping projects in WSL's "
                  "own file system: `cd ~`, clone the kit again there and run make in it (or carry on here).",
                  file=sys.stderr)
        return 0
    if (system, machine, bits) == ("Darwin", "arm64", 64):
        advice = f"TensorFlow's builds for Apple silicon need macOS 12 or later, and this Mac has {macos}: update macOS"
    elif (system, machine) in SUPPORTED:
        advice = f"TensorFlow needs a 64-bit Python, and this one is a 32-bit program {PI}"
    elif system.startswith(("Windows", "CYGWIN", "MSYS", "MINGW")):
        advice = WINDOWS
    elif system == "Darwin":
        advice = MAC
    else:
        advice = f"use a Linux machine on x86-64 or ARM64 (aarch64) {PI}, {CLOUD}"
    print(f"error: TensorFlow 2.21, which the kit runs on, has no build for this machine ({system} on {machine}, "
          f"{bits}-bit, as {sys.executable} sees it): {advice}.", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
