"""`kubectl ragcorp`: status, history, and one-shot rollout requests for a RagCorpDeployment.

    kubectl ragcorp status NAME [-n NS]
    kubectl ragcorp history NAME [-n NS]
    kubectl ragcorp promote NAME | abort NAME | retry NAME [-n NS]
    kubectl ragcorp rollback NAME [--to-revision N] [-n NS]
    kubectl ragcorp pause NAME | resume NAME [-n NS]
    kubectl ragcorp status NAME --timeout 10m        # wait: 0 Healthy, 1 Degraded or timed out
    kubectl ragcorp set image NAME IMAGE | undo NAME [--to-revision N]
    kubectl ragcorp get NAME [--watch]                # the tree: colours, Pods, Jobs, analysis
    kubectl ragcorp lint -f FILE                      # offline: the CRD's schema and the operator's checks

Requests are annotations the operator acts on once and then removes, so the
plugin needs only `patch` on ragcorpdeployments, like `kubectl annotate`. Pause
and resume set `spec.paused` (a state, not a request: it holds until resumed). Each
promote, abort or retry carries a fresh id (the moment it was asked), which the
operator records once handled: asking again is always a new request.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragcorp_operator import INSTALL_OPERATOR_EXTRA
from ragcorp_operator.naming import COLOR_LABEL, COLORS, INSTANCE_LABEL, JOB_KIND_LABEL, deployment_name
from ragcorp_operator.rollout_tree import format_analysis, format_tree

if TYPE_CHECKING:  # the operator extra may be missing; the plugin says so when it runs
    from ragcorp_operator.cluster import Cluster

#: How often `status --timeout` reads the resource again.
POLL_SECONDS = 2.0


def format_status(resource: dict[str, Any]) -> str:
    status = resource.get("status") or {}
    lines = [
        f"Name:        {resource['metadata']['name']}",
        f"Phase:       {status.get('phase', 'Pending')}",
        f"Active:      {status.get('activeColor') or '-'}  {status.get('activeImage') or '-'}",
        f"Target:      {status.get('targetColor') or '-'}  {status.get('targetImage') or '-'}",
        f"Preview:     {status.get('previewColor') or '-'}",
        f"Schema:      {status.get('schemaRevision') or '-'}",
        f"Revision:    {status.get('revision', 0)}",
        f"Paused:      {'yes, since ' + status['pausedAt'] if status.get('pausedAt') else 'no'}",
        f"Ready:       {status.get('readyReplicas', 0)}/{status.get('replicas', 0)}",
    ]
    failure = status.get("failure")
    if failure:
        lines.append(f"Failure:     {failure.get('step')}: {failure.get('reason')}: {failure.get('message')}")
    lines += format_analysis(status)
    lines.append("Conditions:")
    for condition in status.get("conditions") or []:
        lines.append(
            f"  {condition['type']:<18} {condition['status']:<6} {condition.get('reason', '')}"
            + (f": {condition['message']}" if condition.get("message") else "")
        )
    return "\n".join(lines)


def format_history(resource: dict[str, Any]) -> str:
    rows = [f"{'REVISION':<9} {'OUTCOME':<11} {'SCHEMA':<8} {'AT':<33} IMAGE"]
    for entry in (resource.get("status") or {}).get("history") or []:
        rows.append(
            f"{entry['revision']:<9} {entry['outcome']:<11} {entry.get('schema_revision') or '-':<8} "
            f"{entry.get('at', ''):<33} {entry['image']}" + (f"  ({entry['reason']})" if entry.get("reason") else "")
        )
    return "\n".join(rows)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kubectl ragcorp", description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--namespace", default=None, help="default: the kubeconfig context's namespace")
    commands = parser.add_subparsers(dest="command", required=True)
    for command in ("status", "history", "promote", "abort", "retry", "rollback", "undo", "pause", "resume"):
        sub = commands.add_parser(command, help="the same as rollback" if command == "undo" else None)
        sub.add_argument("name")
        if command in ("rollback", "undo"):
            sub.add_argument(
                "--to-revision", type=int, default=None, help="a revision from `history` (default: previous)"
            )
        if command == "status":
            sub.add_argument(
                "--timeout",
                type=_duration,
                default=None,
                help="wait until Healthy (exit 0), Degraded (1) or this long (1): 90s, 10m, 1h",
            )
    getter = commands.add_parser("get", help="the resource as a tree: colours, Pods, Jobs, analysis")
    getter.add_argument("name")
    getter.add_argument("-w", "--watch", action="store_true", help="draw it again on every change (Ctrl-C stops)")
    linter = commands.add_parser("lint", help="check RagCorpDeployments offline, before kubectl apply")
    linter.add_argument("-f", "--filename", required=True, help="a YAML file (several documents allowed)")
    setter = commands.add_parser("set", help="set image NAME IMAGE: start a rollout of IMAGE")
    setter.add_argument("what", choices=["image"])
    setter.add_argument("name")
    setter.add_argument("image")
    return parser


def _duration(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    number, unit = (text[:-1], text[-1]) if text[-1:] in units else (text, "s")
    try:
        seconds = float(number) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 90s, 10m or 1h") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the timeout must be positive")
    return seconds


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "lint":
            return _lint(args.filename)
        return _act(args)
    except PluginError as exc:
        print(f"kubectl-ragcorp: {exc}", file=sys.stderr)
        return 1


class PluginError(Exception):
    """Why the command could not be carried out, as one line."""


def _act(args: argparse.Namespace) -> int:
    try:
        import urllib3
        from kubernetes.client.exceptions import ApiException

        from ragcorp_operator.cluster import Cluster
        from ragcorp_operator.cluster_access import ClusterUnreachable, api_client, unreachable
    except ModuleNotFoundError as exc:
        raise PluginError(f"needs the operator extra ({exc.name} is missing): {INSTALL_OPERATOR_EXTRA}") from None
    namespace = args.namespace or _default_namespace()
    try:
        api = api_client()
    except ClusterUnreachable as exc:
        raise PluginError(str(exc)) from None
    cluster = Cluster(api)
    where = f"ragcorpdeployment {namespace}/{args.name}"
    try:
        resource = cluster.get_resource(namespace, args.name)
        if resource is None:
            raise PluginError(f"{where} not found")
        if args.command == "status" and args.timeout is not None:
            return _wait_healthy(cluster, resource, args.timeout)
        if args.command == "get":
            return _get(cluster, resource, args.watch)
        if args.command == "status":
            print(format_status(resource))
            return 0
        if args.command == "set":
            cluster.merge_patch(namespace, args.name, {"spec": {"image": args.image}})
            print(f"{where}: image set to {args.image}")
            return 0
        if args.command == "history":
            print(format_history(resource))
            return 0
        if args.command in ("pause", "resume"):
            cluster.merge_patch(namespace, args.name, {"spec": {"paused": args.command == "pause"}})
            print(f"{where}: {'paused' if args.command == 'pause' else 'resumed'}")
            return 0
        value = datetime.now(UTC).isoformat(timespec="milliseconds")
        request = "rollback" if args.command == "undo" else args.command
        if request == "rollback":
            value = str(args.to_revision) if args.to_revision is not None else "previous"
        cluster.annotate(namespace, args.name, {f"ragcorp.dev/{request}": value})
    except ApiException as exc:
        raise PluginError(f"cannot {args.command} {where}: {exc.status} {exc.reason}") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise PluginError(str(unreachable(api, exc))) from None
    print(f"{where}: {args.command} requested")
    return 0


def _wait_healthy(cluster: Cluster, first: dict[str, Any], timeout: float) -> int:
    """Each change of health on a line of its own, as `kubectl rollout status` prints; 0 once Healthy."""
    from ragcorp_operator.rollout_health import health

    namespace, name = first["metadata"]["namespace"], first["metadata"]["name"]
    deadline = time.monotonic() + timeout
    said = None
    resource: dict[str, Any] | None = first
    while True:
        if resource is None:
            raise PluginError(f"ragcorpdeployment {namespace}/{name} is gone")
        now = health(resource)
        if now != said:
            print(f"{now.verdict}: {now.message}", flush=True)
            said = now
        if now.verdict in ("Healthy", "Degraded"):
            return 0 if now.verdict == "Healthy" else 1
        if time.monotonic() >= deadline:
            print(f"timed out after {timeout:g} s while {now.verdict}", file=sys.stderr)
            return 1
        time.sleep(min(POLL_SECONDS, max(deadline - time.monotonic(), 0)))
        resource = cluster.get_resource(namespace, name)


def _lint(filename: str) -> int:
    """Each document's verdict on a line (its problems below it); 1 when any has a problem."""
    from ragcorp_operator.lint import lint_text

    try:
        text = Path(filename).read_text()
    except OSError as exc:
        raise PluginError(f"cannot read {filename}: {exc.strerror or exc}") from None
    findings = lint_text(text)
    for finding in findings:
        what = f"{filename}: document {finding.document}" + (f" ({finding.name})" if finding.name else "")
        if finding.skipped:
            print(f"{filename}: document {finding.document} ({finding.skipped} {finding.name}): skipped")
        elif finding.problems:
            print(f"{what}: {len(finding.problems)} problem(s)")
            print("\n".join(f"  {problem}" for problem in finding.problems))
        else:
            print(f"{what}: ok")
    if not any(not finding.skipped for finding in findings):
        print(f"{filename}: no RagCorpDeployment in it", file=sys.stderr)
        return 1
    return 1 if any(finding.problems for finding in findings) else 0


