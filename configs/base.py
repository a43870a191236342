"""The base config every other config starts from; a variant changes only what differs.

Stages: `stage='ada'` trains one level of the hierarchy on `data.dir` (mu-law audio
for level 1, the codes of the level below for level 2 and up); `stage='prior'`
trains the code prior on `data.dir` (the top level's codes); `stage='wavenet'` trains an
unconditional WaveNet shaped like `model.decoder` (the baseline that shows what the codes add).
"""

import ml_collections


def get_config():
  c = ml_collections.ConfigDict()
  c.stage = "ada"  # 'ada' (a level), 'prior' (over the top codes) or 'wavenet' (unconditional baseline)
  c.seed = 0

  c.data = ml_collections.ConfigDict()
  c.data.dir = "data/prepared"  # a prepared dataset: audio (level 1) or codes (higher levels, prior)
  c.data.crop = 16000  # timesteps per training example, at the data's rate
  # Crops shorter than an autoregressive model's receptive field are refused at start (the model would
  # never see its whole context); True allows them, for experiments that want it.
  c.data.allow_short_crop = False
  # True: training crops may run from one file's end into the next file (manifest order), so a prior also learns
  # that music follows a piece's final silence; False: each crop lies within one file.
  c.data.across_files = False
  # > 0: training crops leave out each file's last N seconds (a piece's final chord dying away), so that a prior
  # never learns that the music stops: its pieces have no end, and within a file nothing follows an ending. At 2 s
  # the shipped prior's pieces drifted more into a final chord's codes, not less (1.20 notes/s against 2.08).
  c.data.trim_end_seconds = 0.0
  c.data.threads = 2
  c.data.prefetch = 8

  c.model = ml_collections.ConfigDict()
  c.model.num_codes = 256  # K
  c.model.dtype = "float32"  # compute dtype: 'float32' or 'bfloat16'
  c.model.quantizer = ml_collections.ConfigDict()
  c.model.quantizer.kind = "argmax"  # 'argmax' (AMAE) or 'vq' (VQ-VAE)
  # AMAE: the diversity loss's weight, 0.01 by default with the codes term below at the same weight. At the demo's
  # budget (configs/cpu_demo.py's level 1 as an AMAE: K = 128, hop 8, 330 steps; 3 seeds; WORKSPACE.md, "What makes
  # the AMAE work") weights of 1 kept every code in use, yet the codes carried 0.006-0.017 bits/code about the score
  # and reconstructed at onset F1 0.02-0.09; at 0.01 they carried 0.12-0.15 bits/code at F1 0.31-0.40 (the VQ-VAE +
  # EMA: 0.62), with a lower NLL in every seed. The published weight is 1 (`diversity_weight=1.0`).
  c.model.quantizer.diversity_weight = 0.01
  c.model.quantizer.diversity_reduce = "mean"  # AMAE: sum_k (K*qbar_k - 1)^2, 'sum' or / K 'mean'
  # AMAE: the same loss on the argmax codes' own frequencies. On by default (RESULTS.md, "Collapse by diversity
  # loss"): at 2,000 steps the published loss alone let 7 of 18 runs collapse ('mean'; 'sum': 4 of 6), with
  # this term 0 of 6 did, and the NLL differences it made were within the noise. 0: the published loss alone.
  c.model.quantizer.code_diversity_weight = 0.01
  # AMAE: > 0 evaluates both diversity terms at running means (decay d; the gradient still reaches the batch's
  # mean at full weight) rather than at the batch's mean alone; 0: the batch's alone, as published.
  c.model.quantizer.diversity_target_decay = 0.0
  # AMAE, with a running target: 'full' (above), 'scaled' (the gradient (1 - d) times that), 'codes' (the codes
  # term alone at its running mean). Measured at the demo's budget: WORKSPACE.md, "What makes the AMAE work".
  c.model.quantizer.diversity_target_mode = "full"
  c.model.quantizer.mass_floor = 0.0  # AMAE: q = relu(z) / max(sum relu(z), mass_floor); 0: / (sum + 1e-6), published
  # AMAE: q = relu(z) / sum relu(z), published, or 'softmax' (q = softmax(z)): the same codes (argmax z), but the
  # softmax passes the straight-through gradient to every entry of z, the ReLU to the positive ones only. At the demo's
  # budget (weights 0.01, decoder input noise 0.3, normalised conditioning; WORKSPACE.md) the softmax gave onset F1
  # 0.61 +- 0.05 against 0.50 +- 0.04 over seeds 0-2 (+0.10, Welch 95% CI +0.004 to +0.21) but collapsed to one code
  # at seed 5, where the ReLU did not: so the ReLU by default.
  c.model.quantizer.normalizer = "relu"
  # AMAE: + weight x the mean entropy of q per position (bits); 0: published. At the demo's budget 0.1 collapsed to one
  # code and 0.03 left codes that carry nothing about the score (F1 0.00 both; WORKSPACE.md), so off.
  c.model.quantizer.confidence_weight = 0.0
  # AMAE: > 0 picks codes by argmax(q + b), a per-code bias moved by this much a step towards the batch's rarer codes
  # (usage kept up without a loss on q); 0: published.
  c.model.quantizer.balance_rate = 0.0
  c.model.quantizer.dim = 64
  c.model.quantizer.commitment = 0.25
  c.model.quantizer.ema_decay = 0.0  # > 0: EMA codebook updates
  c.model.quantizer.restart_threshold = 0.0  # > 0 (with EMA): restart codes with EMA count below it
  c.model.encoder = ml_collections.ConfigDict()
  c.model.encoder.strides = (4, 5)  # hop = product
  c.model.encoder.channels = 64
  c.model.encoder.blocks_per_stage = 3
  c.model.encoder.kernel_size = 3
  c.model.upsampler = ml_collections.ConfigDict()
  c.model.upsampler.channels = 64  # a 1x1 projection of each code vector, repeated hop times, then a conv
  c.model.upsampler.kernel_size = 9
  # The AMAE's recipe, the next three switches on by default (off: the published model): with the weights 0.01 above
  # they are the AMAE's best variant measured (WORKSPACE.md, "What makes the AMAE work"; onset F1 of 3 validation
  # clips of 4 s at temperature 0 against the score). At the demo's budget (K = 128, hop 8, 330 steps) 0.58 +- 0.04
  # over 12 seeds, none collapsed, against the VQ-VAE + EMA's 0.61 +- 0.04 with the same input noise (-0.03, Welch
  # 95% CI -0.07 to -0.00); in the small-scale study (configs/small_scale.py's `amae_hop8_recipe`, K = 64, 2,000
  # steps of 2 crops) 0.61 +- 0.04 over 6 seeds, none collapsed, against 0.64 +- 0.02 (-0.03, CI -0.08 to +0.01).
  # True: LayerNorm over channels after the projection, every code's vector at unit scale whatever K.
  c.model.upsampler.normalize = True
  # > 0: in training, each timestep of the decoder's input is a random class with this probability (targets clean),
  # so the decoder must read the codes; 0: the signal itself, as published. configs/piano.py's level 2 uses 0.3
  # (through both levels onset F1 0.44 against 0.14 without).
  c.model.decoder_input_noise = 0.3
  # > 0: in training, each sequence's decoder input is random throughout with this probability, so that on it the
  # decoder predicts from the codes alone (a loss on what the codes carry); 0: published. With the two switches
  # above, 0.25 took the AMAE from 0.50 +- 0.04 to 0.59 +- 0.04 at the demo's budget (seeds 0-2, +0.09, CI +0.004 to
  # +0.17); 0.5 did as well there (0.58 +- 0.04 over 12 seeds against 0.58 +- 0.05 over 6) and better in the
  # small-scale study (0.61 +- 0.04 over 6 seeds against 0.53 +- 0.03 over 3, +0.08, CI +0.01 to +0.15). It did not
  # help a VQ-VAE + EMA (0.60 +- 0.02 against 0.61 +- 0.05 at 0.25), so the demo's and the shipped VQ-VAEs set it to 0.
  c.model.decoder_blind_fraction = 0.5
  # A level's workdir: its encoder and quantizer (and codebook) are copied and kept fixed, so this level's codes are
  # that level's and only the upsampler and decoder train: a decoder for sampling, with its own receptive field, over
  # codes learnt with a short one (an upsampler, as Jukebox's). The codes keep that level's run id, so a prior over
  # them sits on this level too. "": the level learns its own codes. configs/piano.py:upsampler2 is one (WORKSPACE.md,
  # "A level-2 decoder over fixed codes").
  c.model.codes_from = ""
  # > 0: in training, each code the decoder is conditioned on is a random one with this probability (the encoder's
  # codes are otherwise unchanged), so that it learns to render codes with errors in them, as a prior's samples have.
  # Over the shipped level 2's codes 0.3 cost notes (1.57 notes/s against 2.09) and 0.6 rendered near silence.
  c.model.code_noise = 0.0
  c.model.decoder = ml_collections.ConfigDict()
  c.model.decoder.layers = 20
  c.model.decoder.cycle = 10
  c.model.decoder.kernel_size = 2
  c.model.decoder.residual_channels = 64
  c.model.decoder.gate_channels = 64
  c.model.decoder.skip_channels = 128

  c.prior = ml_collections.ConfigDict()
  c.prior.kind = "wavenet"  # 'wavenet' or 'transformer'
  c.prior.dtype = "float32"
  c.prior.wavenet = ml_collections.ConfigDict(
    dict(layers=20, cycle=10, kernel_size=2, residual_channels=64, gate_channels=64, skip_channels=128)
  )
  c.prior.transformer = ml_collections.ConfigDict(dict(layers=4, heads=4, dim=128, mlp_dim=512, max_len=1024))
  # > 0: in training each input code is a random one with this probability (targets clean), so the prior learns to
  # continue a past with errors in it, as its samples have. configs/piano.py's prior uses 0.2 (its samples drifted
  # into a few codes: 1.24 notes/s through both levels against 0.51 without).
  c.prior.input_noise = 0.0
  # What replaces a noised input code: 'uniform' (a random code) or 'sampled' (the prior's own sample given the
  # real past: parallel scheduled sampling, one more forward pass per step).
  c.prior.input_noise_kind = "uniform"
  # True: a WaveNet prior conditioned at every step on the key of its piece's score (the data's manifest gives each
  # file's key: prepare a corpus or MAESTRO folder, then encode); it samples in a key asked for, or drawn from the
  # training pieces' keys. The paper's prior is unconditional; configs/piano.py says why the shipped one is not.
  c.prior.condition_on_key = False
  # With condition_on_key: the share of training crops whose key is hidden (an all-zero conditioning), so that the
  # prior also predicts without a key, which guided sampling (`stack.Sampler`'s guidance) contrasts with the key's.
  c.prior.key_dropout = 0.0

  c.train = ml_collections.ConfigDict()
  c.train.steps = 10000
  c.train.batch_size = 8  # global
  c.train.learning_rate = 3e-4
  c.train.warmup_steps = 500
  c.train.schedule = "cosine"  # 'cosine', 'rsqrt' or 'constant' (after warm-up)
  c.train.weight_decay = 0.0
  c.train.grad_clip = 1.0
  c.train.ema_decay = 0.0  # > 0: Polyak/EMA parameters, used for eval and sampling
  # True: the n-th update weighs the new parameters (1 - d) / (1 - d^n): the bias-corrected EMA of the steps so far.
  # False: plain EMA from the initial parameters, whose weight d^n is still 82% after 2,000 steps at paper.py's
  # d = 0.9999 (14% at 0.999): short runs would be evaluated and sampled with a model pulled towards its init.
  c.train.ema_debias = True
  c.train.log_every = 50
  c.train.eval_every = 1000
  c.train.checkpoint_every = 1000
  c.train.keep = 3
  c.train.on_nan = "skip"  # 'skip' (count it) or 'stop'

  c.eval = ml_collections.ConfigDict()
  c.eval.batch_size = 8
  c.eval.max_crops = 64
  c.eval.audio_seconds = 2.0  # reconstruction clip written to TensorBoard at each eval
  c.eval.music_every = 0  # steps between musical figures of that clip (note F1, spectra) in TensorBoard; 0: off
  # A level's codes count as collapsed (a warning, and `collapsed: true` in eval.json) below either value.
  c.eval.collapse_entropy_bits = 1.0  # entropy of the argmax codes' histogram, bits per code
  c.eval.collapse_usage = 0.1  # fraction of the K codes in use
  return c


def use_vq_ema(c: ml_collections.ConfigDict) -> None:
  """Makes `c`'s level a VQ-VAE with an EMA codebook and dead-code restarts (no diversity loss), trained as the
  demo's and the shipped VQ-VAEs were measured: the AMAE's recipe above (decoder input noise, blind sequences,
  normalised conditioning) off."""
  c.model.quantizer.update(kind="vq", ema_decay=0.99, restart_threshold=1.0, diversity_weight=0.0)
  c.model.update(decoder_input_noise=0.0, decoder_blind_fraction=0.0)
  c.model.upsampler.normalize = False
