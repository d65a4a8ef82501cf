"""GAN lab: a small StyleGAN-like generator (stylegan.py), the DCGAN peer (dcgan.py), their training
loops (train.py), what each control of the tab does (service.py), its text and figures (views.py) and
the tab itself (tab.py)."""
