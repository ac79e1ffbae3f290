"""`ragcorp-operator`: render a resource's children offline, or run the operator.

ragcorp-operator render -f RESOURCE.yaml     # the manifests the operator would apply
ragcorp-operator run [--namespace NS ...]    # like `kopf run`, from kubeconfig or in-cluster
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

from ragcorp_operator.spec import SpecError


def _render(path: str) -> int:
    from ragcorp_operator.plan import render_resource

    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    documents = [d for d in yaml.safe_load_all(text) if d]
    try:
        manifests = [m for document in documents for m in render_resource(document)]
    except SpecError as exc:
        print(f"ragcorp-operator: invalid resource: {exc}", file=sys.stderr)
        return 1
    print(yaml.safe_dump_all(manifests, sort_keys=False), end="")
    return 0


def _run(namespaces: list[str], liveness_port: int, standalone: bool) -> int:
    import asyncio

    import kopf

    from ragcorp_operator import handlers  # noqa: F401  (registers the handlers)

    # kopf's own CLI sets up logging; called as a library it must be told, or `kubectl logs` stays empty.
    kopf.configure(log_format=kopf.LogFormat.JSON, log_refkey="resource")
    asyncio.run(
        kopf.operator(
            clusterwide=not namespaces,
            namespaces=namespaces,
            standalone=standalone,
            # A named peering is mandatory: replicas wait for their peering object rather than all act at once.
            peering_name=None if standalone else os.environ.get("RAGCORP_PEERING_NAME", "ragcorp-operator"),
            liveness_endpoint=f"http://0.0.0.0:{liveness_port}/healthz" if liveness_port else None,
        )
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ragcorp-operator", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    render = commands.add_parser("render", help="print the manifests for a RagCorpDeployment, offline")
    render.add_argument("-f", "--filename", required=True, help="a YAML file, or - for stdin")
    run = commands.add_parser("run", help="run the operator against the current cluster")
    run.add_argument("--namespace", "-n", action="append", default=[], help="watch only these (default: all)")
    run.add_argument("--liveness-port", type=int, default=8080, help="0 disables the liveness endpoint")
    run.add_argument("--standalone", action="store_true", help="no peering (single replica, or tests)")
    args = parser.parse_args(argv)
    if args.command == "render":
        return _render(args.filename)
    return _run(args.namespace, args.liveness_port, args.standalone)


if __name__ == "__main__":
    sys.exit(main())
