"""Exact pool state beside a Reth node: the arena that applies and reverts blocks."""
