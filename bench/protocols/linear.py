"""``linear``: one linear probe per class on the frozen backbone's cached features, its C chosen by
k-fold cross-validation on the training split (VISSL's VOC07 benchmark; the probes are
:mod:`bench.frozen.probe`'s). Torch-free."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.protocols.spec import FeatureSplits, FrozenSpec, Scored

LOWSHOT_ONLY_FIELDS: tuple[str, ...] = ("k_values", "samples", "negatives_per_positive")


class LinearSpec(FrozenSpec):
    name = "linear"
    help = ("freeze the backbone, cache its pooled pre-logits features once per image and fit a linear probe per "
            "class on them, C by cross-validation on the training split (VISSL's VOC07 benchmark: VOC2007 "
            "trainval -> test, 224 x 224 whole image; train -> val on the synthetic set)")
    flags = frozenset({"probe", "probe_costs", "n_jobs"})

    def overrides(self, values: Mapping[str, Any]) -> dict[str, Any]:
        costs = values.get("probe_costs")
        return {"probe": values.get("probe"), "costs": None if costs is None else tuple(costs)}

    def config_dict(self, protocol: Any, data: dict[str, Any]) -> dict[str, Any]:
        """Every field but the low-shot ones; ``costs`` is the grid C is chosen from."""
        return {k: v for k, v in data.items() if k not in LOWSHOT_ONLY_FIELDS}

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
