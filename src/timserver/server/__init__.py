"""The wire: HTTP, the order of checks, the envelope, the OpenAPI document."""
