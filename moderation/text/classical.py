"""The classical text models: scikit-learn Pipelines, grid-searched, with per-category thresholds tuned on our data.

Every model is `Pipeline([("features", ColumnTransformer), ("clf", classifier)])` over the frame from
`features.feature_frame`. `train_model` runs GridSearchCV on the bundled train split, tunes one threshold per
category on out-of-fold predictions (never on the test split, never on public data), refits on the whole train
split and scores the test split. `python -m moderation train` records the results in the model card (`model_card`);
a model that is asked for later is rebuilt from those recorded parameters and cached per scikit-learn version,
so nothing depends on unpickling an artefact made by another library version.
"""
from __future__ import annotations

import tempfile
import time
import weakref
from dataclasses import dataclass, field
from typing import Callable

import joblib
import numpy as np
import sklearn
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.validation import check_is_fitted, validate_data

from ..identity import counterfactual_key
from ..taxonomy import DEFAULT_THRESHOLD, TEXT_CATEGORIES
from .cache import data_version
from .features import FeatureRows, build_preprocessor, transform_rows

SEED = 0
CV_FOLDS = 3
THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)
SMOOTHING = 0.05
#: F1 differences smaller than this are not told apart when choosing a threshold: less than one bootstrap standard
#: error of a category's out-of-fold F1 (0.0065 for hate on corpus v5).
F1_TOLERANCE = 0.005


class ThresholdedLinearRegression(ClassifierMixin, BaseEstimator):
    """Least squares on 0/1 labels, clipped to [0, 1]: the teaching baseline that shows why classifiers exist.

    Its "probabilities" are unbounded regression outputs squashed by clipping, so they are poorly calibrated and
    a single outlier moves the whole fit; the metrics tab shows what that costs next to the real classifiers.
    """

    def __init__(self, fit_intercept: bool = True):
        self.fit_intercept = fit_intercept

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # what the feature step gives it
        tags.classifier_tags.multi_label = tags.target_tags.multi_output = True  # one 0/1 column per category
        return tags

    def fit(self, X, y):
        X, y = validate_data(self, X, y, accept_sparse=True, multi_output=True, y_numeric=True)
        # A small dense least-squares problem solves in seconds; the sparse solver (lsqr) takes minutes.
        X = X.toarray() if hasattr(X, "toarray") else X
        self.regressor_ = LinearRegression(fit_intercept=self.fit_intercept).fit(X, y)
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse=True, reset=False)
        X = X.toarray() if hasattr(X, "toarray") else X
        return np.clip(self.regressor_.predict(X), 0.0, 1.0)

    def predict(self, X):
        return (self.predict_proba(X) >= 0.5).astype(int)


@dataclass(frozen=True)
class ModelSpec:
    """A named classical model: its classifier, its grid, and how big a feature space it can afford."""

    name: str
    title: str
    make_classifier: Callable[[], BaseEstimator]
    param_grid: dict
    max_word_features: int = 30000
    max_char_features: int = 50000
    teaching_baseline: bool = False

    def pipeline(self) -> Pipeline:
        features = build_preprocessor(self.max_word_features, self.max_char_features)
        return Pipeline([("features", features), ("clf", self.make_classifier())])


SPECS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "logreg", "Logistic regression (one-vs-rest)",
            lambda: OneVsRestClassifier(LogisticRegression(max_iter=3000, class_weight="balanced", solver="liblinear")),
            {"clf__estimator__C": [2.0, 8.0, 32.0]},
        ),
        ModelSpec(
            "svm", "Linear SVM, calibrated (one-vs-rest)",
            lambda: OneVsRestClassifier(
                CalibratedClassifierCV(LinearSVC(class_weight="balanced", max_iter=10000), cv=3)),
            {"clf__estimator__estimator__C": [0.1, 0.3, 1.0]},
        ),
        ModelSpec(
            "forest", "Random forest (multi-output)",
            lambda: RandomForestClassifier(class_weight="balanced_subsample", random_state=SEED, n_jobs=-1),
            {"clf__n_estimators": [100, 300], "clf__max_depth": [None, 60], "clf__min_samples_split": [2, 5]},
            max_word_features=5000, max_char_features=10000,
        ),
        ModelSpec(
            "tree", "Decision tree (multi-output)",
            lambda: DecisionTreeClassifier(class_weight="balanced", random_state=SEED),
            {"clf__max_depth": [20, 60, None], "clf__min_samples_split": [2, 10]},
            max_word_features=5000, max_char_features=10000,
        ),
        ModelSpec(
            "linreg", "Linear regression on 0/1 labels (teaching baseline)",
            ThresholdedLinearRegression, {"clf__fit_intercept": [True, False]},
            max_word_features=300, max_char_features=600, teaching_baseline=True,
        ),
    )
}


