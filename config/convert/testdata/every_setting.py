# A SocketShark config module setting every SocketShark setting to a value
# other than its default, written the way SocketShark configs are: Python,
# with imports, string ports and SocketShark's own type wrappers. The test
# runs it through `mako convert-config` without SocketShark installed.
import os

from socketshark.config_defaults import *  # noqa: F401,F403
from socketshark.types import LogConfig, ServiceConfig

HERE = os.path.dirname(os.path.abspath(__file__))

BACKEND = "websockets"

LOG = LogConfig(
    {
        "setup_structlog": True,
        "level": "WARNING",
        "format": "%(asctime)s %(message)s",
        "logger_name": "shark",
        "trace_logger_prefix": "tr",
        "trace_level": "DEBUG",
    }
)

METRICS = {
    "prometheus": {"host": "127.0.0.2", "port": "9191"},
    "log": {},
}

WS_HOST = "0.0.0.0"
WS_PORT = "9100"
WS_SSL = {"cert": "/etc/ssl/shark.crt", "key": "/etc/ssl/shark.key"}
WS_PING = {"interval": 20, "timeout": 7.5}

HTTP = {
    "ssl_cafile": os.path.join(HERE, "ca.pem"),
    "timeout": 4,
    "tries": 5,
    "wait": 0.25,
    "rate_limit_reset_header_name": "X-Old-Reset",
    "rate_limit_reset_header_names": ["Retry-After", "X-Rate-Limit-Reset"],
}

REDIS = {
    "host": "redis.internal",
    "port": "6380",
    "db": 2,
    "channel_prefix": "shark.",
    "ping_interval": 3,
    "ping_timeout": 1.5,
}

REDIS_ALT = {
    "host": "redis-old.internal",
    "port": 6381,
    "channel_prefix": "shark.",
    "ping_interval": None,
    "ping_timeout": 2,
}

AUTHENTICATION = {
    "ticket": {
        "validation_url": "http://auth.internal/ticket/",
        "auth_fields": ("session_id", "user_id"),
    }
}

SERVICES = {
    "books": ServiceConfig(
        {
            "require_authentication": False,
            "authorizer": "http://auth.internal/authorizer/",
            "authorizer_fields": ["capabilities"],
            "authorization_renewal_period": 600,
            "authorization_renewal_jitter": 60,
            "extra_fields": ["organization_id"],
            "filter_fields": ["user_id"],
            "before_subscribe": "http://books/before_subscribe/",
            "on_subscribe": "http://books/on_subscribe/",
            "on_message": "http://books/on_message/",
            "before_unsubscribe": "http://books/before_unsubscribe/",
            "on_unsubscribe": "http://books/on_unsubscribe/",
            "on_authorization_change": "http://books/on_authorization_change/",
            "heartbeat_period": 45,
            "on_heartbeat": "http://books/on_heartbeat/",
        }
    ),
    "open": {},
}
