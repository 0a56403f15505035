from sso_monitor.cli.entry import main

__all__ = ["main"]
