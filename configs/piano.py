"""The shipped piano model: the paper's two-level hierarchy, sized for a 2-core CPU (`make pretrained`).

--config=configs/piano.py:level1   level 1 on audio: hop 8 (2 x 4), 2,000 codes/s, K = 128
--config=configs/piano.py:level2   level 2 on level 1's codes: hop 8 over them (64 overall), 250 codes/s, K = 512
--config=configs/piano.py:upsampler2   not shipped: level 2's encoder and codes kept (`model.codes_from`), a decoder
                                   that sees 4,095 of level 1's codes (2 s)
--config=configs/piano.py:prior    the prior over level 2's codes: receptive field 4,095 codes = 16.4 s
--config=configs/piano.py:prior1   the one-level comparison (RESULTS.md table (f)): the same prior over level 1's
                                   codes (4,095 codes = 2.0 s), as many steps as level 2 and the prior together (4,000)

Both levels are VQ-VAEs with an EMA codebook and dead-code restarts, the paper's baseline, not the AMAE: when they
were trained the AMAE's best variant reconstructed validation clips at onset note F1 0.24-0.54 at the demo's budget
against the VQ-VAE's 0.62-0.63. Its recipe in configs/base.py now reaches 0.58 +- 0.04 (12 seeds) against 0.61 +-
0.04, but the demo's prior generates fewer notes from its codes (WORKSPACE.md, "What makes the AMAE work"). As level
2 the recipe reconstructed through both levels at F1 0.39 / 0.42 (2 seeds) against this config's 0.43 / 0.42
(WORKSPACE.md, "Level 2 as the AMAE"). Level 1 is the demo's (configs/cpu_demo.py) trained 3x longer on the larger
corpus (F1 0.72 through level 1, as high as the transcriber scores the original clips). Level 2's decoder sees only
16 of level 1's codes (8 ms), as the paper advises (a decoder with a long receptive field predicts from its own past
and leaves the codes little to say), and in training each of its input codes is a random one with probability 0.3
(`model.decoder_input_noise`), so that it must read level 2's codes. Measured through both levels on 4 validation
clips of 4 s (level 2's decoder at temperature 0 / 1, level 1's at 0; K = 512 unless said): a decoder seeing 1,024
codes (K = 128, 2,000 steps) reconstructed at onset note F1 0.00 / 0.06 and chroma cosine 0.29 / 0.54; 64 codes:
0.08 / 0.17 and 0.74 / 0.79 in a 600-step run, but 0.03 / 0.04 and 0.32 / 0.49 in a 3,000-step one (eval NLL 4.59 ->
3.51 bits: a better model of the codes, worse reconstructions); 16 codes: 0.14 / 0.14 and 0.81 / 0.86 after 1,500
steps (the weights shipped before); 2 codes (one layer): 0.08 / 0.04 and 0.65 / 0.70 after 500; 16 codes with K =
2,048: 0.07 and 0.86 at temperature 0; with a decoder of twice the channels: 0.01 and 0.71. With the input noise at
0.3 (16 codes, 1,500 steps): **0.44** and 0.98 at temperature 0 (eval NLL 4.73 bits; level 2's codes carry 0.32
bits/code about the score, the shipped ones before 0.13). The prior's 22 layers (two cycles of dilations 1..1,024)
see 16 s. Its samples drift: over 8 pieces of 20 s the entropy of their codes in 2-s windows fell from 8.5 to 6.1
bits (real codes: 8.8) and level 2 rendered 0.51 notes/s from them (3.68 from real codes of validation pieces);
temperatures 0.7-0.9 gave 0.67-0.76, nucleus sampling (top-p 0.9) 0.72. In training each of its input codes is a
random one with probability 0.2 (`prior.input_noise`), so that it learns to continue a past with errors in it, as
its own samples have: 1.24 notes/s (eval NLL 3.57 bits against 3.35 without); 0.4 was too much (its samples repeat
one code after another, 0.18 notes/s). Over three prior seeds (0, the shipped one, 1 and 2) the pieces have 1.51,
0.49 and 0.80 notes/s: the shipped prior is the best of three. Two priors without the noise (seeds 0 and 1) gave
0.57 and 0.52: over the priors' means 0.93 ± 0.53 with it, 0.55 ± 0.04 without, +0.39 (Welch 95% CI -0.90 to +1.68),
a gain these priors cannot show; it stays at 0.2, whose mean is the higher. The one-level prior (prior1) with the
same noise collapsed (0.19 notes/s, 2 of 8 pieces near silence; RESULTS.md table (f)); without it an earlier run
gave 5.49 notes/s, so prior1 trains without. The shipped model's pieces decode with soft codes (`stack.Sampler`:
level 1 conditioned on the expected code vector under level 2's prediction): 2.04 notes/s from the shipped prior
against 1.51 with sampled codes, 4.83 against 3.41 from real level-2 codes (WORKSPACE.md, "What a perfect prior
would reach"). A prior trained 8,000 steps (eval NLL 3.00 bits) or on crops that run across files
(`data.across_files`, 3.52) drifts less (`experiments.prior_drift`: 3-5% repeats against 14%) but its pieces were not
measurably better (+0.45 and +0.36 notes/s with soft codes, 95% CIs from below 0; flatness 2 dB worse), so the prior
stays at 2,500 steps within files (WORKSPACE.md, "A prior that drifts less"). Its own one-step samples decode to
4.13 notes/s and its pieces to 2.08 (`experiments.prior_drift --decode`): the notes are lost where it continues its
own codes. Its own samples as the input noise (`prior.input_noise_kind='sampled'`) and a level 2 with K = 128 gave
1.51 and 1.68 / 1.20 notes/s, within this config's own spread over prior seeds (2.08 for seed 0, 1.18 for seed 1;
WORKSPACE.md, "What the prior loses to its own past"). So did the same noise at 0.5 (1.87), and a level-2 decoder
that sees 4,095 codes, as the one-level prior does, gave 1.35 with a reconstruction F1 of 0.27; a prior of twice the
channels (eval NLL 3.08) gave 1.75, its pieces drifting into the codes that end a file (WORKSPACE.md, "A level-2
decoder that sees 2 s"). Over the shipped level 2's own codes such a decoder (`:upsampler2`, trained with the
encoder fixed) reconstructs at F1 0.51 and renders real codes at 6.16 notes/s (the shipped level 2: 4.83), but the
shipped prior's pieces through it have 1.89 (2.08); a prior trained without the files' last 2 s
(`data.trim_end_seconds`) drifted more into the codes that end pieces (1.20); a prior that sees 2 s, below this
config's 16 s, trained on crops of 512 in batches of 32, made 2.50-2.88 over two seeds and both level 2s; on this
config's crops (4,096, 4 a batch) it made 1.76, and with three more layers to see 16 s 1.39 (WORKSPACE.md, "A
level-2 decoder over fixed codes"). Under priors that drift less the upsampler does add notes (+1.4 to +1.8): over
it, this prior trained on crops across files made 4.22, 3.35 and 3.20 notes/s (three seeds; the first above the 4.03
floor, 2 of 4 floors; this config's own three seeds made 2.08, 1.18 and 1.21) and the 8,000-step prior 3.94. That
pair is the next shipped model once table (f)'s one-level prior has trained at the new budget (WORKSPACE.md, "An
upsampler under priors that drift less").
"""

