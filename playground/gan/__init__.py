"""GAN lab: a small StyleGAN-like generator (stylegan.py), the DCGAN peer (dcgan.py), their training
loops (train.py), what the tab computes (sampling.py) and the tab itself (tab.py)."""
