"""The identity terms the project measures fairness over: 40 groups in ten kinds, how each is written, and the
counterfactual swap used in training.

One table serves the datasheet's per-term counts, training-time augmentation (`swap_identity`), the behavioural
suite's templates and the unintended-bias metrics, so they all mean the same groups.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class IdentityTerm:
    """A group: its canonical name, kind, an adjective ("Muslim"), a plural noun phrase ("Muslims"), and the word
    forms that count as a mention of it in a text."""

    name: str
    kind: str
    adjective: str
    plural: str
    forms: tuple[str, ...]


def _term(name, kind, adjective, plural, *forms) -> IdentityTerm:
    return IdentityTerm(name, kind, adjective, plural, tuple(dict.fromkeys((name, adjective.lower(), plural.lower(),
                                                                           *forms))))


IDENTITY_TERMS: tuple[IdentityTerm, ...] = (
    _term("black", "race", "Black", "Black people"),
    _term("white", "race", "white", "white people"),
    _term("asian", "race", "Asian", "Asian people", "asians"),
    _term("latino", "race", "Latino", "Latinos", "latina", "latinas", "latinx", "hispanic", "hispanics"),
    _term("arab", "race", "Arab", "Arabs"),
    _term("indigenous", "race", "Indigenous", "Indigenous people", "native american", "native americans",
          "aboriginal", "first nations"),
    _term("roma", "race", "Roma", "Roma people", "romani"),
    _term("chinese", "race", "Chinese", "Chinese people"),
    _term("mexican", "nationality", "Mexican", "Mexicans"),
    _term("indian", "nationality", "Indian", "Indians"),
    _term("polish", "nationality", "Polish", "Polish people", "poles"),
    _term("nigerian", "nationality", "Nigerian", "Nigerians"),
    _term("pakistani", "nationality", "Pakistani", "Pakistanis"),
    _term("irish", "nationality", "Irish", "Irish people"),
    _term("immigrant", "migration", "immigrant", "immigrants", "migrant", "migrants"),
    _term("refugee", "migration", "refugee", "refugees"),
    _term("asylum seeker", "migration", "asylum-seeking", "asylum seekers", "asylum seeker"),
    _term("muslim", "religion", "Muslim", "Muslims", "islam", "islamic"),
    _term("jewish", "religion", "Jewish", "Jews", "jew", "judaism"),
    _term("christian", "religion", "Christian", "Christians", "christianity"),
    _term("hindu", "religion", "Hindu", "Hindus"),
    _term("sikh", "religion", "Sikh", "Sikhs"),
    _term("buddhist", "religion", "Buddhist", "Buddhists"),
    _term("atheist", "religion", "atheist", "atheists"),
    _term("women", "gender", "female", "women", "woman"),
    _term("men", "gender", "male", "men"),
    _term("trans", "gender identity", "trans", "trans people", "transgender", "trans women", "trans men"),
    _term("non-binary", "gender identity", "non-binary", "non-binary people", "nonbinary", "enby", "enbies"),
    _term("gay", "sexual orientation", "gay", "gay people", "gays"),
    _term("lesbian", "sexual orientation", "lesbian", "lesbians"),
    _term("bisexual", "sexual orientation", "bisexual", "bisexual people", "bisexuals", "bi", "bisexuality"),
    _term("queer", "sexual orientation", "queer", "queer people"),
    _term("disabled", "disability", "disabled", "disabled people", "disability", "disabilities"),
    _term("deaf", "disability", "Deaf", "Deaf people"),
    _term("blind", "disability", "blind", "blind people"),
    _term("autistic", "disability", "autistic", "autistic people", "autism"),
    _term("wheelchair user", "disability", "wheelchair-using", "wheelchair users", "wheelchair user"),
    _term("elderly", "age", "elderly", "elderly people", "old people", "pensioners", "seniors"),
    _term("teenagers", "age", "teenage", "teenagers", "teens", "teenager"),
    _term("boomers", "age", "boomer", "boomers"),
)
TERMS_BY_NAME = {term.name: term for term in IDENTITY_TERMS}


def _forms_pattern(forms) -> str:
    return "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))


@lru_cache(maxsize=1)
def _mention_regex() -> re.Pattern:
    groups = [f"(?P<t{i}>{_forms_pattern(term.forms)})" for i, term in enumerate(IDENTITY_TERMS)]
    return re.compile(r"(?<![\w-])(?:" + "|".join(groups) + r")(?![\w-])", re.IGNORECASE)


def mentioned_terms(text: str) -> set[str]:
    """The identity terms a text mentions (whole words, any case)."""
    return {IDENTITY_TERMS[int(m.lastgroup[1:])].name for m in _mention_regex().finditer(text)}


# Swapping needs a form that reads right in the other group's place: plural noun phrases for plural noun phrases,
# adjectives for adjectives. Only these two forms are swapped; other mentions are left as written.
@lru_cache(maxsize=1)
def _swap_regex() -> re.Pattern:
    forms = {}
    for term in IDENTITY_TERMS:
        forms.setdefault(term.plural.lower(), ("plural", term))
        forms.setdefault(term.adjective.lower(), ("adjective", term))
    return re.compile(r"(?<![\w-])(" + _forms_pattern(forms) + r")(?![\w-])", re.IGNORECASE), forms


def _seeded_index(text: str, salt: int, n: int) -> int:
    return int(hashlib.sha256(f"{salt}:{text}".encode()).hexdigest(), 16) % n


def swap_identity(text: str, salt: int = 0) -> str | None:
    """`text` with every plural or adjective identity mention replaced by another group's same form (one group
    chosen per original group, from the text's own digest so the swap is reproducible), or None if it has none.

    Counterfactual augmentation: the copy keeps the original's labels, so a model cannot learn that a group's
    name predicts a label."""
    regex, forms = _swap_regex()
    found = {forms[m.group(1).lower()][1].name for m in regex.finditer(text)}
    if not found:
        return None
    others = [t for t in IDENTITY_TERMS if t.name not in found]
    chosen = {}
    for k, name in enumerate(sorted(found)):
        chosen[name] = others[_seeded_index(text, salt * 100 + k, len(others))]

    def replace(match: re.Match) -> str:
        kind, term = forms[match.group(1).lower()]
        new = getattr(chosen[term.name], kind)
        at_sentence_start = not text[:match.start()].strip() or text[:match.start()].rstrip()[-1] in ".!?"
        return new[0].upper() + new[1:] if at_sentence_start else new

    return regex.sub(replace, text)


def counterfactual_key(text: str) -> str:
    """`text` lower-cased with every mention that `swap_identity` would swap replaced by one placeholder: a text and
    its counterfactual copies share the key, so cross-validation can keep them in one fold (a copy in the training
    folds would otherwise score its twin, and out-of-fold scores of group-naming texts would look better than
    they are)."""
    return _swap_regex()[0].sub("\x00", text).lower()


def with_counterfactuals(frame, text_column: str = "text", id_column: str = "id"):
    """`frame` (a DataFrame) plus, for every row whose text names a group, a copy with the groups swapped
    (`swap_identity`), labels and other columns unchanged and the id suffixed "~swap". Train-split only."""
    swapped = frame[text_column].map(swap_identity)
    extra = frame[swapped.notna()].copy()
    extra[text_column] = swapped[swapped.notna()]
    extra[id_column] = extra[id_column] + "~swap"
    import pandas as pd  # here, not at import: the table above is used where pandas is not needed

    return pd.concat([frame, extra], ignore_index=True)
