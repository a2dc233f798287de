"""Secret masking: which environment values count as secrets, and masking in text, JSON, nested values and logs."""

import json
import logging

from align.redaction import MASK, RedactingFilter, redact, redact_text, secret_values


def test_secret_values_are_those_of_key_and_token_variables(monkeypatch):
    """Only variables named like credentials, and only values long enough to be one: masking `PATH` or a value like
    "1" would corrupt outputs. If this fails, a real key is not masked or harmless text is."""
    monkeypatch.setenv("HF_TOKEN", "hf_abcdefgh12345")
    monkeypatch.setenv("SOME_API_KEY", "k" * 20)
    monkeypatch.setenv("SHORT_TOKEN", "1")
    monkeypatch.setenv("DATA_ROOT", "/very/long/data/root/path")
    assert secret_values()[:2] == ["k" * 20, "hf_abcdefgh12345"]
    assert "/very/long/data/root/path" not in secret_values() and "1" not in secret_values()


def test_masking_text_json_nested_and_log_records(monkeypatch):
    """A secret is masked raw, inside JSON-escaped strings, in dict keys and values, and in formatted log messages."""
    monkeypatch.setenv("X_SECRET", 'pa"ss\\word-123')
    secret = 'pa"ss\\word-123'
    assert redact_text(f"token={secret}") == f"token={MASK}"
    assert secret not in redact_text(json.dumps({"k": secret})) and "pa" not in redact_text(json.dumps(secret))
    assert redact({secret: [secret, 3, (secret,)]}) == {MASK: [MASK, 3, (MASK,)]}
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "using %s", (secret,), None)
    RedactingFilter().filter(record)
    assert record.getMessage() == f"using {MASK}"