def positive_proba(estimator, X) -> np.ndarray:
    """P(category) as an (n, k) array whatever the estimator returns (OvR array, multi-output list, regression)."""
    proba = estimator.predict_proba(X)
    if isinstance(proba, list):  # multi-output trees: one (n, n_classes) array per category
        clf = estimator[-1] if isinstance(estimator, Pipeline) else estimator
        columns = []
        for classes, p in zip(clf.classes_, proba):
            hit = np.flatnonzero(np.asarray(classes) == 1)
            columns.append(p[:, hit[0]] if hit.size else np.zeros(p.shape[0]))
        return np.column_stack(columns)
    return np.asarray(proba, dtype=float)


def tune_thresholds(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Per category, the highest threshold whose F1 on out-of-fold predictions is within F1_TOLERANCE of the best.

    The F1 curve is averaged over a window of +-SMOOTHING first, so the choice sits inside a stable region rather
    than on a spike that only this data set has. The curve is nearly flat over a wide range (hate: within half a
    point from 0.52 to 0.70 on corpus v5), so among thresholds that F1 cannot tell apart the one with the fewest
    false alarms is chosen: harmful texts are rarer in real traffic than in our corpus, so precision is what
    deployment loses first.
    """
    thresholds = {}
    for k, category in enumerate(TEXT_CATEGORIES):
        if y_true[:, k].sum() == 0:
            thresholds[category] = DEFAULT_THRESHOLD
            continue
        raw = np.array([f1_score(y_true[:, k], proba[:, k] >= t, zero_division=0) for t in THRESHOLD_GRID])
        smoothed = np.array([raw[np.abs(THRESHOLD_GRID - t) <= SMOOTHING + 1e-9].mean() for t in THRESHOLD_GRID])
        thresholds[category] = float(THRESHOLD_GRID[smoothed >= smoothed.max() - F1_TOLERANCE - 1e-9].max())
    return thresholds


def cv_folds(X) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (train, validation) index pairs every cross-validation of a feature frame uses: CV_FOLDS shuffled folds
    in which a text and its counterfactual copies (`identity.counterfactual_key`) always fall together."""
    groups = np.unique([counterfactual_key(t) for t in X["text"]], return_inverse=True)[1]
    return list(GroupKFold(CV_FOLDS, shuffle=True, random_state=SEED).split(np.zeros(len(groups)), groups=groups))


def out_of_fold_proba(pipeline: Pipeline, X, y: np.ndarray) -> np.ndarray:
    proba = np.zeros(y.shape, dtype=float)
    for train_idx, val_idx in cv_folds(X):
        fitted = clone(pipeline).fit(X.iloc[train_idx], y[train_idx])
        proba[val_idx] = positive_proba(fitted, X.iloc[val_idx])
    return proba


def apply_thresholds(proba: np.ndarray, thresholds: dict[str, float]) -> np.ndarray:
    return (proba >= np.array([thresholds[c] for c in TEXT_CATEGORIES])).astype(int)


@dataclass
class TrainedModel:
    """A fitted pipeline with its tuned thresholds and the record of how it was chosen."""

    name: str
    pipeline: Pipeline
    thresholds: dict[str, float]
    record: dict = field(default_factory=dict)

    def predict_proba(self, frame) -> np.ndarray:
        rows = FeatureRows.of(frame)
        if len(self.pipeline.steps) != 2:
            return positive_proba(self.pipeline, rows.frame)
        (_, features), (_, classifier) = self.pipeline.steps
        return classifier_proba(classifier, transform_rows(features, rows))


def classifier_proba(classifier, X) -> np.ndarray:
    """`positive_proba` of a fitted classifier on a feature matrix; for one-vs-rest logistic regression the same
    floats from one sparse product with all categories' coefficients (what each binary model's predict_proba
    computes, expit(X @ coef + intercept), without nine rounds of input validation)."""
    linear = _stacked_logistic(classifier)
    if linear is None:
        return positive_proba(classifier, X)
    weights, intercepts, constants = linear
    proba = expit(safe_sparse_dot(X, weights, dense_output=True) + intercepts)
    for k, value in constants.items():
        proba[:, k] = value
    return proba


def _stacked_logistic(classifier):
    """(coefficients as features x categories, intercepts, {category index: constant probability}) of a one-vs-rest
    of binary logistic regressions, or None for any other classifier."""
    if not isinstance(classifier, OneVsRestClassifier) or not getattr(classifier, "multilabel_", False):
        return None
    cached = _stacked.get(classifier)
    if cached is not None:
        return cached
    columns, intercepts, constants = [], [], {}
    for k, estimator in enumerate(classifier.estimators_):
        if isinstance(estimator, LogisticRegression) and estimator.coef_.shape[0] == 1 and \
                len(estimator.classes_) == 2:
            columns.append(estimator.coef_[0])
            intercepts.append(float(estimator.intercept_[0]))
        elif hasattr(estimator, "y_") and not hasattr(estimator, "coef_"):  # a category constant in training
            constants[k] = float(np.ravel(estimator.y_)[0])
            columns.append(None)
            intercepts.append(0.0)
        else:
            return None
    width = next((c.size for c in columns if c is not None), 0)
    weights = np.column_stack([c if c is not None else np.zeros(width) for c in columns]) if width else None
    if weights is None:
        return None
    _stacked[classifier] = stacked = (weights, np.asarray(intercepts), constants)
    return stacked


_stacked: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def grid_search(spec: ModelSpec, X, y: np.ndarray) -> tuple[dict, list[dict], float]:
    """GridSearchCV over the spec's grid: best parameters, every combination's CV score, best score."""
    with tempfile.TemporaryDirectory(prefix="moderation-grid-") as cache:
        # The feature step only depends on the fold, not on the classifier's parameters: fit it once per fold.
        pipeline = spec.pipeline().set_params(memory=joblib.Memory(cache, verbose=0))
        search = GridSearchCV(pipeline, spec.param_grid, scoring="f1_macro",
                              cv=cv_folds(X), n_jobs=1, refit=False)
        search.fit(X, y)
    results = [
        {"params": {k.split("__")[-1]: v for k, v in params.items()}, "mean_f1_macro": round(float(mean), 4),
         "std_f1_macro": round(float(std), 4), "mean_fit_seconds": round(float(fit_time), 2)}
        for params, mean, std, fit_time in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"],
                                               search.cv_results_["std_test_score"],
                                               search.cv_results_["mean_fit_time"])
    ]
    return search.best_params_, results, float(search.best_score_)


