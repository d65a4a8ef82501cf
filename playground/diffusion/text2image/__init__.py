"""The Diffusion lab's text-to-image sub-tab (its layout and wiring: tab.py)."""
