"""The README's exit-status table lists, for every command, exactly the statuses its code
can return: the literals and `EXIT_*` constants its module returns, and what the `arena`
entry point adds for every command (2 for a one-line error, 130 for Ctrl-C).
`arena replay`'s `--help` epilog says the same."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from sidecar import cli
from sidecar.commands import replay

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
COMMANDS = ROOT / "sidecar" / "commands"
_ROW = re.compile(r"^\| `arena ([a-z ]+)` \| (\d+) \| (.+) \|$")


def table() -> dict[str, set[int]]:
    """command -> the statuses the README's table gives it."""
    text = README.read_text()
    section = text.split("\n### Exit status\n", 1)[1].split("\n#", 1)[0]
    rows: dict[str, set[int]] = {}
    for line in section.splitlines():
        if match := _ROW.match(line):
            rows.setdefault(match.group(1), set()).add(int(match.group(2)))
    return rows


def returned_statuses(path: Path) -> set[int]:
    """Every int that a function of the module declared `-> int` returns as a literal or
    as a module constant (`EXIT_USAGE`)."""
    tree = ast.parse(path.read_text())
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        and isinstance(node.value, ast.Constant)
        and _is_status(node.value.value)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }
    statuses = set()
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if not (isinstance(function.returns, ast.Name) and function.returns.id == "int"):
            continue
        for node in ast.walk(function):
            if not isinstance(node, ast.Return) or node.value is None:
                continue
            if isinstance(node.value, ast.Constant) and _is_status(node.value.value):
                statuses.add(node.value.value)
            elif isinstance(node.value, ast.Name) and node.value.id in constants:
                statuses.add(constants[node.value.id])
    return statuses


def _is_status(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def entry_point_statuses() -> set[int]:
    """What `sidecar.cli.main` returns itself around every command."""
    return returned_statuses(Path(cli.__file__))


def command_names() -> dict[str, str]:
    """README name -> module file; `executor` has one action, `deploy`."""
    return {
        ("executor deploy" if name == "executor" else name): module
        for name, module in cli.SUBCOMMANDS.items()
    }


def test_the_table_has_every_command_and_no_other() -> None:
    assert set(table()) == set(command_names())


def test_each_command_lists_exactly_the_statuses_its_code_returns() -> None:
    rows = table()
    around = entry_point_statuses()
    assert around == {2, 130}
    for name, module in command_names().items():
        own = returned_statuses(COMMANDS / f"{module}.py")
        assert rows[name] == own | around, name


def test_replay_epilog_and_constants_agree_with_the_table() -> None:
    epilog = {int(code) for code in re.findall(r"^  (\d+)  ", replay.EPILOG, re.MULTILINE)}
    constants = {getattr(replay, name) for name in dir(replay) if name.startswith("EXIT_")}
    assert epilog == constants
    assert table()["replay"] == constants | {130}
