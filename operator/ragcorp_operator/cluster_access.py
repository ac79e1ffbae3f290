"""Reaching the cluster, or saying in one line why not: for `kubectl ragcorp` and `run`.

kopf retries a cluster it cannot reach for ever, logging each attempt: a mistyped
KUBECONFIG or a cluster that is down looked like an operator starting. Both commands
now ask once and stop with the reason, as kubectl does.
"""

from __future__ import annotations

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from urllib3.exceptions import HTTPError, MaxRetryError

from ragcorp_operator import GROUP, PLURAL, VERSION
from ragcorp_operator.cluster import Cluster, load_api_client


class ClusterUnreachable(Exception):
    """Why the cluster cannot be used, as one line."""


def api_client() -> client.ApiClient:
    """The client kubectl would use (in-cluster, else KUBECONFIG or ~/.kube/config)."""
    try:
        return load_api_client()
    except (ConfigException, OSError, ValueError, TypeError, KeyError, AttributeError, yaml.YAMLError) as exc:
        # A kubeconfig is YAML that can hold anything: each of these came from a malformed one.
        raise ClusterUnreachable(
            f"no usable kubeconfig ({one_line(exc)}); set KUBECONFIG or run in a cluster"
        ) from None


def unreachable(api: client.ApiClient, exc: HTTPError | OSError) -> ClusterUnreachable:
    reason = exc.reason if isinstance(exc, MaxRetryError) and exc.reason else exc
    # urllib3 prefixes the cause with the connection's repr: keep the cause.
    cause = one_line(reason).rsplit("): ", 1)[-1].strip("\"')")
    return ClusterUnreachable(f"cannot reach the cluster at {api.configuration.host}: {cause}")


def check_can_watch(api: client.ApiClient, namespaces: tuple[str, ...]) -> None:
    """List the resources the operator will watch, once: the cluster answers, the CRD is installed,
    and these credentials may list them."""
    cluster = Cluster(api)
    for namespace in namespaces or (None,):
        try:
            cluster.list_resources(namespace, limit=1)
        except ApiException as exc:
            if exc.status == 404:
                raise ClusterUnreachable(
                    f"{api.configuration.host} does not serve {PLURAL}.{GROUP}/{VERSION}: "
                    "install the CRD first (kubectl apply -f crds/, or the Helm chart)"
                ) from None
            raise ClusterUnreachable(
                f"cannot list {PLURAL}{' in ' + namespace if namespace else ''} at {api.configuration.host}: "
                f"{exc.status} {exc.reason}"
            ) from None
        except (HTTPError, OSError) as exc:
            raise unreachable(api, exc) from None


def one_line(exc: BaseException | str) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
