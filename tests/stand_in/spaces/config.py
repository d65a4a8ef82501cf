"""spaces.config of the stand-in: this is a ZeroGPU Space."""


class Config:
    zero_gpu = True
