"""Executable documentation (issue 14): every command in the shell blocks of README.md, docs/*.md and
benchmarks/gpu/README.md is run here as a user would type it, in a scratch folder, offline, with ``--weights tiny``
substituted for a real weights root. A command either succeeds, or (when it needs the network, a GPU, data or
files the user brings) fails with one clear ``error:`` line naming the fix; commands that cannot run inside a test
(``make``, multi-process ``torchrun``, a GPU benchmark) name the test that covers them. A documented command that
is not classified below fails this test, so the docs cannot drift from what the tool does."""

from __future__ import annotations

import glob
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "benchmarks" / "gpu" / "README.md"]
PROGRAMS = ("rtdmd-bench", "torchrun", "make", "mkdir", "cp")  # first words that make a line a command


@dataclass(frozen=True)
class Expect:
    kind: str  # "ok" | "fails" | "elsewhere"
    text: str = ""  # fails: a phrase of the one-line error; elsewhere: the test file that runs it


OK = Expect("ok")


def fails(phrase: str) -> Expect:
    return Expect("fails", phrase)


def elsewhere(test: str) -> Expect:
    return Expect("elsewhere", test)


# (regex on the command as documented, after line continuations are joined) -> what it must do offline.
# Checked in order; the first match wins.
EXPECT: list[tuple[str, Expect]] = [
    (r"^make (demo|test)$", elsewhere(".ci/run")),  # CI runs the test command and the demo's smoke eval
    (r"^rtdmd-bench list ", OK),
    (r"^rtdmd-bench prompts import geneval path/to/", fails("path/to/evaluation_metadata.jsonl")),
    (r"^rtdmd-bench prompts import (pickapic|geneval)-train ", fails("not found")),
    (r"^rtdmd-bench prompts fetch ", fails("Without network access")),
    (r"^rtdmd-bench prompts add ", OK),
    (r"^rtdmd-bench weights fetch .*--dry-run", fails("offline")),
    (r"^rtdmd-bench weights fetch ", fails("offline")),
    (r"^rtdmd-bench eval --model flux2-rtdmd --suite drawbench", fails("prompts fetch drawbench")),
    (r"^rtdmd-bench eval --model flux2-rtdmd --benchmark rtdmd-paper", fails("prompts")),
    (r"^torchrun .* train ", elsewhere("tests/training/test_readme_recipe.py")),
    (r"^torchrun .* eval ", elsewhere("tests/eval/test_interrupt_and_geneval.py")),
    (r"^rtdmd-bench validate ", OK),
    (r"^rtdmd-bench eval --model black-forest-labs/", fails("offline")),
    (r"^rtdmd-bench eval --model \./my-distilled-model", fails("my-distilled-model")),
    (r"^rtdmd-bench eval --model flux2-4b --lora Harahan/", fails("offline")),
    (r"^rtdmd-bench eval --model sd35m --lora ckpt/", fails("ckpt/s2/lora/generator_ema.pt")),
    (r"^rtdmd-bench eval --model sd35m --lora runs/train/", fails("prompts import drawbench")),
    (r"^rtdmd-bench score outputs/ --suite geneval", fails("prompts import geneval")),
    (r"^rtdmd-bench score runs/flux2 ", fails("prompts fetch drawbench")),
    (r"^rtdmd-bench score imgs/ ", fails("prompts fetch drawbench")),
    (r"^rtdmd-bench export runs/sdxl-geneval", fails("runs/sdxl-geneval")),
    (r"^rtdmd-bench eval --model tiny-(flux2|sd35) --suite smoke --weights tiny ", OK),
    (r"^mkdir -p leaderboards/baseline && cp ", OK),
    (r"^rtdmd-bench (leaderboard|compare|check|report) ", OK),
    (r"^make toy$", elsewhere("tests/toy/test_sweeps.py")),  # long (the published sweeps): its parts run quick
    (r"^rtdmd-bench toy --(sweep|docs)", elsewhere("tests/toy/test_sweeps.py")),
    (r"^rtdmd-bench toy ", elsewhere("tests/toy/test_bench.py")),
    (r"^rtdmd-bench bench gpu --tiny", elsewhere("tests/bench/test_gpu_bench_tiny.py")),
    (r"^rtdmd-bench bench gpu", fails("CUDA")),
]


def _shell_blocks(text: str) -> list[str]:
    """Bodies of fenced blocks marked bash/sh/shell or unmarked (unmarked blocks may hold diagrams: only lines
    starting with a known program count)."""
    return [m.group(2) for m in re.finditer(r"```([a-z]*)\n(.*?)```", text, re.S) if m.group(1) in ("", "bash",
                                                                                                   "sh", "shell")]


