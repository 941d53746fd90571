"""Tiny checkpoints (BERT, ViT, GPT-2) that load through the same Auto classes as the real models.

The Hugging Face hub is not reachable from tests or CI, yet the loading code must run for real. These checkpoints have
the real architectures and tokenizer/processor types, so `from_pretrained(directory)` exercises the exact path a hub id
takes, in milliseconds. BERT and ViT have random weights; GPT-2 is fitted for a second on our own corpus so that it
writes words. Tests check plumbing and guarantees, never quality.

    python -m moderation.testing.tiny_models OUTDIR   # writes OUTDIR/bert, OUTDIR/vit, OUTDIR/gpt2
"""
from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

SEED = 0

#: Label names exactly as google/vit-base-patch16-224 spells them, so the ImageNet -> category table is tested on the
#: real strings: some map to moderation categories, the last three are harmless.
VIT_LABELS: tuple[str, ...] = (
    "assault rifle, assault gun",
    "revolver, six-gun, six-shooter",
    "syringe",
    "pill bottle",
    "beer bottle",
    "wine bottle",
    "bikini, two-piece",
    "brassiere, bra, bandeau",
    "golden retriever",
    "tabby, tabby cat",
    "daisy",
)
VIT_IMAGE_SIZE = 32

# Our own short English text, in several registers, with some rude words so generation tests can block them.
# It trains the GPT-2 tokenizer and supplies the BERT word list.
CORPUS = """\
Have a lovely day and thanks for the quick reply.
The weather was great so we walked along the river after lunch.
Can you send me the report before the meeting tomorrow morning?
I think the new phone is fine but the battery could be better.
My sister baked bread and the whole kitchen smelled amazing.
We watched a film last night and everyone fell asleep halfway through.
The train was late again, so I missed the start of the game.
Please remember to water the plants while I am away.
This coffee shop has the best cake in town, honestly.
He fixed the bike, cleaned the chain and pumped the tyres.
Our team killed it at the quiz, we won by ten points.
The museum opens at nine and closes at five on weekdays.
Thanks for the help with the garden, the roses look beautiful now.
I love this song, it reminds me of summer at the beach.
Do not forget to bring a jacket, it gets cold in the evening.
The doctor said to rest, drink water and take the pills twice a day.
She is learning to play the guitar and practises every evening.
Could you check the numbers again? Something looks wrong in the table.
The kids built a huge sand castle and a moat around it.
We are moving house next month, so everything is in boxes.
You are such an idiot, nobody wants you here.
Shut up, you stupid clown, your ideas are rubbish.
What a moron, he cannot even tie his own shoes.
This is crap, total garbage, I want my money back.
Damn, that was a hard exam, I hope I passed.
Go away loser, you are pathetic and dumb.
That referee is a fool and a jerk, what a joke.
Win a free phone now, click this link and claim your prize.
Congratulations, you have been selected for a cash reward, reply now.
Cheap pills online, no prescription needed, order today.
The cat sat on the warm window and watched the birds outside.
The dog ran across the park chasing a red ball.
A small boat drifted slowly across the quiet lake.
The library has a new section for science and history books.
Tomorrow we will paint the fence and fix the gate.
Dinner is ready, come and eat before it gets cold.
The market sells fresh fruit, vegetables and flowers every Saturday.
My grandfather tells long stories about his years at sea.
The printer is broken again, can someone call the office?
I finished the book and the ending was a real surprise.
"""


def _corpus_lines() -> list[str]:
    return CORPUS.splitlines()


def _bert_vocab() -> dict[str, int]:
    """A WordPiece vocab: specials, single characters, ## continuations and the corpus words, each exactly once."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    characters = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'\"-:;()")
    pieces = [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    pieces += ["##s", "##ed", "##ing", "##er", "##ly", "##est", "##ion"]
    words = sorted({w.strip(".,!?'\"").lower() for line in _corpus_lines() for w in line.split()} - {""})
    tokens = list(dict.fromkeys(specials + characters + pieces + words))  # keeps the first of any duplicate
    return {token: i for i, token in enumerate(tokens)}


def build_bert(outdir: Path) -> Path:
    """A 2-layer BertModel with a BertTokenizerFast over a small local vocab."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    # `vocab=` (not `vocab_file=`, which transformers 5 silently ignores and maps everything to [UNK]).
    tokenizer = BertTokenizerFast(vocab=_bert_vocab(), do_lower_case=True)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(outdir)
    tokenizer.save_pretrained(outdir)
    return outdir


