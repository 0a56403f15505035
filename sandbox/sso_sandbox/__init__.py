"""A local, faithful stand-in for the parts of Microsoft's cloud the monitor uses.

Graph, Entra ID, Key Vault, SmartTrace, a Teams Workflows webhook and SMTP,
served over HTTPS on 127.0.0.1 with one generated CA, behind one in-memory
World. The real SDKs talk to it unchanged except for endpoints and the CA.
See docs/sandbox.md.
"""

from sso_sandbox.clock import Clock
from sso_sandbox.faults import FaultPlan, FaultRule
from sso_sandbox.runtime import Endpoints, Sandbox
from sso_sandbox.world import World

__all__ = ["Clock", "Endpoints", "FaultPlan", "FaultRule", "Sandbox", "World"]
