"""The headline config: an AMAE level at hop 20 (= 4 x 5) and its prior, for a TPU pod slice and full MAESTRO.

  --config=configs/tpu_hop20.py        level 1 on prepared MAESTRO (mu-law, 16 kHz)
  --config=configs/tpu_hop20.py:prior  the WaveNet prior on level 1's codes (800 codes/s)

Batch 128 over the slice's devices (divisible by 8, 16, 32, 64, 128 chips), bf16 compute.
"""

from configs import base


def get_config(stage: str = "ada"):
  c = base.get_config()
  c.stage = stage
  # Prepared data on each worker's disk (or a gcsfuse mount of a bucket).
  c.data.dir = "/mnt/data/maestro_prepared" if stage == "ada" else "/mnt/data/maestro_hop20_codes"
  c.data.crop = 16000 if stage == "ada" else 4096
  c.data.threads = 8
  c.model.num_codes = 2048
  c.model.dtype = "bfloat16"
  c.model.encoder.strides = (4, 5)
  c.model.encoder.channels = 256
  c.model.encoder.blocks_per_stage = 4
  c.model.upsampler.channels = 128
  c.model.decoder.update(layers=30, cycle=10, residual_channels=128, gate_channels=256, skip_channels=256)
  c.prior.dtype = "bfloat16"
  c.prior.wavenet.update(layers=40, cycle=10, kernel_size=3, residual_channels=256, gate_channels=512,
                         skip_channels=512)
  c.train.steps = 500_000
  c.train.batch_size = 128
  c.train.learning_rate = 2e-4
  c.train.warmup_steps = 5000
  c.train.ema_decay = 0.9999
  c.train.log_every = 100
  c.train.eval_every = 10_000
  c.train.checkpoint_every = 2000
  c.eval.batch_size = 128
  c.eval.max_crops = 1024
  return c
