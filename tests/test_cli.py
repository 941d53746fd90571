"""`python -m moderation text`: one text per line in, one JSON object per line out."""
import json
import subprocess
import sys

from moderation.taxonomy import TEXT_CATEGORIES


def run(args, stdin=b""):
    return subprocess.run([sys.executable, "-m", "moderation", *args], input=stdin, capture_output=True, timeout=300)


def test_json_lines_from_stdin_keep_order_and_survive_bad_bytes():
    lines = "have a nice day\nyou f*cking idiot\n\n".encode() + b"caf\xff broken utf-8\n"
    result = run(["text", "--json", "--file", "-"], lines)
    assert result.returncode == 0, result.stderr.decode()
    rows = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [r["text"] for r in rows] == ["have a nice day", "you f*cking idiot", "", "caf\ufffd broken utf-8"]
    assert [r["flagged"] for r in rows] == [False, True, False, False]
    assert {"profanity", "harassment"} <= set(rows[1]["categories"])


def test_table_output_and_model_listing(tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("WINNER! claim your free prize now, txt WIN to 80800\nthe bus leaves the station at 6\n",
                      encoding="utf-8")
    result = run(["text", "--file", str(source)])
    assert result.returncode == 0
    first, second = result.stdout.decode().splitlines()
    assert first.startswith("FLAGGED spam") and second.startswith("ok")
    listing = json.loads(run(["models"]).stdout)
    assert listing["default"] in listing["text_models"] and listing["categories"] == list(TEXT_CATEGORIES)


def test_unknown_model_is_a_clear_error():
    result = run(["text", "--model", "nope", "hello"])
    assert result.returncode != 0
    assert b"unknown text model" in result.stderr
