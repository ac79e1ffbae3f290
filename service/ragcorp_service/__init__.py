"""RagCorp's retrieval-augmented generation service.

The package is laid out by job: `settings` reads the environment, `db` owns the
connection pool and migrations, `ingestion` turns files into stored chunks,
`retrieval` ranks them, `generation` answers from them, and `api` exposes it
all over HTTP.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ragcorp")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"
