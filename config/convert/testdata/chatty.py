# A config module that prints while it loads and defines values JSON
# cannot hold.
print("loading shark config")
WS_PORT = 9200
WS_PING = {"interval": float("inf")}
