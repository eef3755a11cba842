"""Tables, enums and small pure helpers. No network, process or Flask imports."""
from backend.models.agent import Agent, AgentStatus, AgentType
from backend.models.server_identity import ServerIdentity
from backend.models.task import FINISHED_STATUSES, Task, TaskDependency, TaskStatus
from backend.models.template import Template
from backend.models.usage_sample import UsageSample

__all__ = ["Agent", "AgentStatus", "AgentType", "FINISHED_STATUSES", "ServerIdentity", "Task",
           "TaskDependency", "TaskStatus", "Template", "UsageSample"]
