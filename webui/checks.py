"""Values from forms and files checked: numbers, temperatures, generation arguments."""
from __future__ import annotations

import math

from webui.errors import UserError, esc
from webui.settings import Settings


def whole_number(name: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high \
            or value != int(value):                  # range first: int(1e400) and float(10**400) overflow
        huge = isinstance(value, int) and abs(value) >= 10**30
        shown = f"a {len(str(abs(value)))}-digit number" if huge else repr(value)
        raise UserError(f"{name} must be a whole number from {low:,} to {high:,}, got {esc(shown)}.")
    return int(value)


def finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def check_temperature(temperature) -> float:
    if not finite(temperature) or not 0 <= temperature <= 2:
        raise UserError(f"Temperature must be a number from 0 to 2 (0 = greedy), got {esc(repr(temperature))}.")
    return float(temperature)


def check_generation_args(settings: Settings, prime, temperature, length, top_k, seed) -> tuple:
    """(prime, temperature, length, top_k or None, seed or None), or UserError with the allowed range."""
    if prime is None:
        prime = ""
    if not isinstance(prime, str) or len(prime) > settings.max_prime:
        raise UserError(f"The prime must be text of at most {settings.max_prime:,} characters.")
    temperature = check_temperature(temperature)
    length = whole_number("Length", length, 1, settings.max_length)
    top_k = None if top_k is None else whole_number("Top-k", top_k, 0, 1_114_112) or None  # 0 = off
    seed = None if seed is None else whole_number("Seed", seed, 0, 2**63 - 1) or None      # 0 = random
    return prime, temperature, length, top_k, seed


def as_dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def whole(value) -> int | None:
    """``value`` when it is a whole number (not a bool), else None: headers and records are read, not trusted."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def count(n: int, noun: str) -> str:
    """'1 character', '2,000 characters': a number and its noun, singular when it is one."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"
