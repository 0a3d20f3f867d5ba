"""timserver: a self-hosted, wire-compatible Tencent Cloud IM account REST API."""

__version__ = "0.1.0"
