"""Datasets: `load_*` for the bundled data we wrote ourselves, `fetch_*` for public datasets (evaluation only).

The bundled texts (`data/texts.csv`, CC BY 4.0, see `data/DATASHEET.md`) train and tune every model. The public
datasets are downloaded on first use from their public homes, checked against a SHA-256, cached under the user's
cache directory, and are never used for training or threshold tuning. `MODERATION_DATA_MIRROR=DIR` makes the
fetchers read a local copy laid out like the upstream releases (DIR/davidson/labeled_data.csv,
DIR/sms_spam/SMSSpamCollection, DIR/toxic_spans/tsd_test.csv).
"""
from __future__ import annotations

import ast
import hashlib
import html
import io
import re
import sys
import urllib.request
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from . import settings
from .files import atomic_write, sha256_of
from .settings import cache_dir
from .taxonomy import TEXT_CATEGORIES

LABEL_COLUMNS = list(TEXT_CATEGORIES)
SPLITS = ("train", "test")


class DatasetUnavailableError(RuntimeError):
    """A public dataset is neither mirrored locally, cached, nor downloadable right now."""


def _bundled_path(name: str):
    return resources.files("moderation.data").joinpath(name)


def load_texts(split: str | None = None) -> pd.DataFrame:
    """The bundled multi-label texts: id, text, source, split and one 0/1 column per text category."""
    with _bundled_path("texts.csv").open("r", encoding="utf-8") as handle:
        frame = pd.read_csv(handle, dtype={"text": str, "source": str, "split": str}, keep_default_na=False)
    if split is not None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        frame = frame[frame["split"] == split].reset_index(drop=True)
    return frame


def load_sms_email(split: str | None = None) -> pd.DataFrame:
    """The SMS and e-mail rows of the bundled texts: the spam-vs-ham view of our own data."""
    frame = load_texts(split)
    return frame[frame["source"].isin(["sms", "email"])].reset_index(drop=True)


def load_span_texts() -> pd.DataFrame:
    """Our span-annotated texts (`data/spans.csv`): text, source, labels and the (start, end) character spans an
    annotator marked as the toxic words, so the span rule's constants are chosen on our data, never on public sets."""
    with _bundled_path("spans.csv").open("r", encoding="utf-8") as handle:
        frame = pd.read_csv(handle, dtype=str, keep_default_na=False)
    frame["labels"] = frame["labels"].str.split()
    frame["spans"] = [_marked_spans(row, number) for number, row in enumerate(frame.itertuples(), start=2)]
    return frame[["text", "source", "labels", "spans"]]


def _marked_spans(row, line: int) -> list[tuple[int, int]]:
    """Every occurrence of each " | "-separated toxic substring, whole-word where it starts or ends with a letter."""
    unknown = sorted(set(row.labels) - set(TEXT_CATEGORIES))
    if unknown:
        raise ValueError(f"spans.csv line {line}: unknown labels {unknown}")
    spans = []
    for phrase in filter(None, (part.strip() for part in row.toxic.split(" | "))):
        pattern = ((r"(?<!\w)" if phrase[0].isalpha() else "") + re.escape(phrase)
                   + (r"(?!\w)" if phrase[-1].isalpha() else ""))
        found = [match.span() for match in re.finditer(pattern, row.text)]
        if not found:
            raise ValueError(f"spans.csv line {line}: toxic substring {phrase!r} is not in its text {row.text!r}")
        spans.extend(found)
    return sorted(set(spans))


#: Bundled datasets by name, for the Metrics tab and the evaluate command.
BUNDLED = {"texts": load_texts, "sms_email": load_sms_email}


# --- public datasets (evaluation only) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicDataset:
    name: str
    folder: str
    filename: str
    url: str
    sha256: str
    licence: str
    citation: str
    member: str | None = None  # file inside a zip download


PUBLIC_DATASETS = {
    "davidson": PublicDataset(
        "davidson", "davidson", "labeled_data.csv",
        "https://raw.githubusercontent.com/t-davidson/hate-speech-and-offensive-language/master/data/labeled_data.csv",
        "fcb8bc7c68120ae4af04a5b9acd58585513ede11e1548ebf36a5c2040b6f6281", "MIT",
        "Davidson, Warmsley, Macy, Weber. Automated Hate Speech Detection and the Problem of Offensive Language. "
        "ICWSM 2017.",
    ),
    "sms_spam": PublicDataset(
        "sms_spam", "sms_spam", "SMSSpamCollection",
        "https://archive.ics.uci.edu/static/public/228/sms+spam+collection.zip",
        "7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d", "CC BY 4.0",
        "Almeida, Gómez Hidalgo, Yamakami. Contributions to the Study of SMS Spam Filtering. DocEng 2011.",
        member="SMSSpamCollection",
    ),
    **{
        f"toxic_spans_{split}": PublicDataset(
            f"toxic_spans_{split}", "toxic_spans", f"tsd_{split}.csv",
            f"https://raw.githubusercontent.com/ipavlopoulos/toxic_spans/master/SemEval2021/data/tsd_{split}.csv",
            digest, "CC0 1.0",
            "Pavlopoulos, Sorensen, Laugier, Androutsopoulos. SemEval-2021 Task 5: Toxic Spans Detection. "
            "SemEval 2021.",
        )
        for split, digest in {
            "train": "b538ea2d64ed7c306ff8f010a25a5286bef6ce61d469042482ba64efc1ddd6cd",
            "trial": "6bb8e9a16470c0269ac8727fd8bb77df68d8fb27955d9f5ff29ad724505622e8",
            "test": "74f4dd086667fdad6198539ff9201d1f25f3a94c5169da1e7643a949974bf6b8",
        }.items()
    },
}


