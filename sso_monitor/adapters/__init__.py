"""Adapters: the real SDKs behind the ports. SDK types stop here."""
