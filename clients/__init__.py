"""Clients of the exchange: the cfx command line, and later the SDK and bots."""
