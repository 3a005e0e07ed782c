"""How the frozen-feature protocols' linear probes are fitted: :class:`ProbeRecipe` and the named
recipes (:data:`PROBE_RECIPES`), every class and every backbone alike, with their sources.
``bench.frozen.probe`` builds the scikit-learn estimators from them. Torch-free."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ProbeRecipe:
    """How one linear probe is fitted on frozen features, for every class and every backbone alike
    (``bench.frozen.probe`` builds the scikit-learn estimators from it)."""

    name: str
    features: str
    """``l2``: each image's feature divided by its L2 norm + 1e-5 (VISSL ``_normalize_features``);
    ``standardise``: a StandardScaler fitted on the training rows of each fit (in every CV fold too)."""
    estimator: str
    """``LinearSVC`` or ``LogisticRegression`` (scikit-learn), one binary problem per class."""
    costs: tuple[float, ...]
    """The default grid of C (scikit-learn's inverse regularisation strength)."""
    folds: int
    """Stratified, shuffled, seeded k-fold CV on the training split chooses C per class."""
    max_iter: int
    tol: float
    class_weight: tuple[tuple[int, float], ...] | None
    """(label, weight) pairs for the SVM targets -1 / 1, e.g. ``((1, 2.0), (-1, 1.0))``."""
    source: str
    """Where the recipe comes from (in the record's probe section, not in the config hash)."""
    dual: bool | str = "auto"
    """LinearSVC's solver: ``True`` the dual (liblinear's coordinate descent), ``False`` the primal
    (trust-region Newton), ``"auto"`` scikit-learn's rule, the primal when there are more training
    rows than feature dimensions. Both solve the same strictly convex problem (one optimum); the dual
    crawls at large C on features that do not separate the classes (docs/performance.md)."""

    def to_dict(self) -> dict[str, Any]:
        """The settings that decide the fits (not :attr:`source`)."""
        data = asdict(self)
        del data["source"]
        data["costs"] = list(self.costs)
        data["class_weight"] = None if self.class_weight is None else {str(k): w for k, w in self.class_weight}
        return data


VISSL_VOC07_SVM_COSTS: tuple[float, ...] = (0.01, 0.1, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 50.0, 100.0, 1000.0)
"""VISSL's cost grid for the VOC07 linear SVM: ``SVM.costs.costs_list`` of
``configs/config/benchmark/linear_image_classification/voc07/eval_resnet_8gpu_transfer_voc07_svm.yaml``
(the low-shot config, ``low_shot_transfer/voc07/eval_resnet_8gpu_transfer_voc07_low_shot_svm.yaml``,
lists the same); ``costs.base`` is -1 in ``vissl/config/defaults.yaml``, so no powers are added."""

SVM_COSTS: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
"""Our default SVM grid: VISSL's range (:data:`VISSL_VOC07_SVM_COSTS`) at one value per decade, the
six of its eleven values that are powers of ten. The fit time grows with C (liblinear's primal on
ResNet-50 features of the VOC2007-size set: 0.6 s at C = 0.01, 13 s at C = 1000), and VISSL's extra
values (2, 5, 15, 20, 50) sit where fits are slow: the decade grid takes about half the probe time,
which brings a VOC2007-size run under 15 min on a 2-core CPU (docs/performance.md). ``--probe-costs``
with VISSL's list restores its grid exactly."""

LOGREG_COSTS: tuple[float, ...] = tuple(10.0**e for e in range(-6, 6))
"""C = 1e-6, 1e-5, ..., 1e5: one value per decade over the range of Kornblith et al.'s grid (they
searched 45 log-spaced values in it)."""

SVM_RECIPE = ProbeRecipe(
    name="svm",
    features="l2",
    estimator="LinearSVC",
    costs=SVM_COSTS,
    folds=3,
    max_iter=2000,
    tol=1e-4,
    class_weight=((1, 2.0), (-1, 1.0)),
    source=(
        "VISSL vissl/utils/svm_utils/svm_trainer.py (SVMTrainer.train_cls: LinearSVC(C, class_weight={1: 2, -1: 1}, "
        "penalty='l2', loss='squared_hinge', dual=True, tol=1e-4, max_iter=2000), cross_val_score(cv=3, "
        "scoring='average_precision'), C = argmax of the mean CV AP per class; features L2-normalised) = "
        "fair_self_supervision_benchmark tools/svm/train_svm_kfold.py + svm_helper.py + test_svm.py; "
        "solver dual='auto' (the primal where rows > dimensions) instead of VISSL's dual=True: the same optimum; "
        "grid: VISSL's at one value per decade (SVM_COSTS)"
    ),
    dual="auto",
)
LOGREG_RECIPE = ProbeRecipe(
    name="logreg",
    features="standardise",
    estimator="LogisticRegression",
    costs=LOGREG_COSTS,
    folds=5,
    max_iter=1000,
    tol=1e-4,
    class_weight=None,
    source=(
        "Kornblith, Shlens, Le, 'Do Better ImageNet Models Transfer Better?' (CVPR 2019): L2-regularised "
        "logistic regression on penultimate-layer features (L-BFGS), the penalty chosen over a log grid from "
        "1e-6 to 1e5; they choose it on a held-out validation split, we by 5-fold CV on the training split"
    ),
)
PROBE_RECIPES: dict[str, ProbeRecipe] = {"svm": SVM_RECIPE, "logreg": LOGREG_RECIPE}
PROBES: tuple[str, ...] = tuple(PROBE_RECIPES)

LOWSHOT_K_VALUES: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 96)
"""VISSL's and fair_self_supervision_benchmark's low-shot k values (``SVM.low_shot.k_values``;
``extra_scripts/create_voc_low_shot_samples.py``)."""
