"""The batch job: every row out once and in order, whatever the chunking, format or interruption."""
from __future__ import annotations

import io
import json
from types import SimpleNamespace

import pandas as pd
import pytest

from moderation import batch
from moderation.batch import BatchError, Progress, moderate_file, resolve_model
from moderation.batch import job as batch_job
from moderation.cli import main
from moderation.datasets import load_texts
from moderation.text import moderate_text

# Texts that stress CSV parsing at block edges: quoted newlines (CRLF too), commas, doubled quotes, non-ASCII.
TRICKY = ['line one\r\nline two, with "quotes"', "a, b, c", '""', "  leading and trailing  ", "naïve café 🙂",
          "multi\nline\nshould stay one row"]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    bundled = load_texts("test")["text"].head(17).tolist()
    texts = bundled[:5] + TRICKY[:3] + bundled[5:12] + TRICKY[3:] + bundled[12:]
    return pd.DataFrame({"id": [f"row-{i:02d}" for i in range(len(texts))], "text": texts})


@pytest.fixture(scope="module")
def expected_scores(frame) -> list[list[float]]:
    verdicts = moderate_text(frame["text"].tolist(), explain_spans=False)
    return [[v.scores[c.removeprefix("score_")] for c in batch.SCORE_COLUMNS] for v in verdicts]


def write_input(frame: pd.DataFrame, path) -> None:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        frame.to_parquet(path, index=False, row_group_size=9)  # row groups that do not line up with the blocks


def read_output(path) -> pd.DataFrame:
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype={"id": str, "text": str}, keep_default_na=False, na_values={"flagged": [""]})
    if path.suffix == ".jsonl":
        return pd.read_json(path, lines=True, dtype=False, precise_float=True)
    return pd.read_parquet(path)


@pytest.mark.parametrize("chunk_rows", [1, 4, 7, 1000])
def test_every_row_comes_out_once_in_order_whatever_the_chunk_size(tmp_path, frame, expected_scores, chunk_rows):
    source = tmp_path / "in.csv"
    write_input(frame, source)
    summary = moderate_file(source, tmp_path / "out.parquet", chunk_rows=chunk_rows, progress=False)
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert list(out.columns) == ["id", "text", *batch.ADDED_COLUMNS]
    assert out["id"].tolist() == frame["id"].tolist()
    assert out["text"].tolist() == frame["text"].tolist()  # quoted newlines and quotes survive block edges
    assert out[list(batch.SCORE_COLUMNS)].to_numpy().tolist() == expected_scores
    assert summary.rows == len(frame) and summary.outcomes == {batch.SCORED: len(frame)}
    assert not (tmp_path / "out.parquet.parts").exists()


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_each_format_in_and_out_gives_the_same_rows(tmp_path, frame, expected_scores, suffix):
    source, target = tmp_path / f"in{suffix}", tmp_path / f"out{suffix}"
    write_input(frame, source)
    summary = moderate_file(source, target, chunk_rows=5, progress=False)
    out = read_output(target)
    assert out["text"].tolist() == frame["text"].tolist()
    assert out[list(batch.SCORE_COLUMNS)].to_numpy().tolist() == expected_scores
    flagged = [v.flagged for v in moderate_text(frame["text"].tolist(), explain_spans=False)]
    assert out["flagged"].tolist() == flagged and summary.flagged == sum(flagged)


def test_bad_csv_rows_get_an_outcome_and_are_never_dropped(tmp_path):
    rows = [
        "id,text,lang",
        "1,have a lovely day,en",
        "2,,en",  # empty text
        "3,   ,en",  # blank text
        "",  # a blank line is not a row
        "4,un caf\xe9 cr\xe8me,fr",  # Windows-1252 bytes in a UTF-8 file
        "5,na\u00efve r\u00e9sum\u00e9,fr",
        "6,too,many,fields",
        "7",  # missing trailing fields
    ]
    data = b"\xef\xbb\xbf" + b"\r\n".join(r.encode("utf-8") if "\u00ef" in r else r.encode("latin-1") for r in rows)
    source = tmp_path / "mixed.csv"
    source.write_bytes(data + b"\r\n\r\n")
    summary = moderate_file(source, tmp_path / "out.parquet", chunk_rows=3, progress=False)
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert out["id"].tolist() == ["1", "2", "3", "4", "5", "6", "7"]  # the BOM is not part of the first name
    assert out["text"].tolist()[3:5] == ["un café crème", "naïve résumé"]
    assert out["outcome"].tolist() == [batch.SCORED, batch.MISSING_TEXT, batch.MISSING_TEXT, batch.SCORED, batch.SCORED,
                                       batch.INVALID_RECORD, batch.MISSING_TEXT]
    assert out["flagged"].isna().tolist() == [False, True, True, False, False, True, True]
    assert out["score_hate"].isna().sum() == 4
    assert summary.outcomes == {batch.SCORED: 3, batch.MISSING_TEXT: 3, batch.INVALID_RECORD: 1}


