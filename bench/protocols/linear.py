"""``linear``: one linear probe per class on the frozen backbone's cached features, its C chosen by
k-fold cross-validation on the training split (VISSL's VOC07 benchmark; the probes are
:mod:`bench.frozen.probe`'s). Torch-free."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bench.frozen.recipes import PROBE_RECIPES, PROBES, VISSL_VOC07_SVM_COSTS, ProbeRecipe
from bench.protocols.settings import FrozenProtocol, sorted_unique_positive
from bench.protocols.spec import FeatureSplits, FrozenSpec, Option, Scored, positive_float


@dataclass(frozen=True)
class ProbeProtocol(FrozenProtocol):
    """A frozen protocol that fits linear probes (:data:`PROBE_RECIPES`) on the cached features."""

    probe: str = "svm"
    fixed_cost: float = 1.0
    """C of every low-shot fit, and of a class whose training split has too few positives or
    negatives for 2-fold CV (``linear``)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.probe not in PROBE_RECIPES:
            raise ValueError(f"unknown probe {self.probe!r}; valid values are {list(PROBES)}")
        sorted_unique_positive([self.fixed_cost], "the fixed probe cost")
        object.__setattr__(self, "fixed_cost", float(self.fixed_cost))

    @property
    def recipe(self) -> ProbeRecipe:
        return PROBE_RECIPES[self.probe]

    def to_dict(self) -> dict[str, Any]:
        """Every field, and the probe recipe (``recipe``)."""
        return {**super().to_dict(), "recipe": self.recipe.to_dict()}


@dataclass(frozen=True)
class LinearProtocol(ProbeProtocol):
    """``linear``'s settings: a probe per class on the training split's features, its C chosen there
    by k-fold CV over ``costs``, scoring the eval split (VISSL's VOC07 linear benchmark)."""

    name: str = "linear"
    costs: tuple[float, ...] | None = None
    """The grid C is chosen from; ``None``: the probe recipe's grid."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.costs is not None:
            object.__setattr__(self, "costs", sorted_unique_positive(self.costs, "probe costs"))

    @property
    def cost_grid(self) -> tuple[float, ...]:
        """The C values CV chooses from: ``costs``, else the recipe's grid."""
        return self.costs if self.costs is not None else self.recipe.costs

    def to_dict(self) -> dict[str, Any]:
        """Every field, ``costs`` the grid C is chosen from (the recipe's where not given)."""
        return {**super().to_dict(), "costs": list(self.cost_grid)}


PROBE_OPTION = Option(
    "probe", choices=PROBES,
    help="svm (VISSL: L2-normalised features, LinearSVC, C by 3-fold CV on the training split) or logreg "
         "(standardised features, L2 logistic regression, C by 5-fold CV) (default: svm)")
N_JOBS_OPTION = Option("n_jobs", type=int, help="processes the probe fits the classes over (default: -1, every core)")
"""Not a setting (the result does not depend on it): the runner's ``FrozenOptions.n_jobs``."""
PROBE_COSTS_HELP = ("the grid C is chosen from by CV on the training split (default: svm {svm}, VISSL's range one per "
                    "decade; its own grid: {vissl}; logreg 1e-6 ... 1e5, one per decade)")


class LinearSpec(FrozenSpec):
    name = "linear"
    help = ("freeze the backbone, cache its pooled pre-logits features once per image and fit a linear probe per "
            "class on them, C by cross-validation on the training split (VISSL's VOC07 benchmark: VOC2007 "
            "trainval -> test, 224 x 224 whole image; train -> val on the synthetic set)")
    settings = LinearProtocol
    options = (
        PROBE_OPTION,
        Option("probe_costs", type=positive_float, nargs="+", metavar="C", help=PROBE_COSTS_HELP.format(
            svm=list(PROBE_RECIPES["svm"].costs), vissl=" ".join(f"{c:g}" for c in VISSL_VOC07_SVM_COSTS))),
        N_JOBS_OPTION,
    )

    def overrides(self, values: Mapping[str, Any]) -> dict[str, Any]:
        costs = values.get("probe_costs")
        return {"probe": values.get("probe"), "costs": None if costs is None else tuple(costs)}

    def describe(self, protocol: Any) -> str:
        return f"{protocol.probe} probe, C by {protocol.recipe.folds}-fold CV over {len(protocol.cost_grid)} values"

    def score(self, features: FeatureSplits, protocol: Any, n_jobs: int | None) -> Scored:
        from bench.frozen.probe import fit_probe, merged_classes, to_unit_interval
        from voc.metrics import evaluate

        fit = fit_probe(features.train_features, features.train_labels, recipe=protocol.recipe,
                        costs=protocol.cost_grid, fixed_cost=protocol.fixed_cost, seed=protocol.seed, n_jobs=n_jobs)
        decision = fit.decision(features.eval_features)
        scores = to_unit_interval(decision)
        warnings = []
        merged = merged_classes(decision, scores)
        if merged:
            warnings.append(f"the map to [0, 1] tied distinct decision values of class(es) {merged}")
        not_converged = sum(c.not_converged_fits for c in fit.classes)
        if not_converged:
            warnings.append(f"{not_converged} probe fit(s) stopped at max_iter={protocol.recipe.max_iter} without "
                            "converging (see result.json)")
        return Scored(scores, evaluate(scores, features.eval_labels),
                      {"probe": fit.section(features.train_split)}, warnings)


SPEC = LinearSpec()
