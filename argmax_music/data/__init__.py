"""Audio sources, corpus rendering and preparation, and the grain input pipeline."""
