# A config module that sets nothing: SocketShark runs on its defaults.
