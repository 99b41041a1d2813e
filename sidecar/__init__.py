"""The composition root: the `arena` command, configuration, and the service runtime that
wires source → arena → pathfinder → sinks and executor."""
