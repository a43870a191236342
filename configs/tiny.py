"""A tiny config for tests: seconds per run on a CPU. `stage` is 'ada' (default) or 'prior'.

--config=configs/tiny.py  or  --config=configs/tiny.py:prior
"""

from argmax_music.config import parse_variant
from configs import base


def get_config(arg: str = ""):
  stage = parse_variant(arg, dict(stage="ada"), "configs/tiny.py")["stage"]
  c = base.get_config()
  c.stage = stage
  c.data.crop = 160 if stage == "ada" else 32
  c.data.threads = 1
  c.model.num_codes = 16
  c.model.quantizer.dim = 8
  c.model.encoder.strides = (2, 4)
  c.model.encoder.channels = 16
  c.model.encoder.blocks_per_stage = 1
  c.model.upsampler.channels = 16
  c.model.upsampler.kernel_size = 3
  # Off: the decoder's input noise is drawn per batch row, and two processes order a global batch's rows otherwise
  # than one, so the multi-process tests could not compare runs exactly (tests/test_ada.py tests the switches).
  c.model.update(decoder_input_noise=0.0, decoder_blind_fraction=0.0)
  c.model.decoder.update(layers=4, cycle=4, residual_channels=16, gate_channels=16, skip_channels=16)
  c.prior.wavenet.update(layers=4, cycle=4, residual_channels=16, gate_channels=16, skip_channels=16)
  c.prior.transformer.update(layers=2, heads=2, dim=32, mlp_dim=64, max_len=64)
  c.train.steps = 4
  c.train.batch_size = 4
  c.train.warmup_steps = 2
  c.train.learning_rate = 1e-3
  c.train.log_every = 2
  c.train.eval_every = 4
  c.train.checkpoint_every = 2
  c.eval.batch_size = 4
  c.eval.max_crops = 8
  c.eval.audio_seconds = 0.01
  return c
