"""The shipped piano model: the paper's two-level hierarchy, sized for a 2-core CPU (`make pretrained`).

--config=configs/piano.py:level1      level 1 on audio: hop 8 (2 x 4), 2,000 codes/s, K = 128
--config=configs/piano.py:level2      level 2 on level 1's codes: hop 8 over them (64 overall), 250 codes/s, K = 512
--config=configs/piano.py:upsampler2  level 2's decoder again, over its fixed codes (`model.codes_from`), seeing
                                      4,095 of level 1's codes (2 s): the level 2 that ships
--config=configs/piano.py:prior       the prior over level 2's codes: receptive field 4,095 codes = 16.4 s,
                                      conditioned on each piece's key
--config=configs/piano.py:prior1      the one-level comparison (RESULTS.md table (f)): the same prior over level 1's
                                      codes (4,095 codes = 2.0 s), also across files and conditioned on the key, as
                                      many steps as level 2, the upsampler and the prior together (13,500)
--config=configs/piano.py:guide       the prior's recipe trained 2,500 steps: the weaker prior that autoguidance
                                      moves the prior's logits away from (`sample --guide_prior --autoguidance`)
--config=configs/piano.py:guide1      prior1's recipe trained 2,500 steps: the one-level stack's guide, so that both
                                      stacks spend the same 2,500 steps more

Why each choice, in short (the measurements are in WORKSPACE.md, "The shipped model (issue 28)"):
- Both levels are VQ-VAEs with an EMA codebook and dead-code restarts, the paper's baseline: the AMAE's recipe
  reconstructs as well at the demo's budget (F1 0.58 +- 0.04 against 0.61 +- 0.04 over 12 seeds) but as level 2 it
  was no better (0.39 / 0.42 against 0.43 / 0.42) and the demo's prior makes fewer notes from its codes. Neither it
  nor blind sequences brought real codes nearer the corpus's pitch classes (WORKSPACE.md, "Level 2's encoder trained
  otherwise").
- Level 2 is trained twice. First with a decoder that sees 16 of level 1's codes and reads a random input code with
  probability 0.3 (`model.decoder_input_noise`): a decoder that can predict from its own past leaves level 2's codes
  nothing to say (F1 0.44 through both levels; 0.00-0.14 without the noise or with longer receptive fields). Then
  its encoder is kept and a decoder that sees 2 s is trained over its codes (`upsampler2`): it renders real codes
  at 6.16 notes/s against 4.83 (8 validation clips, soft codes). Conditioned on the key too, it ignored the key, and
  its pieces were no nearer the corpus's pitch classes (WORKSPACE.md, "Level-2 decoders over the same codes"). It
  reads its past without the input noise: with level 2's codes fixed, the noise has nothing left to teach them, and
  without it real codes decode at pitch-class distance 0.108 against 0.124 (32 clips; "The upsampler without input
  noise").
- The prior reads a random input code with probability 0.2 (`prior.input_noise`), so that it learns to continue a
  past with errors in it, and its crops run across files (`data.across_files`). Its pieces drift less (5-8%
  repeated codes against 14% within files) and, over the upsampler, three seeds made 4.22, 3.35 and 3.20 notes/s;
  within files three seeds made 2.08, 1.18 and 1.21 over the first level 2 ("An upsampler under priors that drift
  less"). The one-level prior trains without the input noise, with which it collapsed (within files).
- The prior is conditioned on the key of each piece's score (`prior.condition_on_key`, hidden from 20% of crops:
  `prior.key_dropout`) and sampled with classifier-free guidance towards a key drawn from the corpus's (6, with
  autoguidance: below; the card's `guidance`): unconditioned priors fell into the corpus's commonest key within 5 s.
  Over the same levels two such priors' pieces scored structure 0.79 and 0.79, pitch-class distance 0.25 and 0.25,
  against 0.38-0.58 and 0.36-0.42 for three unconditioned ones ("A prior conditioned on the key"). The paper's prior
  is unconditional.
- The prior trains 10,000 steps: its eval NLL falls from 3.50 (2,500 steps) and 3.11 (5,000) to 2.85 bits. Against
  5,000 steps, on the same 16 pieces' keys (soft codes), its pieces make 6.23 notes/s against 5.60, their notes
  counted from their tonic are 0.19 from the corpus's use of the scale against 0.21, structure 0.68 against 0.85 (the
  floor is 0.65); on sampling seeds 4-7, 14 of 16 pieces are in their key against 7 ("The prior trained 10,000
  steps"). prior1 is conditioned on the key too (its input noise is 0, the prior's 0.2), and its 13,500 steps keep
  the budgets equal, so that table (f) compares the levels alone.
- The prior samples at temperature 1.5 (training.json's `temperatures`), which offsets part of the sharpening that
  guidance brings (chosen at guidance 4, before the guide). On sampling seeds 4-7 (32 pieces, soft codes) the
  pitch-class distance fell from 0.163 at temperature 1 to 0.128-0.154 between 1.2 and 2.5; 1.5 gave 0.136 with 28 of
  32 pieces in their key. That gain did not hold on other seeds: 0.141 against 0.130 on table (f)'s, 0.138 against
  0.136 on seeds 8-11. Over the three sets the hotter prior's pieces use the scale better (0.149 against 0.174 from
  the tonic) and make more notes (7.03 against 6.66 notes/s), so 1.5 is kept. The one-level stack's pitch-class
  distance went from 0.182 to 0.136 ("The prior's sampling temperature").
- The prior is also guided away from a guide, its own recipe stopped at 2,500 steps (eval NLL 3.49 bits against
  2.85): autoguidance 2 at guidance 6 (the card's `autoguidance`). On eight sets of 32 pieces (prior temperature 1.5,
  soft codes) its pieces sat nearer the corpus's pitch classes than at guidance 4 without a guide on 7 of 8 (paired
  -0.026, 95% CI -0.043 to -0.009), and guidance 6 alone did not (0.134 and 0.142 against 0.146 and 0.141 on two
  sets). With four held-out sets, 0.120 (95% CI 0.104 to 0.137 over 12 sets) against the floor's 0.1176: 6 of 12
  sets under it. Autoguidance 3 broke the structure floor (0.60 on the first set), as autoguidance 2 did at guidance
  4 (0.55). The guide's seed is `make pretrained`'s (0), kept over seed 1 on the four held-out sets (0.127 against
  0.131) (WORKSPACE.md, "Autoguidance").
- The pieces decode with soft codes (`stack.Sampler`: level 1 conditioned on the expected code vector under level
  2's prediction): 7.42 notes/s against 6.29 with sampled codes from the shipped prior's codes, 6.85 against 6.21
  from real codes, and flatness -22.9 dB against -20.4 (the floor is -20.3); pitch-class distance 0.080 against
  0.098 (RESULTS.md table (f), 32 pieces; at guidance 4 without a guide: 7.01 against 5.64 notes/s, -21.7 against
  -19.4 dB).
"""

