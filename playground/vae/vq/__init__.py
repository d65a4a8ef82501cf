"""The VAE lab's VQ-VAE sub-tab (its layout and wiring: tab.py)."""
