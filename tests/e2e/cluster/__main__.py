"""`make cluster`: the real control plane with one node, in the foreground until Ctrl-C.

    python -m tests.e2e.cluster [--dir .cluster/run]

Writes the admin kubeconfig to `.cluster/kubeconfig`, prints `cluster: database <url>`
(the URL Pods reach the embedded PostgreSQL at, for the Secret a RagCorpDeployment
references) and `cluster: ready`, then runs until SIGINT or SIGTERM and stops every
process it started.
"""

from __future__ import annotations

import argparse
import faulthandler
import shutil
import signal
import threading
from pathlib import Path

from tests.e2e.cluster.binaries import ROOT
from tests.e2e.cluster.cluster import missing_requirement, running_cluster


def main() -> None:
    parser = argparse.ArgumentParser(prog="make cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=ROOT / ".cluster" / "run", help="the cluster's files")
    args = parser.parse_args()
    if reason := missing_requirement():
        parser.exit(2, f"make cluster: {reason}\n")
    shutil.rmtree(args.dir, ignore_errors=True)
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1` prints every thread's stack
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        with running_cluster(args.dir) as cluster:
            exported = ROOT / ".cluster" / "kubeconfig"
            shutil.copyfile(cluster.kubeconfig, exported)
            exported.chmod(0o600)
            print(f"cluster: kube-apiserver {cluster.server_version()}", flush=True)
            print(f"cluster: kubeconfig {exported}", flush=True)
            print(f"cluster: kubectl {cluster.binaries['kubectl']}", flush=True)
            print(f"cluster: database {cluster.database_url}", flush=True)
            print(f"cluster: ready in {cluster.started_seconds:.1f} s", flush=True)
            stop.wait()
            print("cluster: stopping", flush=True)
    except RuntimeError as exc:  # a component that would not start (another cluster on this machine, say)
        parser.exit(1, f"make cluster: {exc}\n")


if __name__ == "__main__":
    main()
