"""`ragcorp-operator render` and `kubectl ragcorp` fail with one line that names the problem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ragcorp_operator.cli import main as operator_cli
from ragcorp_operator.kubectl_plugin import main as kubectl_ragcorp

MINIMAL = Path(__file__).resolve().parents[2] / "crds" / "examples" / "minimal.yaml"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read {path}: No such file or directory"),
        ("spec: [unclosed\n", "{path} is not valid YAML: "),
        ("", "{path} holds no YAML document"),
        ("apiVersion: v1\nkind: ConfigMap\n", "{path}: document 1 is a ConfigMap, not a ragcorp.dev RagCorpDeployment"),
        (
            "apiVersion: ragcorp.dev/v1alpha1\nkind: RagCorpDeployment\nspec: {image: 5}\n",
            "invalid resource: spec.image: Input should be a valid string; spec.secrets: Field required",
        ),
    ],
    ids=["missing-file", "bad-yaml", "empty", "not-ours", "bad-spec"],
)
def test_render_names_what_is_wrong_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, expected: str
) -> None:
    path = tmp_path / "resource.yaml"
    if content is not None:
        path.write_text(content)
    assert operator_cli(["render", "-f", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("ragcorp-operator: " + expected.format(path=path))
    assert captured.err.count("\n") == 1


def test_kubectl_ragcorp_without_a_kubeconfig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert kubectl_ragcorp(["status", "ragcorp"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("kubectl-ragcorp: no usable kubeconfig (") and err.count("\n") == 1


def test_kubectl_ragcorp_when_the_cluster_does_not_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {token: t}}]\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert kubectl_ragcorp(["promote", "ragcorp"]) == 1
    assert capsys.readouterr().err == (
        "kubectl-ragcorp: cannot reach the cluster at http://127.0.0.1:9: "
        "Failed to establish a new connection: [Errno 111] Connection refused\n"
    )


UNREACHABLE = (
    "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
    "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n"
    "contexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {token: t}}]\n"
)


@pytest.mark.parametrize(
    "kubeconfig",
    ["clusters: [unclosed\n", "- just\n- a list\n", "apiVersion: v1\nkind: Config\n"],
    ids=["bad-yaml", "a-list", "no-context"],
)
def test_a_malformed_kubeconfig_is_one_line_for_both_commands(tmp_path: Path, kubeconfig: str) -> None:
    path = tmp_path / "config"
    path.write_text(kubeconfig)
    env = {"KUBECONFIG": str(path), "PATH": "/usr/bin:/bin"}
    for command in (["ragcorp-operator", "run", "--standalone"], ["kubectl-ragcorp", "status", "x"]):
        run = subprocess.run(
            [str(Path(sys.executable).with_name(command[0])), *command[1:]],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
        [line] = [line for line in run.stderr.splitlines() if not line.startswith("{")]
        assert "no usable kubeconfig (" in line and "set KUBECONFIG" in line


def test_run_without_a_reachable_cluster_says_so_once_and_exits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """kopf retries an unreachable cluster for ever, which looked like an operator starting."""
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(UNREACHABLE)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert operator_cli(["run", "--standalone", "--liveness-port", "0"]) == 1
    assert capsys.readouterr().err == (
        "ragcorp-operator: cannot run: cannot reach the cluster at http://127.0.0.1:9: "
        "Failed to establish a new connection: [Errno 111] Connection refused\n"
    )


def test_the_entry_points_without_the_operator_extra_say_which_extra_to_install() -> None:
    """Run as installed without kubernetes and kopf (their imports fail as a missing package's do)."""
    script = (
        "import sys; sys.modules['kubernetes'] = sys.modules['kopf'] = None\n"
        "from ragcorp_operator.kubectl_plugin import main as plugin\n"
        "from ragcorp_operator.cli import main as operator\n"
        f"sys.exit(plugin(['status', 'x']) + operator(['run']) + operator(['render', '-f', {str(MINIMAL)!r}]))"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 2 and all("pip install 'ragcorp[operator]'" in line for line in lines), lines
    assert lines[0].startswith("kubectl-ragcorp: needs the operator extra")
    assert lines[1].startswith("ragcorp-operator: run needs the operator extra")
    assert "kind: Deployment" in run.stdout  # render is pure: it needs no cluster libraries


@pytest.mark.parametrize(
    ("timeout", "expected"),
    [("soon", "'soon' is not a duration such as 90s, 10m or 1h"), ("0s", "'0s': the timeout must be positive")],
)
def test_a_malformed_status_timeout_is_refused_before_anything_is_asked(
    timeout: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pipeline's typo fails at once (argparse's exit 2), not after waiting for nothing."""
    with pytest.raises(SystemExit) as exited:
        kubectl_ragcorp(["status", "ragcorp", "--timeout", timeout])
    assert exited.value.code == 2 and expected in capsys.readouterr().err


def test_a_notification_target_named_twice_is_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = {"name": "hooks", "key": "url"}
    twice = f"  notifications:\n    - {{name: team, url: {url}}}\n    - {{name: team, url: {url}, format: slack}}\n"
    resource = tmp_path / "twice.yaml"
    resource.write_text(MINIMAL.read_text() + twice)
    assert operator_cli(["render", "-f", str(resource)]) == 1
    assert "spec: notifications: team given more than once" in capsys.readouterr().err
    assert kubectl_ragcorp(["lint", "-f", str(resource)]) == 1
