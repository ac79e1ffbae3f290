"""The control plane's programs, built from source by `go build` and cached.

`controlplane/go.mod` pins `k8s.io/kubernetes` and maps each `k8s.io/*` staging
module to its release with `replace` directives (the way projects embedding
Kubernetes do it; `go install pkg@version` refuses modules with replace
directives); its `tool` lines name the programs: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and kubectl. `controlplane/helm/`
does the same for Helm v4. The binaries land in `.cluster/bin/<digest>/`, the
digest taken from the two modules' go.mod and go.sum, so a change of pins
builds anew and anything else reuses what is there.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
MODULES = {
    ROOT / "controlplane": {
        "etcd": "go.etcd.io/etcd/server/v3",
        "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
        "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
        "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
        "kubectl": "k8s.io/kubernetes/cmd/kubectl",
    },
    ROOT / "controlplane" / "helm": {"helm": "helm.sh/helm/v4/cmd/helm"},
}
CACHE = Path(os.environ.get("RAGCORP_CLUSTER_CACHE", ROOT / ".cluster" / "bin"))


@dataclass(frozen=True)
class Binaries:
    directory: Path

    def __getitem__(self, name: str) -> str:
        return str(self.directory / name)


def _required(module: Path, path: str) -> str:
    for line in (module / "go.mod").read_text().splitlines():
        words = line.replace("require", "").split()
        if words[:1] == [path]:
            return words[1]
    raise RuntimeError(f"{module / 'go.mod'} does not require {path}")


def kubernetes_version() -> str:
    """The pinned `k8s.io/kubernetes` release, e.g. v1.37.2."""
    return _required(ROOT / "controlplane", "k8s.io/kubernetes")


def _version_flags(module: Path) -> str:
    """What the projects' own builds stamp into their binaries (`kubectl version`, /version, `helm version`)."""
    if module.name == "helm":
        return f"-X helm.sh/helm/v4/internal/version.version={_required(module, 'helm.sh/helm/v4')}"
    version = kubernetes_version()
    major, minor = version.removeprefix("v").split(".")[:2]
    stamp = {"gitVersion": version, "gitMajor": major, "gitMinor": minor, "gitTreeState": "clean"}
    return " ".join(
        f"-X {package}.{key}={value}"
        for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
        for key, value in stamp.items()
    )


def _go_binary_name(package: str) -> str:
    """The file `go build -o dir/` writes for a main package: its last path element, major version dropped."""
    parts = package.split("/")
    return parts[-2] if parts[-1].startswith("v") and parts[-1][1:].isdigit() else parts[-1]


def pins_digest() -> str:
    digest = hashlib.sha256()
    for module in MODULES:
        for name in ("go.mod", "go.sum"):
            digest.update((module / name).read_bytes())
    return digest.hexdigest()[:12]


def build(log: bool = True) -> Binaries:
    """The cached binaries, built first when the pins changed (minutes cold, nothing warm)."""
    directory = CACHE / pins_digest()
    wanted = [name for programs in MODULES.values() for name in programs]
    if all((directory / name).exists() for name in wanted):
        return Binaries(directory)
    if shutil.which("go") is None:
        raise RuntimeError("building the control plane needs Go 1.26 (https://go.dev/dl) on PATH")
    partial = directory.with_name(directory.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    for module, programs in MODULES.items():
        if log:
            print(
                f"cluster: building {', '.join(programs)} from {module.relative_to(ROOT)}", file=sys.stderr, flush=True
            )
        # One `go build` per module: the programs share most packages, and one build compiles each once.
        output = partial / f".build-{module.name}"
        output.mkdir(exist_ok=True)
        subprocess.run(
            [
                "go",
                "build",
                "-trimpath",
                f"-ldflags=-s -w {_version_flags(module)}",
                "-o",
                f"{output}/",
                *programs.values(),
            ],
            cwd=module,
            check=True,
            env={**os.environ, "CGO_ENABLED": "0"},
        )
        for name, package in programs.items():
            (output / _go_binary_name(package)).rename(partial / name)
        output.rmdir()
    shutil.rmtree(directory, ignore_errors=True)
    partial.rename(directory)
    if log:
        print(f"cluster: control plane built in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return Binaries(directory)


if __name__ == "__main__":
    print(build().directory)