def _tree(cluster: Cluster, resource: dict[str, Any]) -> str:
    namespace, name = resource["metadata"]["namespace"], resource["metadata"]["name"]
    deployments = {color: cluster.get("Deployment", namespace, deployment_name(name, color)) for color in COLORS}
    pods = {
        color: [
            pod
            for pod in cluster.list("Pod", namespace, {INSTANCE_LABEL: name, COLOR_LABEL: color})
            if JOB_KIND_LABEL not in ((pod.get("metadata") or {}).get("labels") or {})
        ]
        for color in COLORS
    }
    jobs = cluster.list("Job", namespace, {INSTANCE_LABEL: name})
    return format_tree(resource, deployments, pods, jobs)


def _get(cluster: Cluster, first: dict[str, Any], watch: bool) -> int:
    """The tree once, or with --watch again whenever it changes, as `kubectl get -w` prints."""
    namespace, name = first["metadata"]["namespace"], first["metadata"]["name"]
    shown = None
    resource: dict[str, Any] | None = first
    try:
        while resource is not None:
            tree = _tree(cluster, resource)
            if tree != shown:
                if shown is not None:
                    print(f"\n--- {datetime.now(UTC).strftime('%H:%M:%S')} ---")
                print(tree, flush=True)
                shown = tree
            if not watch:
                return 0
            time.sleep(POLL_SECONDS)
            resource = cluster.get_resource(namespace, name)
    except KeyboardInterrupt:
        return 0
    raise PluginError(f"ragcorpdeployment {namespace}/{name} is gone")


def _default_namespace() -> str:
    from kubernetes import config

    try:
        _, context = config.list_kube_config_contexts()  # type: ignore[no-untyped-call]
        return str(context.get("context", {}).get("namespace") or "default")
    except Exception:
        return "default"


if __name__ == "__main__":
    sys.exit(main())
