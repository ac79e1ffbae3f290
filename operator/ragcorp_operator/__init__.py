"""The RagCorp Kubernetes operator.

Three pure layers do the thinking: `spec` (parse and default a resource's
spec), `render` (spec -> exact child manifests) and `rollout` (observed state ->
next step). `handlers` (kopf) and `cluster` (the Kubernetes client) only read,
call them, and write. `.importlinter` keeps the pure layers free of both.
"""

GROUP = "ragcorp.dev"
VERSION = "v1alpha1"
PLURAL = "ragcorpdeployments"
KIND = "RagCorpDeployment"
#: What the CLIs tell a user whose install lacks kopf and the Kubernetes client.
INSTALL_OPERATOR_EXTRA = "pip install 'ragcorp[operator]' (from a checkout: pip install -e '.[operator]')"