def fit_model(spec: ModelSpec, params: dict, X, y: np.ndarray, thresholds: dict | None = None) -> TrainedModel:
    """Fit `spec` with `params` on (X, y); tune thresholds out-of-fold unless they are given."""
    pipeline = spec.pipeline().set_params(**params)
    if thresholds is None:
        thresholds = tune_thresholds(y, out_of_fold_proba(pipeline, X, y))
    pipeline.fit(X, y)
    return TrainedModel(spec.name, pipeline, thresholds)


def train_model(spec: ModelSpec, X_train, y_train, X_test, y_test, previous: dict | None = None) -> TrainedModel:
    """Grid search, threshold tuning, refit, and test-split scores: the full record for the model card.

    With `previous` (the model's card record), its grid search's winner is refitted on this data instead of
    searching again (`train --keep-params`: the search is most of the cost); thresholds are still tuned and the
    test split scored afresh, and the record keeps that search's results and says which data it ran on."""
    started = time.perf_counter()
    if previous is None:
        best_params, cv_results, cv_best = grid_search(spec, X_train, y_train)
        searched_on = data_version()
    else:
        best_params, cv_results, cv_best = (previous["best_params"], previous.get("cv_results", []),
                                            previous.get("cv_best_f1_macro"))
        searched_on = previous.get("grid_search_data_version", "before data versions were recorded per model")
    model = fit_model(spec, best_params, X_train, y_train)
    predicted = apply_thresholds(model.predict_proba(X_test), model.thresholds)
    per_category = f1_score(y_test, predicted, average=None, zero_division=0)
    model.record = {
        "title": spec.title,
        "teaching_baseline": spec.teaching_baseline,
        "best_params": best_params,
        "thresholds": model.thresholds,
        "cv_best_f1_macro": None if cv_best is None else round(cv_best, 4),
        "cv_results": cv_results,
        "grid_search_data_version": searched_on,
        "data_version": data_version(),
        "test_f1_macro": round(float(f1_score(y_test, predicted, average="macro", zero_division=0)), 4),
        "test_f1": {c: round(float(s), 4) for c, s in zip(TEXT_CATEGORIES, per_category)},
        "train_seconds": round(time.perf_counter() - started, 1),
        "scikit_learn": sklearn.__version__,
    }
    return model

