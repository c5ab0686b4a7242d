"""One module per feature: the handlers of its events, registered in `chatserver/gateway/dispatch.py`."""
