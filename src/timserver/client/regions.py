"""Where Tencent serves the REST API (docs/protocol.md §2.2), and how an ``endpoint`` becomes a base URL."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Region:
    name: str
    host: str
    backup_host: str  # Tencent's second domain, for networks where the first is hijacked


REGIONS: dict[str, Region] = {r.name: r for r in (
    Region("china", "console.tim.qq.com", "adminapi.my-imcloud.com"),
    Region("singapore", "adminapisgp.im.qcloud.com", "adminapisgp.my-imcloud.com"),
    Region("seoul", "adminapikr.im.qcloud.com", "adminapikr.my-imcloud.com"),
    Region("frankfurt", "adminapiger.im.qcloud.com", "adminapiger.my-imcloud.com"),
    Region("mumbai", "adminapiind.im.qcloud.com", "adminapiind.my-imcloud.com"),
    Region("usa", "adminapiusa.im.qcloud.com", "adminapiusa.my-imcloud.com"),
    Region("jakarta", "adminapiidn.im.qcloud.com", "adminapiidn.my-imcloud.com"),
    Region("tokyo", "adminapijpn.im.qcloud.com", "adminapijpn.my-imcloud.com"),
)}

BACKUP_SUFFIX = "-backup"


def base_url(endpoint: str) -> str:
    """A region name (``singapore``; ``singapore-backup`` for the backup domain) or a base URL.

    >>> base_url("china")
    'https://console.tim.qq.com'
    >>> base_url("http://127.0.0.1:8080/")
    'http://127.0.0.1:8080'
    """
    name = endpoint.strip().lower()
    if name in REGIONS:
        return f"https://{REGIONS[name].host}"
    if name.endswith(BACKUP_SUFFIX) and name[: -len(BACKUP_SUFFIX)] in REGIONS:
        return f"https://{REGIONS[name[: -len(BACKUP_SUFFIX)]].backup_host}"
    scheme, sep, rest = endpoint.strip().partition("://")
    if sep and scheme.lower() in ("http", "https") and rest.strip("/"):
        return endpoint.strip().rstrip("/")
    regions = ", ".join(REGIONS)
    raise ValueError(f"unknown endpoint {endpoint!r}: give a region ({regions}; add "
                     f"{BACKUP_SUFFIX!r} for its backup domain) or a base URL such as "
                     "http://127.0.0.1:8080")
