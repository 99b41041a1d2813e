"""Exact Uniswap math, the cycle graph, the vectorized screen and opportunity sinks."""
