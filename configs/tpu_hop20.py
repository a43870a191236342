"""The headline config: an AMAE level at hop 20 (= 4 x 5) and its prior, for a TPU pod slice and full MAESTRO.

  --config=configs/tpu_hop20.py        level 1 on prepared MAESTRO (mu-law, 16 kHz)
  --config=configs/tpu_hop20.py:prior  the WaveNet prior on level 1's codes (800 codes/s)

The paper's model sizes (configs/paper.py) at hop 20 instead of 8, with bf16 compute and
batch 128 over the slice's devices (divisible by 8, 16, 32, 64, 128 chips).
"""

from argmax_music.config import parse_variant
from configs import paper


def get_config(arg: str = ""):
  stage = parse_variant(arg, dict(stage="ada"), "configs/tpu_hop20.py")["stage"]
  c = paper.get_config(f"stage={stage}")
  # Prepared data on each worker's disk (or a gcsfuse mount of a bucket).
  c.data.dir = "/mnt/data/maestro_prepared" if stage == "ada" else "/mnt/data/maestro_hop20_codes"
  c.data.threads = 8
  c.model.dtype = "bfloat16"
  c.model.encoder.strides = (4, 5)
  c.prior.dtype = "bfloat16"
  c.train.steps = 500_000
  c.train.batch_size = 128
  c.train.log_every = 100
  c.train.eval_every = 10_000
  c.train.checkpoint_every = 2000
  c.eval.batch_size = 128
  c.eval.max_crops = 1024
  return c
