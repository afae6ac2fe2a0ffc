"""The README and docs/ as a reader meets them: the README is short, every command and
code block in them runs as written, the styles they list are the registry's, and every
relative link lands on a file and a heading that exist."""

from __future__ import annotations

import re
import runpy
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from manual_bptt.checking.styles import STYLES
from manual_bptt.cli import build_parser, main
from tests.test_testing_api import API_PAGE

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = (README, *sorted((ROOT / "docs").glob("*.md")))
README_MOST_LINES = 300  # a front door: what it is for, the quick start, a tour, the contents
# A block too slow to run here (minutes) has <!-- not run: why --> on the line before it;
# its commands are still parsed. They must stay the exception.
NOT_RUN = "not run:"
MOST_NOT_RUN = 2
# verify and sweep search 200 problems by default, several seconds each; 10 keep this file
# fast, and give docs/verify.md's sessions the same output but for the counts (the
# gallery slip there is found and shrunk to the same counterexample).
QUICK_EXAMPLES = ["--examples", "10"]
SEARCHING = ("verify", "sweep")
KNOWN_LANGUAGES = {"", "bash", "console", "python"}
NUMBER = re.compile(r"\d+(?:\.\d+)?(?:e[-+]?\d+)?")
FENCED = re.compile(r"^```.*?^```$", flags=re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Block:
    """A fenced code block: its page, first line (1-based), language, body, and the HTML
    comment on the line before it ("" if none)."""

    page: Path
    line: int
    language: str
    body: str
    note: str

    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


@dataclass(frozen=True)
class Command:
    """A `bptt ...` line of a bash or console block, and the output a console block shows
    after it (empty for bash)."""

    block: Block
    argv: tuple[str, ...]
    shown: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.block.where()} bptt {shlex.join(self.argv)}"


