"""Producers of the ExEx wire: the frame broadcast server and the chain follower that
serves the same frames from any node's JSON-RPC."""
