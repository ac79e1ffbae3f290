"""`ragcorp`: a command-line client for a running RagCorp service."""
