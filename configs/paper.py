"""The paper's hierarchy: hop 8 at level 1, hop 8 again at level 2 on level 1's codes (64 in all).

  --config=configs/paper.py                           level 1, AMAE, hop 8 = 2 x 2 x 2
  --config=configs/paper.py:level=2                   level 2 on level 1's codes, hop 8 (64 overall)
  --config=configs/paper.py:quantizer=vq              the paper's baseline: plain VQ-VAE (codebook loss)
  --config=configs/paper.py:quantizer=vq_ema          VQ-VAE with EMA codebook updates and dead-code restarts
  --config=configs/paper.py:level=2,quantizer=vq
  --config=configs/paper.py:stage=prior               the prior on the top codes

Sized after the paper (K = 2048 codes, 30-layer decoders, a deep WaveNet prior) for accelerators.
The AMAE takes configs/base.py's defaults, its recipe (the diversity loss and its codes term at weight 0.01, decoder
input noise 0.3, blind sequences 0.5, normalised conditioning; that file says why); the published model is
`--config.model.quantizer.diversity_weight=1 --config.model.quantizer.code_diversity_weight=0
--config.model.decoder_input_noise=0 --config.model.decoder_blind_fraction=0 --config.model.upsampler.normalize=False`.
Every crop is at least its model's receptive field (decoder 3,070 samples, prior 8,185 codes).
"""

from argmax_music.config import parse_variant
from configs import base

QUANTIZERS = ("argmax", "vq", "vq_ema")


def get_config(arg: str = ""):
  options = parse_variant(arg, dict(level="1", quantizer="argmax", stage="ada"), "configs/paper.py")
  if options["quantizer"] not in QUANTIZERS:
    raise KeyError(f"configs/paper.py: quantizer={options['quantizer']!r}; expected one of {QUANTIZERS}")
  c = base.get_config()
  c.stage = options["stage"]
  level = int(options["level"])
  c.data.dir = "data/maestro_prepared" if level == 1 else "runs/paper_level1/codes"
  c.data.crop = 16000 if level == 1 else 4096
  c.model.num_codes = 2048
  c.model.encoder.strides = (2, 2, 2)
  c.model.encoder.channels = 256
  c.model.encoder.blocks_per_stage = 4
  c.model.upsampler.channels = 128
  c.model.decoder.update(layers=30, cycle=10, residual_channels=128, gate_channels=256, skip_channels=256)
  c.model.quantizer.kind = "argmax" if options["quantizer"] == "argmax" else "vq"
  if options["quantizer"] == "vq_ema":
    c.model.quantizer.update(ema_decay=0.99, restart_threshold=0.01)
  c.prior.wavenet.update(
    layers=40, cycle=10, kernel_size=3, residual_channels=256, gate_channels=512, skip_channels=512
  )
  if c.stage == "prior":
    c.data.dir = "runs/paper_level2/codes"
    c.data.crop = 8192  # The prior's receptive field is 8,185 codes.
  c.train.steps = 300_000
  c.train.batch_size = 64
  c.train.learning_rate = 2e-4
  c.train.warmup_steps = 5000
  c.train.ema_decay = 0.9999
  c.eval.batch_size = 64
  return c
