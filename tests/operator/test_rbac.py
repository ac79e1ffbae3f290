"""The Helm chart's RBAC covers every call the operator makes, and grants nothing for show.

The calls come from the operator itself, two ways: its code (which kinds `reconciling`
reads, lists and deletes by name; which kinds the pure planner can create, patch or
delete), and a recording of every request its credentials made while the real kopf
runtime, peered as the chart runs it, took a resource through a rollout and a rollback.
A new call without a rule in `charts/ragcorp-operator/templates/rbac.yaml` fails here.
"""

from __future__ import annotations

import ast
import typing
from collections.abc import Iterator
from pathlib import Path

import kmock
import pytest
import yaml

import ragcorp_operator
from ragcorp_operator.cluster import KINDS
from ragcorp_operator.plan import PROMETHEUS_RULE, SERVICE_MONITOR, children, render_resource
from ragcorp_operator.render.common import Owner
from ragcorp_operator.rollout import Intent, JobIntent, JobKind
from ragcorp_operator.spec import parse_spec
from tests.support.kube_emulator import OPERATOR_TOKEN, ApiServer
from tests.support.operator_cluster import ClusterHelper, promote_v2_while_blue_still_serves, running_operator
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
RBAC_TEMPLATE = ROOT / "charts" / "ragcorp-operator" / "templates" / "rbac.yaml"
PEERING = "ragcorp-operator"
Permission = tuple[str, str, str]  # (apiGroup, resource, verb)


def chart_rules() -> set[Permission]:
    """The ClusterRole's rules: plain YAML between `rules:` and the next document."""
    text = RBAC_TEMPLATE.read_text()
    block = text[text.index("\nrules:") : text.index("\n---")]
    granted = set()
    for rule in yaml.safe_load(block)["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.update((group, resource, verb) for verb in rule["verbs"])
    return granted


def permission(kind: str, verb: str) -> Permission:
    return (KINDS[kind].group, KINDS[kind].plural, verb)


def calls_in_code() -> Iterator[Permission]:
    """`cluster.get|list|delete("Kind", ...)` (or `self.cluster....`) anywhere in the operator package."""
    package = Path(ragcorp_operator.__file__).parent
    for module in package.rglob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and (
                    (isinstance(node.func.value, ast.Name) and node.func.value.id == "cluster")
                    or (isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "cluster")
                )
            ):
                method = node.func.attr
                if method in ("get", "list", "delete") and node.args and isinstance(node.args[0], ast.Constant):
                    yield permission(node.args[0].value, method)
                if method == "kind_available":  # probes a CRD's kind with a list
                    yield from (permission(kind, "list") for _, kind in (SERVICE_MONITOR, PROMETHEUS_RULE))


def _apply_verbs(kind: str) -> tuple[str, ...]:
    """What `Cluster.apply` calls: get, then create or patch; a Job is never patched (replaced)."""
    return ("get", "create") if kind == "Job" else ("get", "create", "patch")


def calls_of_the_planner() -> Iterator[Permission]:
    """`Cluster.apply` gets, then creates or patches, whatever the planner renders; deletes are by name."""
    resource = yaml.safe_load((ROOT / "crds" / "examples" / "production.yaml").read_text())
    for manifest in render_resource(resource):
        yield from (permission(manifest["kind"], verb) for verb in _apply_verbs(manifest["kind"]))
    jobs = tuple(JobIntent(kind, 2, "img:2", "0001") for kind in typing.get_args(JobKind))
    spec = parse_spec(resource["spec"])
    owner = Owner("rag", "ns", "uid")
    monitoring = frozenset({SERVICE_MONITOR, PROMETHEUS_RULE})
    full = children(
        owner, spec, Intent({"blue": ("img:1", 2), "green": ("img:2", 2)}, "blue", "green", jobs), monitoring
    )
    yield from (permission(m["kind"], verb) for m in full.apply for verb in _apply_verbs(m["kind"]))
    bare = spec.model_copy(
        update={
            "autoscaling": spec.autoscaling.model_copy(update={"enabled": False}),
            "monitoring": spec.monitoring.model_copy(
                update={"prometheus_rule": False, "service_monitor": False, "dashboards": False}
            ),
        }
    )
    emptied = children(owner, bare, Intent({}, None, None), monitoring)
    yield from (permission(ref.kind, "delete") for ref in emptied.delete)


