"""A container's start, done the way a container runtime does it (run by the kubelet).

Runs as root inside `unshare --mount --net --propagation private`: it waits for the
kubelet to move the Pod's end of a veth pair in as eth0 and gives it the Pod IP, and
every mount below is the Pod's alone: `/dev` becomes an overlay holding the termination-message file the
kubelet created (the program writes `/dev/termination-log` and the kubelet reads what
it left), `/dev/shm` a fresh tmpfs, `/etc/hosts` the cluster's DNS records, and each
volume is bound at its mountPath. Then it drops to the container's user and execs the
command with the container's environment. Standalone on purpose: it imports nothing
from the project, and it runs one program.

    python launcher.py SPEC.json
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def network(address: str, gateway: str) -> None:
    """The Pod's own network namespace: loopback, and eth0 (moved in by the kubelet) with the Pod IP."""
    deadline = time.monotonic() + 30
    # Asked of netlink in this namespace (/sys/class/net still shows the node's devices, eth0 among them).
    while subprocess.run(["ip", "link", "show", "dev", "eth0"], capture_output=True).returncode != 0:
        if time.monotonic() > deadline:
            sys.exit("launcher: the kubelet never attached eth0")
        time.sleep(0.01)
    for command in (
        ["link", "set", "lo", "up"],
        ["addr", "add", f"{address}/32", "dev", "eth0"],
        ["link", "set", "eth0", "up"],
        ["route", "add", gateway, "dev", "eth0", "scope", "link"],
        ["route", "add", "default", "via", gateway, "dev", "eth0"],
    ):
        subprocess.run(["ip", *command], check=True)


def main() -> None:
    with open(sys.argv[1]) as handle:
        spec = json.load(handle)
    network(spec["network"]["address"], spec["network"]["gateway"])
    layers = f"lowerdir=/dev,upperdir={spec['dev_upper']},workdir={spec['dev_work']}"
    mount("-t", "overlay", "overlay", "-o", layers, "/dev")
    mount("-t", "tmpfs", "-o", "mode=1777", "shm", "/dev/shm")
    mount("--bind", spec["hosts"], "/etc/hosts")
    if spec.get("expose"):
        # The program's interpreter lives under a directory only root may enter (e.g. /root/.pyenv):
        # cover that directory with an empty tmpfs and put the one subtree back, as an image holds it.
        closed, opened = spec["expose"]
        stash = spec["stash"]
        os.makedirs(stash, exist_ok=True)
        mount("--bind", opened, stash)
        mount("-t", "tmpfs", "-o", "mode=755", "hidden", closed)
        os.makedirs(opened)
        mount("--move", stash, opened)
    for volume in spec["mounts"]:
        os.makedirs(volume["target"], exist_ok=True)
        mount("--bind", volume["source"], volume["target"])
    if spec.get("gid") is not None:
        os.setgroups([])
        os.setgid(spec["gid"])
    if spec.get("uid") is not None:
        os.setuid(spec["uid"])
    os.chdir(spec.get("workdir") or "/")
    argv = spec["argv"]
    os.execvpe(argv[0], argv, spec["env"])


if __name__ == "__main__":
    main()
