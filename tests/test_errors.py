"""A command shows bad input as one line (exit 2) and a bug with its traceback: only madx's own errors
(madx/core/errors.py) are taken for bad input, never a bare ValueError from a bug."""

import importlib
import inspect
import pkgutil

import pytest

import madx
from madx.cli import main as cli
from madx.core.errors import InputError, MadxError
from madx.core.sources import DataError


@pytest.fixture
def report_raising(tmp_path, monkeypatch):
    """`madx report` on one (empty) evaluation file, with the report writer replaced by one that raises `error`."""
    results = tmp_path / "eval.json"
    results.write_text("{}")
    log = tmp_path / "report.log"
    args = ["report", "--eval", str(results), "--output", str(tmp_path / "report"), "--log-file", str(log)]

    def with_error(error):
        def write_report(*_args, **_kwargs):
            raise error

        monkeypatch.setattr("madx.report.write.write_report", write_report)
        return args, log

    return with_error


def test_a_bug_in_a_command_keeps_its_traceback(report_raising, capsys):
    args, log = report_raising(ValueError("an index went wrong"))
    with pytest.raises(ValueError, match="an index went wrong"):  # not exit 2 with a line: Python prints the traceback
        cli(args)
    assert "madx: error" not in capsys.readouterr().err
    written = log.read_text()
    assert "internal error; the traceback follows" in written and "Traceback (most recent call last)" in written
    assert "ValueError: an index went wrong" in written


@pytest.mark.parametrize("error", [DataError("corpus.txt:3: not valid UTF-8"), InputError("--eval x: no such file")])
def test_bad_input_is_one_line(report_raising, capsys, error):
    args, log = report_raising(error)
    assert cli(args) == 2
    err = capsys.readouterr().err
    assert err.count(f"madx: error: {error}") == 1 and "Traceback" not in err
    assert str(error) in log.read_text() and "Traceback" not in log.read_text()


def madx_exception_classes():
    """Every exception class defined in a madx module."""
    found = {}
    for info in pkgutil.walk_packages(madx.__path__, "madx."):
        module = importlib.import_module(info.name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == info.name:
                found[f"{info.name}.{name}"] = cls
    return found


def test_every_madx_error_is_bad_input_and_keeps_its_builtin_base():
    """A new error class that is not a MadxError would show users a traceback; one that lost its ValueError (or
    RuntimeError, TypeError) base would slip past the `except ValueError` of its callers."""
    classes = madx_exception_classes()
    assert {"DataError", "ConfigError", "TrainingError", "LaunchError", "UnsupportedModelError", "NonFiniteScores"} <= {
        cls.__name__ for cls in classes.values()}  # the walk finds them, wherever a module move puts them
    assert [name for name, cls in classes.items() if not issubclass(cls, MadxError)] == []
    assert [name for name, cls in classes.items()
            if cls is not MadxError and not issubclass(cls, (ValueError, RuntimeError, TypeError))] == []


def test_a_missing_notes_file_is_one_line(tmp_path, capsys):
    """A path the user gives is checked by madx, not left to a FileNotFoundError (which would be a traceback)."""
    results = tmp_path / "eval.json"
    results.write_text("{}")
    assert cli(["report", "--eval", str(results), "--output", str(tmp_path / "report"),
                "--notes", str(tmp_path / "notes.md")]) == 2
    err = capsys.readouterr().err
    assert f"madx: error: --notes {tmp_path / 'notes.md'}: no such file" in err and "Traceback" not in err
    assert not (tmp_path / "report").exists()


def test_a_corrupt_evaluation_json_is_one_line_naming_the_file(tmp_path, capsys):
    """An evaluation file cut off mid-write (or any other JSON) is named, with what to do; never a traceback."""
    broken = tmp_path / "results.json"
    broken.write_text('{"task": "ner", ')  # cut off mid-write
    assert cli(["report", "--eval", str(broken), "--output", str(tmp_path / "report")]) == 2
    err = capsys.readouterr().err
    assert f"{broken}: not an evaluation result" in err and "Traceback" not in err
