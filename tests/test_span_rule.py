"""The linear models' span rule is the one our own span-annotated texts choose (benchmarks/span_rule.py).

Refitting the default changes its logit shares; if another rule then wins on data/spans.csv, this fails until
`python -m benchmarks.span_rule` is rerun and LINEAR_RULE updated, so the constant never drifts from its evidence.
"""
from benchmarks import span_rule
from moderation import datasets
from moderation.text import default_model_name, spans


def test_the_span_rule_is_the_best_on_our_span_data():
    frame = datasets.load_span_texts()
    scores = span_rule.grid(frame["text"].tolist(), span_rule.gold_offsets(frame), default_model_name())
    assert span_rule.best_rule(scores) == spans.LINEAR_RULE
    assert scores[spans.LINEAR_RULE] > 0.7  # spans that mostly land on the marked words, not a degenerate rule


def test_a_stricter_rule_shows_fewer_words():
    text = "shut up you pathetic worthless idiot, nobody wants you here"
    chosen = spans.LINEAR_RULE
    with span_rule.linear_rule(spans.LinearSpanRule(relative=0.1, floor=0.1)):
        loose = span_rule.moderate_text(text).spans
    with span_rule.linear_rule(spans.LinearSpanRule(relative=1.0, floor=0.1)):
        strict = span_rule.moderate_text(text).spans
    assert {s.label for s in strict} <= {s.label for s in loose}
    def model_words(found):  # "lexicon+model": a lexicon match the model also leans on
        return sum("model" in s.source.split("+") for s in found)

    assert 0 < model_words(strict) < model_words(loose)
    assert spans.LINEAR_RULE == chosen  # restored after each block
