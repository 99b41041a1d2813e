"""The composition root: the `arena` command (`sidecar.cli`), configuration, and the
service runtime that wires source → arena → pathfinder → sinks and executor."""

from sidecar.config_file import load_settings
from sidecar.errors import ConfigError, DirectoryError, SidecarError
from sidecar.settings import ArenaSettings

__all__ = ["ArenaSettings", "ConfigError", "DirectoryError", "SidecarError", "load_settings"]
