"""SmartTrace SSO Monitor: keeps "Sign in with Microsoft" working for SmartTrace facilities."""

__version__ = "0.1.0"