def build_vit(outdir: Path) -> Path:
    """A 2-layer ViTForImageClassification on 32x32 inputs whose labels are real ImageNet class names."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    config = ViTConfig(
        image_size=VIT_IMAGE_SIZE,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        id2label=dict(enumerate(VIT_LABELS)),
        label2id={label: i for i, label in enumerate(VIT_LABELS)},
    )
    ViTForImageClassification(config).save_pretrained(outdir)
    ViTImageProcessor(size={"height": VIT_IMAGE_SIZE, "width": VIT_IMAGE_SIZE}).save_pretrained(outdir)
    return outdir


def gpt2_tokenizer(lines: list[str], vocab_size: int = 800):
    """A GPT-2 tokenizer whose byte-level BPE is trained here on `lines` (any text round-trips through it)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2TokenizerFast

    eos = "<|endoftext|>"
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(lines, vocab_size=vocab_size, min_frequency=1, special_tokens=[eos], show_progress=False)
    return GPT2TokenizerFast(tokenizer_object=bpe._tokenizer, eos_token=eos, bos_token=eos, unk_token=eos,
                             pad_token=eos)


def build_gpt2(outdir: Path, *, tokenizer=None, fit_steps: int = 0, **config_overrides) -> Path:
    """A GPT2LMHeadModel, by default 2 layers wide 32, with `gpt2_tokenizer(CORPUS)`, fitted `fit_steps` on CORPUS.

    Benchmarks pass the real GPT-2 small sizes as `config_overrides` (and no fitting) for a same-cost model.
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = tokenizer or gpt2_tokenizer(_corpus_lines())
    config = dict(
        vocab_size=len(tokenizer),
        n_positions=512,  # room for a prompt plus the generation cap of 200 new tokens
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = GPT2LMHeadModel(GPT2Config(**{**config, **config_overrides}))
    _fit(model, tokenizer, fit_steps)
    model.save_pretrained(outdir)
    tokenizer.save_pretrained(outdir)
    return outdir


def _fit(model, tokenizer, steps: int, block: int = 32) -> None:
    """A few full-batch steps on CORPUS, so the model writes corpus-like English instead of random bytes.

    Random weights sample control bytes and word fragments that any text classifier finds odd; a briefly fitted
    model writes words, and sometimes reaches for the corpus's rude ones ("You are such an id..."), which is what a
    generation guard has to stop. Still a toy: it has memorised a little of 40 lines.
    """
    import torch

    if not steps:
        return
    ids = tokenizer(CORPUS)["input_ids"]
    batch = torch.tensor(ids[: len(ids) // block * block]).view(-1, block)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    threads = torch.get_num_threads()
    # One thread: these matrices are tiny, extra threads only add synchronisation (40x slower on a busy machine),
    # and a fixed thread count keeps the weights identical on every machine.
    torch.set_num_threads(1)
    try:
        model.train()
        for _ in range(steps):
            model(input_ids=batch, labels=batch).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        model.eval()
    finally:
        torch.set_num_threads(threads)


BUILDERS = {"bert": build_bert, "vit": build_vit, "gpt2": partial(build_gpt2, fit_steps=50)}


def build_tiny_models(outdir) -> dict[str, Path]:
    """Write every tiny checkpoint under `outdir` and return {name: directory}. Same seed, same weights."""
    import torch

    outdir = Path(outdir)
    paths = {}
    # Seed inside a forked RNG so building fixtures never changes the caller's random stream.
    with torch.random.fork_rng(devices=[]):
        for name, build in BUILDERS.items():
            torch.manual_seed(SEED)
            target = outdir / name
            target.mkdir(parents=True, exist_ok=True)
            paths[name] = build(target)
    return paths


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m moderation.testing.tiny_models OUTDIR", file=sys.stderr)
        return 2
    for name, path in build_tiny_models(argv[0]).items():
        print(f"{name}\t{path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
