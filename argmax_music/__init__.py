"""argmax_music: autoregressive discrete autoencoders for music as raw audio (JAX/Flax)."""

__version__ = "0.1.0"
