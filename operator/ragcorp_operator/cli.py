"""`ragcorp-operator`: render a resource's children offline, or run the operator.

ragcorp-operator render -f RESOURCE.yaml [--no-monitoring]   # the manifests the operator would apply
ragcorp-operator run [--namespace NS ...]    # like `kopf run`, from kubeconfig or in-cluster
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from ragcorp_operator import GROUP, INSTALL_OPERATOR_EXTRA, KIND
from ragcorp_operator.operator_settings import FINALIZER, OperatorSettings
from ragcorp_operator.spec import SpecError


class RenderError(Exception):
    """What is wrong with the input to `render`, as one line."""


def _resources(path: str) -> list[dict[str, Any]]:
    """The RagCorpDeployments in a YAML file (or stdin), refusing anything else by name."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise RenderError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise RenderError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None
    if not documents:
        raise RenderError(f"{path} holds no YAML document")
    for number, document in enumerate(documents, 1):
        kind = document.get("kind") if isinstance(document, dict) else type(document).__name__
        if kind != KIND or str(document.get("apiVersion", "")).split("/")[0] != GROUP:
            raise RenderError(
                f"{path}: document {number} is a {kind or 'document without a kind'}, not a {GROUP} {KIND}"
            )
    return documents


def _render_one(document: dict[str, Any], monitoring: bool) -> list[dict[str, Any]]:
    """A new resource renders as its first install; one with a status (`kubectl get -o yaml`) as
    the state that status records: both colours mid-rollout, the Job of the phase, the preview."""
    from ragcorp_operator.pass_plan import render_recorded
    from ragcorp_operator.plan import PROMETHEUS_RULE, SERVICE_MONITOR, render_resource
    from ragcorp_operator.spec import parse_spec
    from ragcorp_operator.user_requests import Resource

    if not (document.get("status") or {}).get("phase"):
        return render_resource(document, monitoring)
    body = {**document, "metadata": {"name": "ragcorp", "namespace": "default", **(document.get("metadata") or {})}}
    kinds = frozenset({SERVICE_MONITOR, PROMETHEUS_RULE}) if monitoring else frozenset()
    return render_recorded(Resource.from_body(body), parse_spec(document.get("spec") or {}), kinds, datetime.now(UTC))


def _render(path: str, monitoring: bool = True) -> int:
    try:
        manifests = [m for document in _resources(path) for m in _render_one(document, monitoring)]
    except RenderError as exc:
        print(f"ragcorp-operator: {exc}", file=sys.stderr)
        return 1
    except SpecError as exc:
        print(f"ragcorp-operator: invalid resource: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    print(yaml.safe_dump_all(manifests, sort_keys=False), end="")
    return 0


def _run(args: argparse.Namespace) -> int:
    import asyncio

    try:
        import kopf
    except ModuleNotFoundError as exc:
        print(
            f"ragcorp-operator: run needs the operator extra ({exc.name} is missing): {INSTALL_OPERATOR_EXTRA}",
            file=sys.stderr,
        )
        return 1

    from ragcorp_operator import handlers  # noqa: F401  (registers the handlers)
    from ragcorp_operator.cluster_access import ClusterUnreachable, api_client, check_can_watch

    try:  # once, with the reason: kopf would retry an unreachable cluster for ever
        check_can_watch(api_client(), tuple(args.namespace))
    except ClusterUnreachable as exc:
        print(f"ragcorp-operator: cannot run: {exc}", file=sys.stderr)
        return 1

    settings = OperatorSettings(
        resync_seconds=args.resync_seconds,
        metrics_port=args.metrics_port,
        peering_name=args.peering_name,
        peering_priority=args.peering_priority,
        peering_lifetime=args.peering_lifetime,
        namespaces=tuple(args.namespace),
    )
    namespaces, standalone = args.namespace, args.standalone

    # kopf's own CLI sets up logging; called as a library it must be told, or `kubectl logs` stays empty.
    kopf.configure(log_format=kopf.LogFormat.JSON, log_refkey="resource")
    asyncio.run(
        kopf.operator(
            clusterwide=not namespaces,
            namespaces=namespaces,
            standalone=standalone,
            # A named peering is mandatory: replicas wait for their peering object rather than all act at once.
            peering_name=None if standalone else args.peering_name,
            liveness_endpoint=f"http://0.0.0.0:{args.liveness_port}/healthz" if args.liveness_port else None,
            # The handlers' startup reads it from kopf's memo (see `handlers.Runtime`).
            memo=kopf.Memo(settings=settings),
        )
    )
    return 0


def _release_finalizers() -> int:
    """The chart's post-delete hook: no resource is left for ever Terminating on our finalizer."""
    from ragcorp_operator.cluster import Cluster, load_api_client

    for name in Cluster(load_api_client()).release_finalizer(FINALIZER):
        print(f"released {name}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ragcorp-operator", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    render = commands.add_parser("render", help="print the manifests for a RagCorpDeployment, offline")
    render.add_argument("-f", "--filename", required=True, help="a YAML file, or - for stdin")
    render.add_argument(
        "--no-monitoring",
        dest="monitoring",
        action="store_false",
        help="leave out the Prometheus Operator's objects (a cluster without its CRDs; the operator itself "
        "creates them only where those CRDs are installed)",
    )
    run = commands.add_parser("run", help="run the operator against the current cluster")
    run.add_argument("--namespace", "-n", action="append", default=[], help="watch only these (default: all)")
    run.add_argument("--liveness-port", type=int, default=8080, help="0 disables the liveness endpoint")
    run.add_argument("--standalone", action="store_true", help="no peering (single replica, or tests)")
    commands.add_parser(
        "release-finalizers",
        help="take the operator's finalizer off every RagCorpDeployment (the chart's uninstall hook runs it)",
    )
    defaults = OperatorSettings.from_env()
    for flag, value, text in (
        ("--resync-seconds", defaults.resync_seconds, "full passes over a quiet resource [RAGCORP_RESYNC_SECONDS]"),
        ("--metrics-port", defaults.metrics_port, "its /metrics, 0 disables [RAGCORP_OPERATOR_METRICS_PORT]"),
        ("--peering-name", defaults.peering_name, "kopf peering shared by the replicas [RAGCORP_PEERING_NAME]"),
        (
            "--peering-priority",
            defaults.peering_priority,
            "0: by start time, oldest first [RAGCORP_PEERING_PRIORITY]",
        ),
        ("--peering-lifetime", defaults.peering_lifetime, "seconds a silent peer counts [RAGCORP_PEERING_LIFETIME]"),
    ):
        run.add_argument(flag, type=type(value), default=value, help=f"{text} (default: %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "render":
        return _render(args.filename, args.monitoring)
    if args.command == "release-finalizers":
        return _release_finalizers()
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