def owner_reference_permissions() -> Iterator[Permission]:
    """Setting `blockOwnerDeletion: true` needs update on the owner's finalizers: the
    OwnerReferencesPermissionEnforcement admission plugin refuses the child without it."""
    resource = yaml.safe_load((ROOT / "crds" / "examples" / "production.yaml").read_text())
    resource["metadata"]["uid"] = "uid"
    for manifest in render_resource(resource):
        for ref in manifest["metadata"].get("ownerReferences") or []:
            if ref.get("blockOwnerDeletion"):
                group = ref["apiVersion"].split("/")[0]
                yield (group, f"{ragcorp_operator.PLURAL}/finalizers", "update")


def test_the_chart_grants_every_call_in_the_operators_code() -> None:
    needed = set(calls_in_code()) | set(calls_of_the_planner()) | set(owner_reference_permissions())
    assert ("ragcorp.dev", "ragcorpdeployments/finalizers", "update") in needed
    assert ("", "secrets", "get") in needed and ("batch", "jobs", "delete") in needed  # the derivation works
    assert needed - chart_rules() == set()


def test_the_chart_grants_no_write_to_the_children_that_the_code_never_makes() -> None:
    """Least privilege on what the operator writes: every create, patch and delete granted on a
    child kind is one `Cluster.apply` or a delete by name really calls (watches and reads are kopf's
    and are checked against a running operator)."""
    needed = set(calls_in_code()) | set(calls_of_the_planner())
    children_written = {resource for _, resource, verb in needed if verb in ("create", "patch")}
    granted = {r for r in chart_rules() if r[1] in children_written and r[2] in ("create", "patch", "delete", "update")}
    assert granted - needed == set()


def test_the_chart_never_lets_the_operator_write_secrets() -> None:
    assert {verb for group, resource, verb in chart_rules() if resource == "secrets"} == {"get"}


@pytest.fixture
def extra_resources() -> dict[str, kmock.ResourceInfo]:
    return {
        "kopf.dev/v1/clusterkopfpeerings": kmock.ResourceInfo(
            kind="ClusterKopfPeering", namespaced=False, verbs={"get", "list", "watch", "patch", "create"}
        )
    }


def test_the_chart_grants_every_call_the_running_operator_makes(helper: ClusterHelper, api_server: ApiServer) -> None:
    peering = {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": PEERING}}
    helper.cluster._call("POST", "/apis/kopf.dev/v1/clusterkopfpeerings", body=peering)  # the chart creates it
    with running_operator(peering=PEERING):
        promote_v2_while_blue_still_serves(helper)
        helper.annotate("rag", {"ragcorp.dev/rollback": "previous"})
        eventually(lambda: helper.get("Job", "rag-downgrade-3"))
        helper.finish_job("rag-downgrade-3", succeeded=True, schema_revision="0002")
        eventually(lambda: helper.status("rag").get("schemaRevision") == "0002")
        helper.delete_resource("rag")
        eventually(lambda: helper.resource("rag") is None)
    made = {(c.group, c.resource, c.verb) for c in api_server.calls if c.token == OPERATOR_TOKEN}
    assert ("kopf.dev", "clusterkopfpeerings", "patch") in made  # it ran peered, with the chart's credentials
    assert ("ragcorp.dev", "ragcorpdeployments/status", "patch") in made
    assert made - chart_rules() == set()
    status_rules = {rule for rule in chart_rules() if rule[1].endswith("/status")}
    assert status_rules - made == set(), "a status verb nothing calls"
