"""timserver: a self-hosted, wire-compatible Tencent Cloud IM account REST API."""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # The SDK's clients, imported on first use so that `import timserver` stays cheap.
    if name in ("Client", "AsyncClient"):
        from . import client

        return getattr(client, name)
    raise AttributeError(f"module 'timserver' has no attribute {name!r}")
