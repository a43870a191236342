"""The demo on the embedded piano corpus, sized for about 13 minutes in all on a 2-core CPU.

--config=configs/cpu_demo.py        level 1 (VQ-VAE, K = 128, hop 8 = 2x4) on the prepared corpus
--config=configs/cpu_demo.py:prior  the WaveNet prior on level 1's codes
--config=configs/cpu_demo.py:size=long, :prior,size=long   the same models trained 10x longer (about 60 and
    30 minutes on 2 cores): `python -m argmax_music.demo --size=long --root=runs/long`

Level 1 is the paper's baseline, a VQ-VAE (here with an EMA codebook and dead-code restarts), not the
AMAE: in the demo's budget it reconstructs the validation clips at onset note F1 0.62 after 330 steps
and 0.65 after 375 (decoder temperature 0; 0.63 from a fresh clone on 2026-12-02). The AMAE reached 0.28
after 375 at its published diversity weight (temperature 0.4, its best) and 0.58 +- 0.04 after 330 (temperature 0,
12 seeds, none collapsed; the VQ-VAE with the same input noise 0.61 +- 0.04) with configs/base.py's recipe (the
switches this file turns off for the VQ-VAE), below the demo's floor of 0.6, and the prior below then generated
0.91 notes/s from its codes against the VQ-VAE's 1.00 (seed 0, 8 pieces each; WORKSPACE.md, "What makes the AMAE
work"). 330 steps keep `make demo` within 15 minutes. K = 128 sits between K = 64 (F1 0.61 at 375 steps)
and K = 256 (F1 0.67, but a prior of this size then generates 0.50 notes/s of near-noise). Measured with the AMAE,
hop 8 with a 10-layer decoder (receptive field 1,024 samples) trains about twice as fast as hop 16 with 20 layers
and reconstructs better. The prior sees 1,024 codes (0.5 s; crop and receptive
field alike): with 63 codes (31 ms) it generated 0.12 notes/s. The search is in WORKSPACE.md.
"""

from argmax_music.config import parse_variant
from configs import base


def get_config(arg: str = ""):
  options = parse_variant(arg, dict(stage="ada", size="demo"), "configs/cpu_demo.py")
  stage, size = options["stage"], options["size"]
  if size not in ("demo", "long"):
    raise ValueError(f"configs/cpu_demo.py: size={size!r}; expected 'demo' or 'long'")
  c = base.get_config()
  c.stage = stage
  c.data.dir = "data/piano_prepared" if stage == "ada" else "runs/demo/codes"
  c.data.crop = 4000 if stage == "ada" else 1024
  c.model.num_codes = 128
  base.use_vq_ema(c)
  c.model.encoder.strides = (2, 4)
  c.model.encoder.channels = 48
  c.model.encoder.blocks_per_stage = 2
  c.model.upsampler.channels = 32
  c.model.decoder.update(layers=10, cycle=10, residual_channels=32, gate_channels=32, skip_channels=64)
  c.prior.wavenet.update(layers=10, cycle=10, residual_channels=32, gate_channels=32, skip_channels=64)
  c.train.steps = 330 if stage == "ada" else 1000
  c.train.batch_size = 8
  c.train.learning_rate = 2e-3
  c.train.warmup_steps = 100
  c.train.log_every = 50
  c.train.eval_every = 330 if stage == "ada" else 500
  c.train.checkpoint_every = 110 if stage == "ada" else 500
  if size == "long":
    c.train.update(steps=10 * c.train.steps, eval_every=500, checkpoint_every=250, keep=1)
  c.eval.batch_size = 8
  c.eval.max_crops = 32
  c.eval.audio_seconds = 0.5
  return c
