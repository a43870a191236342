"""What every command line tool shares: quiet logs, and errors a user can cause as one line.

Each tool's `__main__` block calls `cli.run(main, *user_errors)` instead of `app.run(main)`.
It also keeps the memory XLA frees for reuse (`host_memory.keep_freed_memory`) and the programs
XLA compiles, for the next process (`keep_compiled_programs`).

- Logs: by default only this package's INFO lines (as bare messages) and everyone's warnings
  show; Orbax's and JAX's INFO chatter (the 'Unable to initialize backend' probe included) is
  hidden. An explicit `--verbosity=N` (absl's flag) shows every library's log at that level,
  with absl's usual prefix.
- Errors a user can cause (a missing folder or file, an unreadable audio file, a malformed dataset,
  an impossible or unknown config key, plus the tool's own `user_errors`) print one line, `error: ...`, on
  stderr and exit with status 1; `--verbosity=1` or higher shows the traceback instead.
"""

from __future__ import annotations

import logging as py_logging
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

from absl import app, flags, logging

from argmax_music import host_memory
from argmax_music.audio import AudioError
from argmax_music.config import ConfigError
from argmax_music.data.dataset import DatasetError

PACKAGE_DIR = "argmax_music"
# Errors whose message names the file or key at fault: no traceback needed to act on them.
# OSError: a missing folder or file, no permission, a full disk; the config file that failed to load.
# AudioError: an audio file given to a tool that is missing, unreadable, empty or not finite.
USER_ERRORS = (AudioError, ConfigError, DatasetError, OSError)


def verbosity_asked(argv: list[str]) -> int | None:
  """The --verbosity (or -v) value given on the command line, None when there is none."""
  for i, arg in enumerate(argv[1:], 1):
    name, sep, value = arg.partition("=")
    if name in ("--verbosity", "-v"):
      if not sep and i + 1 < len(argv):
        value = argv[i + 1]
      try:
        return int(value)
      except ValueError:
        return None
  return None


def _ours_or_warning(record: py_logging.LogRecord) -> bool:
  return record.levelno >= py_logging.WARNING or f"/{PACKAGE_DIR}/" in record.pathname.replace("\\", "/")


class _PlainFormatter(py_logging.Formatter):
  """INFO lines as bare messages, warnings and errors with their level in front."""

  def format(self, record: py_logging.LogRecord) -> str:
    message = record.getMessage()
    return message if record.levelno < py_logging.WARNING else f"{record.levelname.lower()}: {message}"


def quiet_logs(argv: list[str]) -> None:
  """Unless --verbosity was given: hide other libraries' INFO lines, and drop absl's line prefix."""
  if verbosity_asked(argv) is None:
    handler = logging.get_absl_handler()
    handler.addFilter(_ours_or_warning)
    handler.setFormatter(_PlainFormatter())


def fail(message: str) -> None:
  """Print one `error:` line to stderr and exit with status 1."""
  print(f"error: {message}", file=sys.stderr, flush=True)
  sys.exit(1)


def message_of(error: BaseException) -> str:
  """The error's message as a user should read it (quotes KeyError adds are dropped)."""
  text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
  if "Failed loading config file" in text:  # config_flags' report: the last line names the file and the reason.
    text = "--config: " + text.strip().splitlines()[-1].strip()
  return text or type(error).__name__


def unknown_config_key(error: BaseException, argv: list[str]) -> str | None:
  """For a config override naming a key the config lacks: a message naming the flag, else None."""
  chain = [error]
  while chain[-1].__context__ is not None and len(chain) < 10:
    chain.append(chain[-1].__context__)
  detail = next((str(e.args[0]) for e in chain if isinstance(e, KeyError) and e.args), None)
  key = detail and re.match(r"'([^']+)'", detail)
  if not key:
    return None
  hint = re.search(r'Did you mean "([^"]+)"', detail)
  for arg in argv[1:]:
    name = arg.partition("=")[0]
    if name.startswith("--config.") and key.group(1) in name.split(".")[1:]:
      return f"{name}: the config has no key '{key.group(1)}'" + (f" (did you mean '{hint.group(1)}'?)" if hint else "")
  return None


# The bound of the folder of compiled programs (a `sample` of the shipped model keeps 8 of them, 0.5 MB).
COMPILED_PROGRAMS_MAX_BYTES = 512 * 2**20


def keep_compiled_programs() -> None:
  """XLA's compiled programs kept on disk for the next process (JAX's persistent compilation cache; those that took
  0.2 s or more to compile), in `native.cache_folder()`/jax unless JAX's own variables say otherwise
  (JAX_COMPILATION_CACHE_DIR, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS, JAX_COMPILATION_CACHE_MAX_SIZE). A second
  `sample` of the shipped model then takes 12.9 s instead of 22.6 s on 2 cores (README). The least recently used
  programs go beyond COMPILED_PROGRAMS_MAX_BYTES; deleting the folder is safe."""
  import jax

  from argmax_music.models import native

  if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    jax.config.update("jax_compilation_cache_dir", os.path.join(native.cache_folder(), "jax"))
  if not os.environ.get("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"):
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
  if not os.environ.get("JAX_COMPILATION_CACHE_MAX_SIZE"):
    jax.config.update("jax_compilation_cache_max_size", COMPILED_PROGRAMS_MAX_BYTES)
  if jax.config.jax_compilation_cache_max_size > 0:
    stamp_unbounded_programs(Path(jax.config.jax_compilation_cache_dir))


def stamp_unbounded_programs(folder: Path) -> None:
  """JAX's bounded cache reads a last-use time beside every program in its folder, and writes no new program (with a
  warning) while one lacks it, as those written without the bound do (this project before it,
  JAX_COMPILATION_CACHE_MAX_SIZE=-1): give them their file's modification time."""
  for program in folder.glob("*-cache"):
    last_use = program.with_name(program.name.removesuffix("-cache") + "-atime")
    if not last_use.exists():
      last_use.write_bytes(program.stat().st_mtime_ns.to_bytes(8, "little"))


def run(main: Callable, *user_errors: type[BaseException]) -> None:
  """app.run(main) with quiet logs, freed host memory kept for reuse (`host_memory`), compiled programs kept for the
  next run (`keep_compiled_programs`), and `user_errors` (besides USER_ERRORS) reported in one line."""
  host_memory.keep_freed_memory()
  keep_compiled_programs()
  argv = sys.argv
  verbose = (verbosity_asked(argv) or 0) >= 1
  caught = USER_ERRORS + tuple(user_errors)
  started = []

  def wrapped(args):
    started.append(True)
    quiet_logs(argv)
    try:
      return main(args)
    except caught as e:
      if verbose:
        raise
      fail(message_of(e))

  try:
    app.run(wrapped)
  except (AttributeError, KeyError, ValueError, TypeError, OSError, flags.Error) as e:
    if started or verbose:  # An error of the tool itself (a bug): its traceback is the useful part.
      raise
    fail(unknown_config_key(e, argv) or f"the command line could not be read: {message_of(e)}")
