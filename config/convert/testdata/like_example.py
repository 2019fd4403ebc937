# The settings SocketShark's example config sets, with the same kinds of
# values (a string WS_PORT, a partial REDIS dict, a prometheus provider
# without host, one ticket-authenticated service using every callback).
WS_HOST = "127.0.0.1"
WS_PORT = "9000"

REDIS = {"host": "localhost", "port": 6379}

METRICS = {"prometheus": {"port": 9090}}

AUTHENTICATION = {
    "ticket": {
        "validation_url": "http://auth.example/ticket/",
        "auth_fields": ["session_id", "user_id"],
    }
}

SERVICES = {
    "orders": {
        "require_authentication": True,
        "authorizer": "http://auth.example/authorizer/",
        "authorizer_fields": ["capabilities"],
        "authorization_renewal_period": 300,
        "authorization_renewal_jitter": 30,
        "extra_fields": ["organization_id"],
        "filter_fields": ["user_id"],
        "before_subscribe": "http://orders.example/subscribe/",
        "before_unsubscribe": "http://orders.example/unsubscribe/",
        "on_subscribe": "http://orders.example/on_subscribe/",
        "on_unsubscribe": "http://orders.example/on_unsubscribe/",
        "on_message": "http://orders.example/on_message/",
        "heartbeat_period": 30,
        "on_heartbeat": "http://orders.example/on_heartbeat/",
    },
}
