"""`#TQ` lines: submit options written in the script itself, the way `#SBATCH` lines work for Slurm.

    #!/bin/bash
    #TQ --name train --gpus 1
    #TQ --env LR=3e-4   # a comment after the options is fine
    python train.py

Only the leading comment block counts (the shebang, comment lines and blank lines before the first
command); options given on the command line override these."""
from __future__ import annotations

import re
import shlex

PREFIX = "#TQ"
DURATION_UNITS_S = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def header_lines(script: str) -> list[tuple[int, list[str]]]:
    """(line number, its arguments) for each `#TQ` line of the script's leading comment block.

    Raises ValueError naming the line when one cannot be split (an unbalanced quote)."""
    found = []
    for number, line in enumerate(script.splitlines(), 1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            break
        if line.startswith(PREFIX) and line[len(PREFIX):len(PREFIX) + 1] in ("", " ", "\t"):
            try:
                found.append((number, shlex.split(line[len(PREFIX):], comments=True)))
            except ValueError as exc:
                raise ValueError(f"line {number}: {line.strip()}: {exc}") from None
    return found


def parse_duration(text: str) -> int:
    """Seconds from '3600', '90s', '45m', '2h30m' or '1d12h'; raises ValueError otherwise."""
    text = text.strip().lower()
    if text.isdigit():
        return int(text)
    parts = re.findall(r"(\d+)([dhms])", text)
    if not parts or "".join(n + u for n, u in parts) != text or len({u for _, u in parts}) != len(parts):
        raise ValueError(f"{text!r} is not a duration: use seconds (3600) or units d, h, m, s (2h30m)")
    return sum(int(n) * DURATION_UNITS_S[u] for n, u in parts)
