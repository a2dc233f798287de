"""Keep secrets out of everything a run writes: values of environment variables that hold keys or tokens are
replaced by `***` in output files, tracker configs and log messages.

A value reaches outputs most easily through `${env:VAR}` in a recipe (then the resolved recipe, the summary, the
tracker's config and run name would carry it); redaction covers those and any other path by value, not by field.
"""

from __future__ import annotations

import json
import logging
import os
import re

#: Environment variable names whose values are treated as secrets (WANDB_API_KEY, HF_TOKEN, AWS_SECRET_ACCESS_KEY...).
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH", re.IGNORECASE)
#: Shorter values are not redacted: replacing "1" or "true" everywhere would corrupt outputs and protect nothing.
MIN_SECRET_LENGTH = 8
MASK = "***"


def secret_values() -> list[str]:
    """Values of secret-named environment variables, longest first (so a secret containing another is masked whole)."""
    values = {
        value for name, value in os.environ.items() if SECRET_NAME.search(name) and len(value) >= MIN_SECRET_LENGTH
    }
    return sorted(values, key=len, reverse=True)


def redact_text(text: str) -> str:
    """`text` with every secret value, raw or as it appears inside a JSON string, replaced by `***`."""
    for value in secret_values():
        for form in {value, json.dumps(value)[1:-1]}:
            text = text.replace(form, MASK)
    return text


def redact(value):
    """A copy of `value` (nested dicts, lists, strings) with secrets masked in every string, keys included."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {redact(key): redact(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(item) for item in value)
    return value


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in each record's fully formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def install_log_redaction() -> None:
    """Mask secrets in everything the root logger's handlers emit (align's and the libraries' loggers)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
