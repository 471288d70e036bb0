"""`cityhub --help` ends with examples of the first steps an operator takes, and so do the most used commands' helps;
each example must stay a command line that its command takes."""

from __future__ import annotations

import shlex
from typing import Any

import pytest
import typer

from cityhub import cli

# The commands whose --help ends with examples, as `cityhub --help` does: the most used ones.
WITH_EXAMPLES = [
    ["db", "upgrade"],
    ["db", "backup"],
    ["demo", "seed"],
    ["serve"],
    ["orders", "create"],
    ["import"],
    ["import", "orders"],
    ["nlp", "train"],
    ["nlp", "evaluate"],
    ["nlp", "locate"],
]


def _tree() -> Any:
    cli._mount()
    return typer.main.get_command(cli.app)


def _epilogs(command: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], str]:
    """Every command's (and group's) epilog in the command tree, by its path."""
    found = {path: command.epilog} if command.epilog else {}
    if hasattr(command, "commands"):  # a group (Typer's own copy of click: not click's classes)
        for name, sub in command.commands.items():
            found.update(_epilogs(sub, (*path, name)))
    return found


def _examples() -> list[list[str]]:
    """Every example line of every help (`cityhub …` lines; a comment after `#`), without the `cityhub`."""
    lines = {line.split("#")[0].strip() for epilog in _epilogs(_tree()).values() for line in epilog.splitlines()}
    return [shlex.split(line)[1:] for line in sorted(lines) if line.startswith("cityhub ")]


def test_the_top_level_help_ends_with_its_examples(cli_run) -> None:
    code, out, _ = cli_run("--help")
    assert code == 0
    assert "Examples:" in out and "cityhub db backup --dir DIR --keep 14" in out and "docs/operations.md" in out


@pytest.mark.parametrize("command", WITH_EXAMPLES, ids=" ".join)
def test_the_most_used_commands_help_ends_with_examples_of_them(cli_run, command: list[str]) -> None:
    code, out, _ = cli_run(*command, "--help")
    assert code == 0
    examples = out[out.index("Examples:") :] if "Examples:" in out else ""
    assert f"cityhub {' '.join(command)} " in examples, out


@pytest.mark.parametrize("example", _examples(), ids=" ".join)
def test_every_example_names_a_command_and_options_it_takes(cli_run, example: list[str]) -> None:
    first_option = next((i for i, w in enumerate(example) if w.startswith("-")), len(example))
    command = example[:first_option]  # `db backup`, `serve`: the words before the options
    code, out, err = cli_run(*command, "--help")
    assert code == 0, err
    for option in (w for w in example if w.startswith("--")):
        assert option in out, (command, option)


@pytest.mark.parametrize("example", _examples(), ids=" ".join)
def test_every_example_is_a_command_line_its_command_takes(example: list[str]) -> None:
    """Each example parsed as the command would parse it when run — its arguments, required options and values of
    the right type — without running it."""
    command: Any = _tree()
    words = list(example)
    parent = command.make_context("cityhub", [], resilient_parsing=True)
    while hasattr(command, "commands"):
        name = words.pop(0)
        command = command.commands[name]
        if hasattr(command, "commands"):
            parent = command.make_context(name, [], parent=parent, resilient_parsing=True)
    with command.make_context(command.name, words, parent=parent) as ctx:
        assert ctx.params is not None


def test_help_words_name_the_arguments_and_options_as_shown(cli_run) -> None:
    """`db backup --dir` said "instead of FILE" beside an argument shown as `target`; `apikey create` said "for
    CLIENT", which no option is called: a help names what the usage line shows."""
    code, out, _ = cli_run("db", "backup", "--help")
    assert code == 0
    assert "cityhub db backup [OPTIONS] [FILE]" in out and "target" not in out
    assert "Instead of FILE" in out and "--dir" in out and "DIR" in out
    code, out, _ = cli_run("apikey", "create", "--help")
    assert code == 0
    assert "CLIENT" not in out and "--client NAME" in out and "--client            NAME" in out