def documented() -> list[tuple[str, str]]:
    """(file, command) for every documented command, line continuations joined and comments dropped."""
    out = []
    for doc in DOCS:
        for block in _shell_blocks(doc.read_text()):
            for line in re.sub(r"\\\n\s*", " ", block).splitlines():
                command = re.split(r"\s+#", line, maxsplit=1)[0].strip()
                if command.split(" ", 1)[0] in PROGRAMS:
                    out.append((doc.relative_to(REPO).as_posix(), re.sub(r"\s+", " ", command)))
    return out


def expectation(command: str) -> Expect | None:
    return next((e for pattern, e in EXPECT if re.search(pattern, command)), None)


def _argv_variants(command: str, cwd: Path) -> list[list[str]]:
    """The argv lists a shell would run for ``rtdmd-bench ...`` (``a|b|c`` alternatives expanded, globs expanded in
    ``cwd``), program name dropped, real weights roots replaced by the tiny weights."""
    words = shlex.split(command)[1:]
    words = ["tiny" if w == "/data/w" else w for w in words]
    alternatives = [i for i, w in enumerate(words) if "|" in w]
    variants = [words] if not alternatives else [
        words[:alternatives[0]] + [alt] + words[alternatives[0] + 1:] for alt in words[alternatives[0]].split("|")]
    expanded = []
    for argv in variants:
        flat = []
        for w in argv:
            matches = sorted(glob.glob(w, root_dir=cwd)) if any(c in w for c in "*?[") else []
            flat.extend(matches or [w])
        expanded.append(flat)
    return expanded


def prepare(cwd: Path) -> None:
    """What a reader of the docs has at hand: the repository's files the docs point to, and the files the commands
    name as the user's own (their prompts, their eval config)."""
    for rel in ("trainers", "leaderboards"):
        shutil.copytree(REPO / rel, cwd / rel)
    (cwd / "prompts.txt").write_text("a red bicycle\na cat on a sofa\n")
    (cwd / "my_eval.yaml").write_text("model: tiny-flux2\nsuites: [smoke]\n")


def test_every_documented_command_is_classified():
    commands = documented()
    assert len(commands) >= 30, commands  # the extractor still finds the blocks
    unclassified = [f"{doc}: {c}" for doc, c in commands if expectation(c) is None]
    assert not unclassified, "classify these documented commands in EXPECT:\n" + "\n".join(unclassified)
    used = {pattern for _, c in commands for pattern, e in EXPECT if e is expectation(c)}
    assert used == {p for p, _ in EXPECT}, f"EXPECT rows no documented command uses: {set(dict(EXPECT)) - used}"
    for _, c in commands:
        e = expectation(c)
        if e.kind == "elsewhere":
            assert (REPO / e.text).exists(), f"{c!r} is said to be covered by {e.text}, which does not exist"


@pytest.mark.slow
def test_documented_commands_work_as_written(tiny_weights, tmp_path, monkeypatch, network_attempts):
    from typer.testing import CliRunner

    from rtdmd_bench.cli import app

    monkeypatch.chdir(tmp_path)
    prepare(tmp_path)
    runner = CliRunner()
    problems = []
    # Documents in order, so a command sees what earlier ones made (the smoke run before the gate that checks it).
    for doc, command in documented():
        e = expectation(command)
        if e.kind == "elsewhere":
            continue
        if not command.startswith("rtdmd-bench "):
            res = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True)
            if res.returncode != 0:
                problems.append(f"{doc}: {command!r} exited {res.returncode}: {res.stderr.strip()}")
            continue
        for argv in _argv_variants(command, tmp_path):
            res = runner.invoke(app, argv)
            lines = [ln for ln in res.output.splitlines() if ln.strip()]
            crashed = res.exception is not None and not isinstance(res.exception, SystemExit)
            if e.kind == "ok" and (res.exit_code != 0 or crashed):
                problems.append(f"{doc}: {argv} exited {res.exit_code}: {res.output.strip()[-400:]!r} "
                                f"{res.exception!r}")
            elif e.kind == "fails":
                errors = [ln for ln in lines if ln.startswith("error:")]
                one_line = " ".join(" ".join(errors).split())
                if res.exit_code != 2 or crashed or len(errors) != 1 or e.text not in one_line \
                        or "Traceback" in res.output:
                    problems.append(f"{doc}: {argv} should fail with one error line containing {e.text!r}; "
                                    f"exit {res.exit_code}: {res.output.strip()[-400:]!r} {res.exception!r}")
    assert not problems, "\n".join(problems)
