"""The gateway: one HTTP port for TF Serving REST and V2 REST, routed to replicas by model name."""

from pier.gateway.routes import Replica
from pier.gateway.server import Gateway
from pier.gateway.settings import GatewaySettings
from pier.gateway.thread import GatewayThread, run_in_thread

__all__ = ["Gateway", "GatewaySettings", "GatewayThread", "Replica", "run_in_thread"]
