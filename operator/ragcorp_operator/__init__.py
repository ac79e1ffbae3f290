"""The RagCorp Kubernetes operator."""
