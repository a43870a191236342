"""The demo's terminal: a stage shows its command, a progress bar and its notices; the rest goes to its log."""

import pytest

from argmax_music import demo

CHATTY_STAGE = """
import sys, time
for i in range(300):
  print(f"I1125 12:00:00.000 1 checkpoint_manager.py:1] orbax chatter {i}", file=sys.stderr)
for step in range(0, 101, 10):
  print(f"step {step}/100  loss 1.0  2.0 steps/s  ETA 0:{100 - step:02d}", file=sys.stderr, flush=True)
sys.stderr.write("prepare [####----] 3/4 2.0 files/s ETA 0:01\\r")
print("warning: 2 files were skipped (their reasons are in the manifest)", file=sys.stderr)
print('{"step": 100}')
sys.exit(int(sys.argv[1]))
"""


@pytest.fixture
def chatty(tmp_path, monkeypatch):
  (tmp_path / "chatty_stage.py").write_text(CHATTY_STAGE)
  monkeypatch.syspath_prepend(str(tmp_path))
  monkeypatch.setenv("PYTHONPATH", str(tmp_path))
  monkeypatch.setattr("sys.argv", ["demo"])
  return tmp_path


def test_a_stage_shows_its_command_progress_and_warnings_only(chatty, capsys):
  demo.run("chatty_stage", "0", label="level1", log_dir=chatty / "logs")
  out, err = capsys.readouterr()
  shown = [line for line in (out + err).replace("\r", "\n").splitlines() if line.strip()]
  assert shown[0].startswith("level1") and "$ python -m chatty_stage 0" in shown[0]
  assert any("warning: 2 files were skipped" in line for line in shown)
  assert any("done in" in line for line in shown)
  assert not any("orbax" in line or '"step"' in line for line in shown)
  assert any(line.strip().startswith("level1:") and "%|" in line for line in shown)  # the stage's bar
  log = (chatty / "logs" / "level1.log").read_text()
  assert log.count("orbax chatter") == 300 and '{"step": 100}' in log


def test_a_failing_stage_names_its_log_and_shows_its_last_lines(chatty, capsys):
  with pytest.raises(demo.StageFailed, match=r"stage 'prior' failed \(exit 3\).*prior\.log"):
    demo.run("chatty_stage", "3", label="prior", log_dir=chatty / "logs")
  assert '  | {"step": 100}' in capsys.readouterr().err


def test_progress_lines_are_recognised():
  assert demo.is_progress("step 150/450  loss 2.1  ETA 1:02") == (150, 450)
  assert demo.is_progress("   prior:  50%|#####     | 128/256 [00:02<00:02, 60.0steps/s]") == (128, 256)
  assert demo.is_progress('eval at step 150: {"nll_bits": 5.1}') is None
  assert demo.is_progress("resumed from runs/demo/level1/checkpoints at step 1/2") is None
