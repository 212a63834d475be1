"""Machine profiles shipped with procsim (read with importlib.resources)."""
