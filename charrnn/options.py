"""Config fields named once: each dataclass field carries its help text, and both the
command line's flags and the app's form fields are derived from it.

``option(default, help)`` declares a field; ``options(cls)`` lists a config class's
fields with their flag, type, choices and help; ``config_argv(cfg)`` turns a config
back into the flags that rebuild it (how the app hands a run to the trainer process).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields


def option(default, help: str, *, label: str | None = None, choices: tuple | None = None):
    """A config field with its one-line help (and a form label and allowed values, where they help)."""
    return field(default=default, metadata={"help": help, "label": label, "choices": choices})


@dataclass(frozen=True)
class Option:
    name: str
    type: type
    default: object
    help: str
    label: str
    choices: tuple | None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def parse(self):
        """The flag's value parser: the field's type, except that a bool reads true/false (not bool('False'))."""
        return parse_bool if self.type is bool else self.type


def options(cls) -> list[Option]:
    """The fields of config dataclass ``cls`` declared with ``option``, in declaration order."""
    return [Option(f.name, type(f.default), f.default, f.metadata["help"],
                   f.metadata["label"] or f.name.replace("_", " ").capitalize(), f.metadata["choices"])
            for f in fields(cls) if "help" in f.metadata]


def option_named(cls, name: str) -> Option:
    return next(o for o in options(cls) if o.name == name)


def config_argv(cfg, skip: tuple[str, ...] = ()) -> list[str]:
    """``--flag=value`` for every option of ``cfg`` (``=`` so a value starting with '-' stays a value)."""
    return [f"{o.flag}={format_value(getattr(cfg, o.name))}" for o in options(type(cfg)) if o.name not in skip]


def parse_bool(text: str) -> bool:
    value = str(text).strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"not true or false: {text!r}")


parse_bool.__name__ = "true or false"      # argparse names the type in its error: "invalid true or false value"


def format_value(value) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)
