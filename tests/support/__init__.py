"""What test areas share, and the only test code a test module imports.

Test modules never import one another (as kopf's tests do not): a helper two of them need
lives here, named for what it is. `servers`, `postgres`, `corpus`, `pdfs`, `postings_corpus`
and `fake_gemini` serve the service's tests; `kube_emulator` (kmock with what an API server
adds), `operator_cluster` (the cluster helper, the operator runner, the common rollout steps),
`crd` and `termination_messages` the operator's; `waiting` everyone's.
"""
