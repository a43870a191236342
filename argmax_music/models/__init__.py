"""Flax Linen models: WaveNet, encoder, quantizers, the ADA and the code prior."""