from argmax_music.config import parse_variant
from configs import base

STAGES = ("level1", "level2", "upsampler2", "prior", "prior1", "guide", "guide1")
GUIDE_STEPS = 2500  # A guide is its prior's recipe trained this long (eval NLL 3.49 bits against the prior's 2.85).


def get_config(arg: str = ""):
  stage = parse_variant(arg, dict(stage="level1"), "configs/piano.py")["stage"]
  if stage not in STAGES:
    raise ValueError(f"configs/piano.py: stage={stage!r}; expected one of {STAGES}")
  guide = stage.startswith("guide")
  stage = {"guide": "prior", "guide1": "prior1"}.get(stage, stage)  # A guide is its prior's recipe, stopped early.
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
      c.model.decoder_input_noise = 0.0  # The codes are fixed: noise only hid the clean past (docstring).
      c.data.crop = 4096
      c.train.batch_size = 4
      c.train.steps = 2000
  else:
    c.data.crop = 4096
    c.train.batch_size = 4
    c.prior.wavenet.update(layers=22, cycle=11, residual_channels=48, gate_channels=48, skip_channels=96)
    c.prior.input_noise = 0.2 if stage == "prior" else 0.0  # At 0.2 the one-level prior collapsed (docstring).
    c.prior.update(condition_on_key=True, key_dropout=0.2)
    c.data.across_files = True
    c.train.steps = GUIDE_STEPS if guide else 10000 if stage == "prior" else 13500
  # A level evaluates once, at its end (its eval reconstructs and transcribes audio); a prior, four times, so that its
  # log shows the held-out NLL while it trains (an eval reads the weights only: the steps are the same either way).
  # Derived from a reference to the steps, so that `--config.train.steps` moves the evals with it; derived even for a
  # level (`// 1`), since the bare reference would make `eval_every` and `steps` one field that sets both.
  c.train.eval_every = c.train.get_ref("steps") // (4 if stage.startswith("prior") else 1)
  return c
