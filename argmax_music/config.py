"""Config helpers shared by every tool: load a config file by path, parse variant strings, flatten, errors.

A config is named the same way everywhere: `configs/paper.py:level=2,quantizer=vq`, a file
path with an optional variant string after the colon, plus `key=value` overrides
(`train.steps=100`). The trainer reads it through absl's `config_flags`; experiments,
benchmarks and tests through `load`.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path

import ml_collections

REPO = Path(__file__).resolve().parents[1]
# Keys whose configs/base.py default changed after runs were recorded without them: such a run trained with the
# value here (the published behaviour), not with today's default.
BEFORE_KEY = {"model": {"decoder_input_noise": 0.0, "decoder_blind_fraction": 0.0, "upsampler": {"normalize": False}}}


class ConfigError(ValueError):
  """A config value that cannot work; the message names the key."""


def parse_variant(arg: str | None, defaults: dict[str, str], name: str) -> dict[str, str]:
  """'key=value,key=value' -> defaults updated; a bare word sets the first key ('prior' -> stage=prior)."""
  options = dict(defaults)
  first = next(iter(defaults))
  for item in filter(None, (arg or "").split(",")):
    key, sep, value = item.partition("=")
    key, value = (key, value) if sep else (first, key)
    if key not in options:
      raise KeyError(f"{name}: unknown option {key!r}; expected one of {sorted(options)}")
    options[key] = value
  return options


def _parse_value(text: str, current):
  if isinstance(current, bool):
    if text.lower() not in ("true", "false", "1", "0"):
      raise ValueError(f"expected a bool, got {text!r}")
    return text.lower() in ("true", "1")
  if isinstance(current, str):
    return text
  try:
    value = ast.literal_eval(text)
  except (ValueError, SyntaxError):
    value = text
  if isinstance(current, tuple):
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)
  if isinstance(current, float) and isinstance(value, int):
    return float(value)
  return value


def apply_overrides(config: ml_collections.ConfigDict, overrides: Iterable[str]) -> None:
  """Apply 'section.key=value' overrides in place; an unknown key or a wrong type fails naming the key."""
  for item in overrides:
    key, sep, text = item.removeprefix("--config.").partition("=")
    if not sep:
      raise ConfigError(f"override {item!r}: expected key=value")
    *path, last = key.split(".")
    node = config
    try:
      for part in path:
        node = node[part]
      node[last] = _parse_value(text, node[last])
    except (KeyError, AttributeError, TypeError, ValueError) as e:
      raise ConfigError(f"{key}: cannot set to {text!r} ({e})") from e


def load(spec: str, overrides: Iterable[str] = ()) -> ml_collections.ConfigDict:
  """The config of 'path/to/config.py[:variant]' (relative to the working directory or the repository)."""
  path_text, _, arg = spec.partition(":")
  path = Path(path_text)
  if not path.exists() and (REPO / path).exists():
    path = REPO / path
  if not path.exists():
    raise ConfigError(f"config {spec!r}: no file {path_text}")
  if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # Config files import `configs.base`.
  module_spec = importlib.util.spec_from_file_location(f"_config_{path.stem}", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  config = module.get_config(arg) if arg else module.get_config()
  apply_overrides(config, overrides)
  config.lock()
  return config


def flatten(d: dict, prefix: str = "") -> dict:
  """{'a': {'b': 1}} -> {'a.b': 1}; tuples become lists (as after a JSON round trip)."""
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
  return out


def differing_keys(old: dict, new: dict, sections: Iterable[str]) -> dict[str, tuple]:
  """{key: (old value, new value)} for the flattened keys inside `sections` ('prior', 'train.steps', ...) whose
  values differ between two configs (as dicts)."""
  old, new = flatten(old), flatten(new)
  inside = lambda k: any(k == s or k.startswith(s + ".") for s in sections)
  keys = sorted(set(old) | set(new))
  return {k: (old.get(k), new.get(k)) for k in keys if inside(k) and old.get(k) != new.get(k)}


def run_config(recorded: dict) -> ml_collections.ConfigDict:
  """The config a run recorded (run.json's "config"), with every key newer than the run at configs/base.py's default,
  or at its value in BEFORE_KEY where that default has changed since: a new switch defaults to the behaviour before
  it, so an older run loads, resumes and samples as it trained."""
  from configs import base

  def with_defaults(values: dict, defaults: dict) -> dict:
    merged = dict(values)
    for key, default in defaults.items():
      if key not in merged:
        merged[key] = default
      elif isinstance(default, dict) and isinstance(merged[key], dict):
        merged[key] = with_defaults(merged[key], default)
    return merged

  return ml_collections.ConfigDict(with_defaults(with_defaults(recorded, BEFORE_KEY), base.get_config().to_dict()))
