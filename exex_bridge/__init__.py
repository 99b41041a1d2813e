"""The Liquidity ExEx wire: codec, framing, sources, recordings, whitelist, producers."""