def mirror_dir() -> Path | None:
    return settings.path("MODERATION_DATA_MIRROR")


def _spec(name: str) -> PublicDataset:
    if name not in PUBLIC_DATASETS:
        raise ValueError(f"unknown public dataset {name!r}; expected one of {', '.join(PUBLIC_DATASETS)}")
    return PUBLIC_DATASETS[name]


def _fetch_bytes(url: str) -> bytes:
    """The one network call of this module (tests replace it)."""
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read()


def _checksum_error(spec: PublicDataset, where: str) -> DatasetUnavailableError:
    return DatasetUnavailableError(
        f"{spec.name}: {where} does not have the SHA-256 of the release this project was measured on "
        f"({spec.sha256[:12]}...); refusing to use it (the upstream file may have changed, or the copy is damaged)."
    )


def _download(spec: PublicDataset, target: Path) -> None:
    """Download into `target` only if the SHA-256 matches; nothing is left behind otherwise."""
    print(f"Downloading {spec.name} from {spec.url}\n  licence: {spec.licence}; please cite: {spec.citation}",
          file=sys.stderr)
    try:
        payload = _fetch_bytes(spec.url)
    except OSError as exc:
        raise DatasetUnavailableError(
            f"Could not download {spec.name} from {spec.url} ({exc}). Set MODERATION_DATA_MIRROR to a folder "
            f"holding {spec.folder}/{spec.filename}."
        ) from exc
    if spec.member:
        try:
            with zipfile.ZipFile(io.BytesIO(payload)) as archive:
                payload = archive.read(spec.member)
        except (zipfile.BadZipFile, KeyError) as exc:
            raise DatasetUnavailableError(
                f"{spec.name}: {spec.url} is not a zip holding {spec.member} ({exc})") from exc
    if hashlib.sha256(payload).hexdigest() != spec.sha256:
        raise _checksum_error(spec, f"the file downloaded from {spec.url}")
    atomic_write(target, payload)  # a concurrent reader sees no file or the whole file


#: Mirror files already checked in this process: (path, size, mtime) -> True.
_verified_mirror_files: set[tuple[str, int, float]] = set()


def _verify_mirror_file(spec: PublicDataset, path: Path) -> None:
    """A mirror is only a faster source of the same release: a different file would silently change the figures."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime)
    if key not in _verified_mirror_files:
        if sha256_of(path) != spec.sha256:
            raise _checksum_error(spec, f"the mirrored copy {path}")
        _verified_mirror_files.add(key)


def dataset_path(name: str, *, download: bool = True) -> Path:
    """Local path of a public dataset file: the mirror, else the cache, else downloaded into the cache."""
    spec = _spec(name)
    mirror = mirror_dir()
    if mirror is not None:
        path = mirror / spec.folder / spec.filename
        if not path.is_file():
            raise DatasetUnavailableError(f"MODERATION_DATA_MIRROR is set but {path} does not exist")
        _verify_mirror_file(spec, path)
        return path
    path = cache_dir() / "datasets" / spec.folder / spec.filename
    if not path.is_file():
        if not download:
            raise DatasetUnavailableError(f"{spec.name} is not cached at {path}")
        _download(spec, path)
    return path


def _with_provenance(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Attach the licence and citation, so whoever reports figures on the frame can show them."""
    spec = PUBLIC_DATASETS[name]
    frame.attrs.update(dataset=spec.name, licence=spec.licence, citation=spec.citation, source=spec.url)
    return frame


def fetch_davidson() -> pd.DataFrame:
    """Davidson et al. tweets: `text`, `label` (0 hate, 1 offensive, 2 neither) and `flagged` (label != 2)."""
    raw = pd.read_csv(dataset_path("davidson"), dtype={"tweet": str}, keep_default_na=False)
    frame = pd.DataFrame({"text": raw["tweet"].map(html.unescape), "label": raw["class"].astype(int)})
    frame["flagged"] = frame["label"] != 2
    return _with_provenance(frame, "davidson")


def fetch_sms_spam() -> pd.DataFrame:
    """UCI SMS Spam Collection: `text` and `spam` (bool)."""
    rows = []
    with open(dataset_path("sms_spam"), encoding="utf-8", errors="replace") as handle:
        for line in handle:
            label, _, text = line.rstrip("\n").partition("\t")
            if label in ("ham", "spam"):
                rows.append((text, label == "spam"))
    return _with_provenance(pd.DataFrame(rows, columns=["text", "spam"]), "sms_spam")


def fetch_toxic_spans(split: str = "test") -> pd.DataFrame:
    """SemEval-2021 Toxic Spans (split train, trial or test): `text` and `spans` (sorted toxic character offsets)."""
    name = f"toxic_spans_{split}"
    raw = pd.read_csv(dataset_path(name), dtype=str, keep_default_na=False)
    spans = raw["spans"].map(lambda s: sorted(set(ast.literal_eval(s))) if s.strip() else [])
    return _with_provenance(pd.DataFrame({"text": raw["text"], "spans": spans}), name)


def citation(name: str) -> str:
    """One line to show next to figures measured on `name`: who to cite, the licence and where it comes from."""
    spec = _spec(name)
    return f"{spec.citation} Licence: {spec.licence}. Source: {spec.url}"
