"""scikit-learn's own estimator checks on the project's estimators.

Both classifiers are multi-label by design: they fit one 0/1 column per category and return P(category) per
column, the shape every model of the project shares. The checks that fit class labels or a single target column
therefore cannot pass, and are listed below with that reason; `xfail_strict` turns any of them that starts to pass
into a failure, so the list never outlives its reason. Everything else runs, the multi-label checks included.
"""
from __future__ import annotations

import pickle

import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks

from moderation.text.classical import ThresholdedLinearRegression
from moderation.text.features import WordCachedCharTfidf
from moderation.text.transformer import MeanOfViews

MULTI_LABEL_ONLY = ("fits one 0/1 column per category and returns P(category) per column; it takes no class "
                    "labels and no single target column, which this check fits")
NOT_STRICTLY_INSIDE = ("its outputs are least-squares fits clipped to [0, 1], so they reach 0 and 1 exactly; that they "
                       "are no probabilities is what this teaching baseline shows")
VIEWS_VALIDATE = ("a meta-estimator: X (in the project a feature frame with a text column) goes unvalidated to its "
                  "two views, which validate it and name themselves in the error")

EXPECTED_FAILURES = {
    "ThresholdedLinearRegression": {
        "check_estimator_sparse_array": MULTI_LABEL_ONLY,
        "check_estimator_sparse_matrix": MULTI_LABEL_ONLY,
        "check_classifiers_classes": MULTI_LABEL_ONLY,
        "check_classifiers_train": MULTI_LABEL_ONLY,
        "check_classifiers_regression_target": "a least-squares fit: a continuous target is fitted, not refused",
        "check_classifiers_multilabel_output_format_predict_proba": NOT_STRICTLY_INSIDE,
    },
    "MeanOfViews": {
        "check_fit_score_takes_y": MULTI_LABEL_ONLY,
        "check_pipeline_consistency": MULTI_LABEL_ONLY,
        "check_estimator_sparse_array": MULTI_LABEL_ONLY,
        "check_estimator_sparse_matrix": MULTI_LABEL_ONLY,
        "check_classifiers_one_label": MULTI_LABEL_ONLY,
        "check_classifiers_train": MULTI_LABEL_ONLY,
        "check_n_features_in": VIEWS_VALIDATE,
        "check_n_features_in_after_fitting": VIEWS_VALIDATE,
    },
}


def expected_failed_checks(estimator) -> dict[str, str]:
    return EXPECTED_FAILURES.get(type(estimator).__name__, {})


# The views as the project builds them: one-vs-rest logistic regressions (here over plain numeric columns).
ESTIMATORS = [
    ThresholdedLinearRegression(),
    MeanOfViews(OneVsRestClassifier(LogisticRegression()), OneVsRestClassifier(LogisticRegression(C=0.1))),
    WordCachedCharTfidf(),  # text input: scikit-learn runs only its cloning check on a vectorizer
]


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks, xfail_strict=True)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_the_vectorizer_follows_its_parameters_through_clone_set_params_and_pickle():
    """What the checks would verify on a numeric estimator, for the text vectorizer they skip."""
    texts = ["you are an idiot", "what an idiot", "a kind word", "kind words help"]
    fitted = WordCachedCharTfidf(min_df=1).fit(texts)
    again = clone(fitted).fit(texts)
    assert again.vocabulary_ == fitted.vocabulary_ and again.get_params() == fitted.get_params()
    trigrams = clone(fitted).set_params(ngram_range=(3, 3)).fit(texts)
    assert trigrams.vocabulary_ and {len(gram) for gram in trigrams.vocabulary_} == {3}
    fitted.transform(texts)  # fills the per-word cache, which a pickle leaves out
    restored = pickle.loads(pickle.dumps(fitted))
    assert "_word_columns" not in restored.__dict__
    assert (restored.transform(texts) != fitted.transform(texts)).nnz == 0


@pytest.mark.parametrize("estimator", ESTIMATORS[:2], ids=lambda e: type(e).__name__)
def test_predicting_before_fit_names_the_estimator(estimator):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match=type(estimator).__name__):
        estimator.predict([[0.0, 1.0]])
