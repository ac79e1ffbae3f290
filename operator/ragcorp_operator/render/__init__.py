"""Pure rendering: a parsed spec plus the rollout's choices -> exact child manifests.

Nothing here talks to a cluster; `ragcorp-operator render -f` prints the same
manifests the operator applies.
"""
