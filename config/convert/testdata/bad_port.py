WS_PORT = "ninety"
