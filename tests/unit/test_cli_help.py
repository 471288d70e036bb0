"""`cityhub --help` ends with examples of the first steps an operator takes; each must stay a command that exists."""

from __future__ import annotations

import shlex

import pytest

from cityhub.cli import EXAMPLES


def _examples() -> list[list[str]]:
    lines = [line.split("#")[0].strip() for line in EXAMPLES.splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("cityhub ")]


def test_the_top_level_help_ends_with_its_examples(cli_run) -> None:
    code, out, _ = cli_run("--help")
    assert code == 0
    assert "Examples:" in out and "cityhub db backup --dir DIR --keep 14" in out and "docs/operations.md" in out


@pytest.mark.parametrize("example", _examples(), ids=" ".join)
def test_every_example_names_a_command_and_options_it_takes(cli_run, example: list[str]) -> None:
    first_option = next((i for i, w in enumerate(example) if w.startswith("-")), len(example))
    command = example[:first_option]  # `db backup`, `serve`: the words before the options
    code, out, err = cli_run(*command, "--help")
    assert code == 0, err
    for option in (w for w in example if w.startswith("--")):
        assert option in out, (command, option)
