"""What SocketShark puts on the wire for a given input, for mako's
differential JSON tests (protocol/pyjson_test.go, server/service/pyjson_test.go).

It follows SocketShark's own steps (backend/websockets.py, session.py,
events.py, subscription.py, receiver.py, utils.py) with the standard json
module, for a fixed setting: one service "svc" with extra_fields ["extra"],
a session subscribed to every published message's subscription, and no
filter fields. It reads JSON lines {"kind": K, "b64": INPUT} from stdin and
writes one JSON line per input:

  {"outcome": "reply"|"invalid"|"crash"|"drop"|"close", "wire": TEXT|null,
   "order": repr(float)|null}

"wire" is the message SocketShark sends, normalised (json.loads, "sent_at"
removed, json.dumps with sorted keys) so that mako's output, normalised with
kind "canon", compares equal exactly when a client's json.loads sees the same
value.
"""

import base64
import datetime
import json
import sys

INVALID_EVENT = "Messages must be JSON and contain an event field."
EVENT_NOT_FOUND = "Event not found."
INVALID_SUBSCRIPTION = "Invalid subscription format."
INVALID_SERVICE = "Invalid service."
SUBSCRIPTION_NOT_FOUND = "Subscription does not exist."
SERVICES = {"svc": {"extra_fields": ["extra"]}}


def canon(msg):
    if isinstance(msg, dict):
        msg = {k: v for k, v in msg.items() if k != "sent_at"}
    return json.dumps(msg, sort_keys=True)


def reply(msg):
    return {"outcome": "reply", "wire": canon(msg), "order": None}


def client(raw):
    # websockets hands text frames over as str and closes the connection
    # (1007) on invalid UTF-8 before SocketShark sees the frame.
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"outcome": "close", "wire": None, "order": None}
    return client_loads(text)


def client_binary(raw):
    # Binary frames reach json.loads as bytes: it detects UTF-8/16/32 and
    # decodes with "surrogatepass".
    return client_loads(raw)


def client_loads(doc):
    try:
        data = json.loads(doc)
    except json.JSONDecodeError:
        return reply({"status": "error", "error": INVALID_EVENT})
    except Exception:  # RecursionError, ValueError: consumer_handler dies
        return {"outcome": "crash", "wire": None, "order": None}
    if not isinstance(data, dict) or "event" not in data:
        return reply({"status": "error", "error": INVALID_EVENT})
    event = data["event"]
    if not isinstance(event, str) or len(event) > 40:
        return reply({"status": "error", "error": INVALID_EVENT})
    try:
        if event == "ping":
            d = data.get("data")
            return reply({"event": "pong", "data": d[:128] if isinstance(d, str) else None})
        if event in ("subscribe", "unsubscribe", "message"):
            raw_name = data.get("subscription") or None
            name = raw_name
            service = topic = None
            if name is not None and "." in name:
                service, topic = name.split(".", 1)
            extra = {}
            if service in SERVICES:
                extra = {f: data[f] for f in SERVICES[service]["extra_fields"] if f in data}
            if not service or not topic:
                err = INVALID_SUBSCRIPTION
            elif service not in SERVICES:
                err = INVALID_SERVICE
            elif event == "subscribe":
                raise AssertionError("a subscribe to svc.* is not modelled")
            else:
                err = SUBSCRIPTION_NOT_FOUND
            msg = {"event": event, "status": "error", "error": err}
            msg.update(extra)
            if name:
                msg["subscription"] = name
            return reply(msg)
        return reply({"event": event, "status": "error", "error": EVENT_NOT_FOUND})
    except AssertionError:
        raise
    except Exception:
        return {"outcome": "crash", "wire": None, "order": None}


def get_options(data):
    raw_options = data.get("options", {})
    order = None
    if "order" in raw_options:
        try:
            order = float(raw_options["order"])
        except (TypeError, ValueError):
            pass
    if "throttle" in raw_options:
        try:
            float(raw_options["throttle"])
        except (TypeError, ValueError):
            pass
    return order


def published(raw):
    try:
        data = json.loads(raw.decode())
    except Exception:  # receiver.py logs and drops
        return {"outcome": "drop", "wire": None, "order": None}
    try:
        if "subscription" not in data or "data" not in data:
            return {"outcome": "drop", "wire": None, "order": None}
        name = data["subscription"]
        # The session is subscribed to this name if any session could be.
        if not isinstance(name, str) or name == "":
            return {"outcome": "drop", "wire": None, "order": None}
        order = get_options(data)
        # session.on_service_event: a published_at that is not a str raises
        # TypeError (only ValueError is caught). Its value on the wire is a
        # timing field, outside these JSON tests.
        raw_at = data.get("published_at")
        if raw_at is not None:
            try:
                datetime.datetime.fromisoformat(raw_at)
            except ValueError:
                pass
        msg = {"event": "message", "subscription": name, "data": data["data"]}
        return {"outcome": "reply", "wire": canon(msg), "order": None if order is None else repr(order)}
    except Exception:
        return {"outcome": "crash", "wire": None, "order": None}


def service_reply(raw):
    # utils.http_post: await resp.json() (json.loads of the UTF-8 text);
    # then result.get(...) on whatever came back.
    try:
        if not raw.strip():
            result = None
        else:
            result = json.loads(raw.decode("utf-8"))
        ok = result.get("status") == "ok"
        error = result.get("error")
        data = result.get("data")
    except Exception:
        return {"outcome": "crash", "wire": None, "order": None}
    if not isinstance(error, str) or error == "":
        error = None
    return reply({"ok": ok, "error": error, "data": data})


def normalise(raw):
    try:
        return reply(json.loads(raw.decode("utf-8")))
    except Exception as e:
        return {"outcome": "invalid", "wire": repr(e), "order": None}


def equal(raw):
    # filter_fields compares values with ==; order_key/throttle_key are dict
    # keys. The input is two documents separated by a NUL byte.
    a, b = (json.loads(x.decode("utf-8")) for x in raw.split(b"\0"))
    try:
        same_key = b in {a: 1}
    except TypeError:  # unhashable: SocketShark raises
        same_key = None
    return reply({"eq": a == b, "same_key": same_key})


KINDS = {"equal": equal, "client": client, "client_binary": client_binary, "published": published, "service": service_reply, "canon": normalise}

for line in sys.stdin:
    req = json.loads(line)
    out = KINDS[req["kind"]](base64.b64decode(req["b64"]))
    sys.stdout.write(json.dumps(out) + "\n")