def test_bad_json_lines_get_an_outcome_and_keep_their_values(tmp_path):
    lines = [
        {"id": 1, "text": "have a lovely day"},
        {"id": 2, "text": None},
        {"id": 3},
        {"id": 4, "text": 42},
        {"id": 5, "text": ["a", "list"], "meta": {"source": "forum"}},
        "not json at all {",
        [1, 2, 3],
        {"id": "six", "text": "you are an idiot", "score": 1.5},
    ]
    payload = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n\n"
    source = tmp_path / "in.jsonl"
    source.write_text(payload, encoding="utf-8")
    moderate_file(source, tmp_path / "out.jsonl", chunk_rows=3, progress=False)
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [row["outcome"] for row in out] == [batch.SCORED, batch.MISSING_TEXT, batch.MISSING_TEXT, batch.NOT_TEXT,
                                              batch.NOT_TEXT, batch.INVALID_RECORD, batch.INVALID_RECORD, batch.SCORED]
    assert [row["id"] for row in out] == ["1", "2", "3", "4", "5", None, None, "six"]  # mixed types: JSON text
    assert out[3]["text"] == "42" and out[4]["meta"] == '{"source": "forum"}'
    assert out[-1]["score"] == 1.5 and out[-1]["flagged"] is True and "harassment" in out[-1]["categories"]


def test_a_non_string_parquet_text_column_is_not_text_per_row(tmp_path):
    source = tmp_path / "in.parquet"
    pd.DataFrame({"text": [1, None, 3]}, dtype="Int64").to_parquet(source)
    summary = moderate_file(source, tmp_path / "out.csv", progress=False)
    assert summary.outcomes == {batch.NOT_TEXT: 2, batch.MISSING_TEXT: 1}


def test_a_missing_text_column_names_the_available_columns(tmp_path, capsys):
    source = tmp_path / "upload.csv"
    source.write_text("id,body,author\n1,hello,me\n", encoding="utf-8")
    with pytest.raises(BatchError, match="no column 'text'; available columns: 'id', 'body', 'author'"):
        moderate_file(source, tmp_path / "out.csv", progress=False)
    assert main(["batch", str(source), "--out", str(tmp_path / "out.csv"), "--text-column", "comment"]) == 2
    assert "no column 'comment'; available columns: 'id', 'body', 'author'" in capsys.readouterr().err
    assert not (tmp_path / "out.csv").exists()


def test_an_interrupted_run_resumes_without_scoring_a_block_twice(tmp_path, frame, monkeypatch):
    source = tmp_path / "in.csv"
    write_input(frame, source)
    moderate_file(source, tmp_path / "reference.csv", chunk_rows=4, progress=False)
    calls = []
    real_score_frame = batch.score_frame

    def interrupted_on_third_block(block, *args, **kwargs):
        calls.append(block["id"].iat[0])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_score_frame(block, *args, **kwargs)

    monkeypatch.setattr(batch_job, "score_frame", interrupted_on_third_block)
    target = tmp_path / "out.csv"
    with pytest.raises(KeyboardInterrupt):
        moderate_file(source, target, chunk_rows=4, progress=False)
    parts = tmp_path / "out.csv.parts"
    assert not target.exists() and len(list(parts.glob("part-*.parquet"))) == 2
    (parts / ".part-00000002.parquet.999").write_bytes(b"half a file")  # a write cut short is never picked up

    with pytest.raises(BatchError, match="chunk_rows changed"):
        moderate_file(source, target, chunk_rows=5, progress=False)

    calls.clear()
    monkeypatch.setattr(batch_job, "score_frame", lambda block, *a, **k: calls.append(block["id"].iat[0]) or
                        real_score_frame(block, *a, **k))
    summary = moderate_file(source, target, chunk_rows=4, progress=False)
    assert calls == ["row-08", "row-12", "row-16", "row-20"]  # only the blocks the first run did not finish
    assert summary.resumed_rows == 8 and summary.rows == len(frame)
    assert target.read_bytes() == (tmp_path / "reference.csv").read_bytes()
    assert not parts.exists()


def test_a_replaced_truncated_or_stray_part_is_scored_again_never_assembled(tmp_path, frame):
    source, target = tmp_path / "in.csv", tmp_path / "out"
    write_input(frame, source)
    moderate_file(source, target, chunk_rows=4, progress=False)
    reference = pd.read_parquet(target)
    parts = sorted(target.glob("part-*.parquet"))
    parts[2].write_bytes(parts[1].read_bytes())  # another block's valid part in its place: duplicated ids before
    parts[3].write_bytes(parts[3].read_bytes()[:100])  # a truncated part: a Parquet error on every rerun before
    stream = io.StringIO()
    summary = moderate_file(source, target, chunk_rows=4, progress=stream)
    assert "part 2 is not this block's part" in stream.getvalue() and "part 3 is unreadable" in stream.getvalue()
    assert summary.resumed_rows == len(frame) - 8 and summary.rows == len(frame)
    pd.testing.assert_frame_equal(pd.read_parquet(target), reference)


