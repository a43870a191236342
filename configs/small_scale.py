"""The paper's comparisons at small scale (RESULTS.md): one decoder size, K=64, several encoders.

  --config=configs/small_scale.py:amae_hop20   (the variant names are in VARIANTS)

Every variant shares the decoder (10 layers, dilations 1..512, receptive field 1,024
samples), the data, the crop and the schedule, so their validation NLLs compare directly;
`wavenet` is that decoder with no codes at all (stage 'wavenet').
"""

from configs import base

# name: (quantizer kind, encoder strides (hop = product), diversity weight, VQ EMA decay)
VARIANTS = {
    "amae_hop8": ("argmax", (2, 4), 1.0, 0.0),
    "amae_hop20": ("argmax", (4, 5), 1.0, 0.0),
    "amae_hop64": ("argmax", (4, 4, 4), 1.0, 0.0),
    "amae_hop20_nodiv": ("argmax", (4, 5), 0.0, 0.0),
    "vqvae_hop20": ("vq", (4, 5), 0.0, 0.0),
    "vqvae_ema_hop20": ("vq", (4, 5), 0.0, 0.99),
    "wavenet": None,
}


def get_config(variant: str = "amae_hop20"):
  if variant not in VARIANTS:
    raise ValueError(f"small_scale variant {variant!r}: expected one of {sorted(VARIANTS)}")
  c = base.get_config()
  c.data.dir = "data/piano_prepared"
  c.data.crop = 1920  # A multiple of every hop: 8, 20 and 64.
  c.model.num_codes = 64
  c.model.quantizer.dim = 32
  c.model.encoder.channels = 32
  c.model.encoder.blocks_per_stage = 2
  c.model.upsampler.channels = 32
  c.model.decoder.update(layers=10, cycle=10, residual_channels=32, gate_channels=32, skip_channels=64)
  if VARIANTS[variant] is None:
    c.stage = "wavenet"
  else:
    kind, strides, diversity, ema = VARIANTS[variant]
    c.model.quantizer.update(kind=kind, diversity_weight=diversity, ema_decay=ema,
                             restart_threshold=1.0 if ema else 0.0)
    c.model.encoder.strides = strides
  c.train.steps = 2000
  c.train.batch_size = 8
  c.train.learning_rate = 2e-3
  c.train.warmup_steps = 50
  c.train.log_every = 25
  c.train.eval_every = 250
  c.train.checkpoint_every = 250
  c.train.keep = 1
  c.eval.batch_size = 8
  c.eval.max_crops = 128
  c.eval.audio_seconds = 0.0
  return c
