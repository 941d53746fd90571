"""The tiny checkpoints reload through the same Auto classes the real models use, offline."""
from __future__ import annotations

import pytest
import torch
from PIL import Image

from moderation.testing.tiny_models import VIT_IMAGE_SIZE, VIT_LABELS, main


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_bert_reloads_with_a_real_vocab(tiny_models):
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_models["bert"])
    model = AutoModel.from_pretrained(tiny_models["bert"])
    batch = tokenizer(["Have a lovely day", "you are such an idiot"], padding=True, return_tensors="pt")
    tokens = tokenizer.convert_ids_to_tokens(batch["input_ids"][0])
    assert tokens[0] == "[CLS]" and "lovely" in tokens and "[UNK]" not in tokens
    assert tokenizer.tokenize("idiots") == ["idiot", "##s"]
    with torch.inference_mode():
        hidden = model(**batch).last_hidden_state
    assert hidden.shape[:2] == batch["input_ids"].shape and hidden.shape[2] == model.config.hidden_size


def test_vit_reloads_with_imagenet_labels(tiny_models):
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    processor = AutoImageProcessor.from_pretrained(tiny_models["vit"])
    model = AutoModelForImageClassification.from_pretrained(tiny_models["vit"])
    pixels = processor(images=Image.new("RGB", (200, 120), "orange"), return_tensors="pt")["pixel_values"]
    assert tuple(pixels.shape) == (1, 3, VIT_IMAGE_SIZE, VIT_IMAGE_SIZE)
    with torch.inference_mode():
        logits = model(pixel_values=pixels).logits
    assert logits.shape == (1, len(VIT_LABELS))
    assert [model.config.id2label[i] for i in range(len(VIT_LABELS))] == list(VIT_LABELS)
    assert model.config.label2id["syringe"] == VIT_LABELS.index("syringe")


def test_gpt2_reloads_and_generates(tiny_models):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_models["gpt2"])
    model = AutoModelForCausalLM.from_pretrained(tiny_models["gpt2"])
    text = "The weather was great, you idiot."
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.decode(ids) == text  # byte-level BPE round-trips any text
    assert len(ids) < len(text)  # merges were learned, not just bytes
    assert tokenizer.eos_token == tokenizer.pad_token == "<|endoftext|>"
    inputs = tokenizer(text, return_tensors="pt")
    output = model.generate(**inputs, max_new_tokens=5, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert output.shape[1] == inputs["input_ids"].shape[1] + 5


def test_command_line_rebuilds_the_same_files_and_leaves_the_global_rng_alone(tiny_models, tmp_path, capsys):
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    assert main([str(tmp_path)]) == 0
    assert torch.equal(torch.rand(1), expected_next)
    printed = capsys.readouterr().out
    for name, first in tiny_models.items():
        assert f"{name}\t{tmp_path / name}" in printed
        for file in sorted(first.iterdir()):
            assert file.read_bytes() == (tmp_path / name / file.name).read_bytes(), f"{name}/{file.name} differs"
    assert main([]) == 2  # usage