def blocks(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").split("\n")
    found, i = [], 0
    while i < len(lines):
        if lines[i].startswith("```"):
            end = lines.index("```", i + 1)
            note = re.fullmatch(r"<!-- (.*) -->", lines[i - 1]) if i else None
            body = "\n".join(lines[i + 1 : end]) + "\n"
            found.append(Block(page, i + 1, lines[i][3:], body, note.group(1) if note else ""))
            i = end
        i += 1
    return found


ALL_BLOCKS = [block for page in PAGES for block in blocks(page)]


def commands(block: Block) -> list[Command]:
    if block.language == "bash":
        return [
            Command(block, tuple(words[1:]), ())
            for line in block.body.splitlines()
            for part in line.split("&&")
            if (words := shlex.split(part, comments=True)) and words[0] == "bptt"
        ]
    if block.language == "console":
        found: list[Command] = []
        for chunk in re.split(r"^\$ ", block.body, flags=re.MULTILINE)[1:]:
            typed, *shown = chunk.rstrip("\n").split("\n")
            words = shlex.split(typed)
            assert words[0] == "bptt", f"{block.where()}: a session of something else: {typed}"
            found.append(Command(block, tuple(words[1:]), tuple(shown)))
        return found
    return []


ALL_COMMANDS = [command for block in ALL_BLOCKS for command in commands(block)]
RUN = [command for command in ALL_COMMANDS if not command.block.note.startswith(NOT_RUN)]
PYTHON = [block for block in ALL_BLOCKS if block.language == "python"]


def masked(line: str) -> str:
    """A line of output with every number as # (counts and timings change; words do not)."""
    return NUMBER.sub("#", line.rstrip())


def first_missing(shown: tuple[str, ...], output: str) -> str | None:
    """The first shown line ("  ..." elides) that ``output`` does not print, in order and
    numbers aside; None when it prints them all."""
    actual = iter(masked(line) for line in output.splitlines())
    for line in shown:
        if line.strip() != "..." and masked(line) not in actual:
            return line
    return None


def test_the_readme_is_at_most_300_lines() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= README_MOST_LINES, f"README.md has {lines} lines; at most {README_MOST_LINES}"


def test_the_quick_start_shows_check_verify_and_the_test_command_ci_runs() -> None:
    text = README.read_text(encoding="utf-8")
    quick = text.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    shown = re.findall(r"^```bash\n(.*?)\n```$", quick, flags=re.MULTILINE | re.DOTALL)
    # .ci/run runs the line two lines after the marker, exactly as written.
    lines = text.split("\n")
    ci_runs = lines[lines.index("<!-- test-command -->") + 2]
    assert len(shown) == 3, shown
    assert shown[0].endswith("&& bptt check"), shown[0]
    assert shown[1].startswith("bptt verify examples/"), shown[1]
    assert shown[2] == ci_runs
    assert ci_runs.endswith("&& python -m pytest"), ci_runs


def test_every_block_is_bash_console_python_or_plain_and_no_plain_block_hides_a_command() -> None:
    for block in ALL_BLOCKS:
        assert block.language in KNOWN_LANGUAGES, f"{block.where()}: ```{block.language}"
        if block.language == "":
            typed = [line for line in block.body.splitlines() if re.match(r"(\$ )?bptt ", line)]
            assert not typed, f"{block.where()}: a command in a plain block is never run: {typed}"


def test_blocks_not_run_are_few_and_say_why() -> None:
    not_run = [block for block in ALL_BLOCKS if block.note.startswith(NOT_RUN)]
    assert len(not_run) <= MOST_NOT_RUN, [block.where() for block in not_run]
    for block in not_run:
        assert block.note[len(NOT_RUN) :].strip(), f"{block.where()}: say why it is not run"
        assert commands(block), f"{block.where()}: a block not run that holds no bptt command"


@pytest.mark.parametrize("command", ALL_COMMANDS, ids=str)
def test_every_bptt_command_in_the_docs_parses(command: Command) -> None:
    try:
        build_parser().parse_args(list(command.argv) or ["check"])
    except SystemExit as stop:
        pytest.fail(f"{command}: the command line refuses it (exit {stop.code})")


@pytest.mark.slow
@pytest.mark.parametrize("command", RUN, ids=str)
def test_every_bptt_command_in_the_docs_runs_as_shown(
    command: Command, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    # In a folder of its own (files a command writes land there), with examples/ at hand.
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    argv = [*command.argv, *(QUICK_EXAMPLES if command.argv[0] in SEARCHING else [])]
    expected = 1 if any("FAILED" in line for line in command.shown) else 0
    code = main(argv)
    captured = capsys.readouterr()
    output = captured.err + captured.out
    assert code == expected, f"{command}: exit {code}, expected {expected}\n{output}"
    missing = first_missing(command.shown, output)
    assert missing is None, f"{command}: shows {missing!r}, which it does not print\n{output}"


@pytest.mark.parametrize("block", PYTHON, ids=Block.where)
def test_every_python_block_in_the_docs_runs(
    block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if block.note == "api-example":  # a pytest file: tests/test_testing_api.py runs it
        assert block.page == API_PAGE
        return
    script = tmp_path / "block.py"
    script.write_text(block.body, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(script), run_name="__main__")


def styles_table() -> list[str]:
    """The first column of docs/verify.md's table of styles, in order."""
    lines = (ROOT / "docs" / "verify.md").read_text(encoding="utf-8").split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("| `--style` |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(line.split("`")[1])  # | `name` (default) | ...
    return rows


def test_the_docs_table_of_styles_is_the_registry() -> None:
    assert styles_table() == list(STYLES)


def test_verify_help_describes_every_style_in_the_registry(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["verify", "--help"])
    out = capsys.readouterr().out
    described = out.split("\nStyles:\n", 1)[1].split("\n\n", 1)[0]
    assert re.findall(r"^  (\S+)", described, flags=re.MULTILINE) == list(STYLES)
    assert f"--style {{{','.join(STYLES)}}}" in out


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces to -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def unfenced(page: Path) -> str:
    """A page without its fenced code blocks."""
    return FENCED.sub("", page.read_text(encoding="utf-8"))


def anchors(page: Path) -> set[str]:
    return {slug(heading) for heading in re.findall(r"^#+ (.*)$", unfenced(page), re.MULTILINE)}


def links(page: Path) -> list[str]:
    """The page's relative links and pictures, outside code (fenced or inline)."""
    prose = re.sub(r"`[^`\n]*`", "", unfenced(page))
    found = re.findall(r"\]\(([^)\s]+)\)", prose)
    return [link for link in found if not re.match(r"[a-z]+:", link)]  # not https:, mailto:


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_lands_on_a_file_and_heading_that_exist(page: Path) -> None:
    for link in links(page):
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        assert target.exists(), f"{page.name}: ({link}) points at no file"
        if anchor:
            assert anchor in anchors(target), f"{page.name}: ({link}): no such heading"
