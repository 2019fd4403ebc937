import socketshark_plugin_that_does_not_exist  # noqa: F401
