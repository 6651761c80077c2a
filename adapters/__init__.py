"""The same networks rebuilt in PyTorch and JAX, and a plug-in point for others."""