from argmax_music.config import parse_variant
from configs import base

STAGES = ("level1", "level2", "upsampler2", "prior", "prior1")


def get_config(arg: str = ""):
  stage = parse_variant(arg, dict(stage="level1"), "configs/piano.py")["stage"]
  if stage not in STAGES:
    raise ValueError(f"configs/piano.py: stage={stage!r}; expected one of {STAGES}")
  c = base.get_config()
  c.stage = "prior" if stage.startswith("prior") else "ada"
  c.data.dir = {
    "level1": "data/piano_large_prepared",
    "level2": "runs/piano/codes1",
    "upsampler2": "runs/piano/codes1",
    "prior": "runs/piano/codes2",
    "prior1": "runs/piano/codes1",
  }[stage]
  c.model.num_codes = 128
  base.use_vq_ema(c)
  c.model.encoder.strides = (2, 4)
  c.model.encoder.blocks_per_stage = 2
  c.model.upsampler.channels = 32
  c.model.decoder.update(layers=10, cycle=10, residual_channels=32, gate_channels=32, skip_channels=64)
  c.train.batch_size = 8
  c.train.learning_rate = 2e-3
  c.train.warmup_steps = 100
  c.train.log_every = 50
  c.train.checkpoint_every = 100
  c.train.keep = 1
  c.eval.batch_size = 8
  c.eval.max_crops = 32
  if stage == "level1":
    c.data.crop = 4000
    c.model.encoder.channels = 48
    c.train.steps = 1000
    c.eval.audio_seconds = 1.0
  elif stage in ("level2", "upsampler2"):
    c.data.crop = 2048
    c.model.num_codes = 512
    c.model.encoder.channels = 64
    c.model.upsampler.channels = 48
    c.model.decoder.update(layers=4, cycle=4, residual_channels=64, gate_channels=64, skip_channels=128)
    c.model.decoder_input_noise = 0.3
    c.train.steps = 1500
    if stage == "upsampler2":  # Level 2's codes, kept; a decoder that sees 4,095 of level 1's codes (docstring).
      c.model.codes_from = "runs/piano/level2"
      c.model.decoder.update(layers=22, cycle=11, residual_channels=48, gate_channels=48, skip_channels=96)
      c.data.crop = 4096
      c.train.batch_size = 4
      c.train.steps = 2000
  else:
    c.data.crop = 4096
    c.train.batch_size = 4
    c.prior.wavenet.update(layers=22, cycle=11, residual_channels=48, gate_channels=48, skip_channels=96)
    c.prior.input_noise = 0.2 if stage == "prior" else 0.0  # At 0.2 the one-level prior collapsed (docstring).
    c.train.steps = 2500 if stage == "prior" else 4000
  c.train.eval_every = c.train.steps
  return c