def test_a_part_replaced_during_the_run_fails_the_job(tmp_path, frame, monkeypatch):
    source, target = tmp_path / "in.csv", tmp_path / "out"
    write_input(frame, source)
    real_run_block = batch.Job.run_block

    def sabotaged(job, block_frame, index):
        rows = real_run_block(job, block_frame, index)
        if index == 1:  # a stray part lands on block 0's name while the job runs
            batch.part_path(job.parts_dir, 0).write_bytes(batch.part_path(job.parts_dir, 1).read_bytes())
        return rows

    monkeypatch.setattr(batch.Job, "run_block", sabotaged)
    with pytest.raises(BatchError, match="part 0: not this block's part"):
        moderate_file(source, target, chunk_rows=4, progress=False)


@pytest.mark.parametrize("content, message", [(b"\x00garbage", "is damaged"), (b"[1, 2]", "holds a list")])
def test_a_damaged_checkpoint_is_named(tmp_path, frame, content, message):
    source, target = tmp_path / "in.csv", tmp_path / "out"
    write_input(frame, source)
    target.mkdir()
    (target / "_checkpoint.json").write_bytes(content)
    with pytest.raises(BatchError, match=message) as raised:
        moderate_file(source, target, progress=False)
    assert "_checkpoint.json" in str(raised.value)


def test_an_existing_output_is_never_overwritten(tmp_path, frame):
    source, target = tmp_path / "in.csv", tmp_path / "out.jsonl"
    write_input(frame, source)
    target.write_text("precious\n", encoding="utf-8")
    with pytest.raises(BatchError, match="already exists"):
        moderate_file(source, target, progress=False)
    assert target.read_text(encoding="utf-8") == "precious\n"


def test_a_finished_folder_output_reruns_as_a_no_op(tmp_path, frame):
    source, target = tmp_path / "in.csv", tmp_path / "out"
    write_input(frame, source)
    first = moderate_file(source, target, chunk_rows=10, progress=False)
    again = moderate_file(source, target, chunk_rows=10, progress=False)
    assert again.resumed_rows == again.rows == first.rows
    assert sorted(p.name for p in target.iterdir()) == [
        "_checkpoint.json", *(f"part-{i:08d}.parquet" for i in range(3))]
    assert pd.read_parquet(target)["id"].tolist() == frame["id"].tolist()


def test_the_progress_line_shows_rate_and_eta():
    stream = io.StringIO()
    progress = Progress(total=1000, done=100, stream=stream, interval=0)
    progress.advance(100)
    progress.advance(300)
    line = stream.getvalue().splitlines()[-1]
    assert line.startswith("500/1,000 rows (50.0%)") and " rows/s  ETA " in line


def test_the_cli_prints_a_summary(tmp_path, frame, capsys):
    source = tmp_path / "in.csv"
    write_input(frame, source)
    assert main(["batch", str(source), "--out", str(tmp_path / "out.csv"), "--chunk-rows", "8"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["rows"] == len(frame) and summary["engine"] == "local"
    assert f"{len(frame)}/{len(frame)} rows (100.0%)" in captured.err


def test_dask_local_cluster_writes_exactly_the_local_engines_output(tmp_path, frame):
    pytest.importorskip("distributed")
    source = tmp_path / "in.jsonl"
    write_input(frame, source)
    local = moderate_file(source, tmp_path / "local.parquet", chunk_rows=4, progress=False)
    dask = moderate_file(source, tmp_path / "dask", chunk_rows=4, engine="dask", workers=2, progress=False)
    assert (dask.rows, dask.flagged, dask.outcomes) == (local.rows, local.flagged, local.outcomes)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "dask"), pd.read_parquet(tmp_path / "local.parquet"))


def test_a_dask_worker_with_another_version_of_the_model_is_refused():
    pytest.importorskip("distributed")
    from moderation.batch.dask_engine import LoadModel

    name, _ = resolve_model("default")
    with pytest.raises(RuntimeError, match="install the same moderation package"):
        LoadModel(name, "another-version").setup(SimpleNamespace(address="tcp://worker:1"))


def test_importing_the_batch_module_changes_no_process_wide_setting():
    import subprocess
    import sys

    code = "import codecs, csv, moderation.batch\ntry:\n    codecs.lookup_error('moderation-cp1252')\n" \
           "    print('handler registered')\nexcept LookupError:\n    print(csv.field_size_limit())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "131072", result.stderr
