"""Model names and wildcards through timm's registry; the unknown-name error."""

from __future__ import annotations

import pytest
import timm

from bench.registry import UnknownModelError, architecture, backbone_spec, resolve_models, suggest


def test_exact_names_kept_in_order_without_duplicates() -> None:
    assert resolve_models(["test_vit", "test_resnet", "test_vit"]) == ["test_vit", "test_resnet"]


def test_pretrained_tag_is_accepted() -> None:
    assert resolve_models(["resnet50.a1_in1k"]) == ["resnet50.a1_in1k"]
    assert architecture("resnet50.a1_in1k") == "resnet50"


def test_wildcard_expands_over_timm_list_models() -> None:
    expanded = resolve_models(["test_*"])
    assert expanded == timm.list_models("test_*")
    assert {"test_resnet", "test_efficientnet", "test_vit"} <= set(expanded)


@pytest.mark.parametrize(
    ("name", "closest"),
    [("resnet5O", "resnet50"), ("convnxt_tiny", "convnext_tiny"), ("efficientnet-b0", "efficientnet_b0")],
)
def test_unknown_name_fails_with_closest_names(name: str, closest: str) -> None:
    with pytest.raises(UnknownModelError, match=rf"unknown model '{name}'.*Did you mean '{closest}'"):
        resolve_models([name])
    assert suggest(name)[0] == closest


def test_unknown_name_fails_before_expanding_the_rest() -> None:
    with pytest.raises(UnknownModelError, match="resnet5O"):
        resolve_models(["test_resnet", "resnet5O"])


def test_pattern_matching_nothing_fails() -> None:
    with pytest.raises(UnknownModelError, match="matches no timm model"):
        resolve_models(["nosuchnet_*"])


def test_empty_model_list_fails() -> None:
    with pytest.raises(UnknownModelError, match="--models"):
        resolve_models([])


def test_no_overrides_means_default_spec() -> None:
    assert dict(backbone_spec("resnet50").create_kwargs) == {}


def test_a_pretrained_tag_neither_timm_nor_a_weight_package_has_is_refused_listing_the_tags() -> None:
    assert resolve_models(["resnet50.a1_in1k", "resnet50.augnet_ssl_in1k", "resnet50"]) == [
        "resnet50.a1_in1k", "resnet50.augnet_ssl_in1k", "resnet50"]
    with pytest.raises(UnknownModelError, match=r"unknown pretrained tag 'foo' of 'resnet50' in --models: its tags "
                                                r"are augnet_ssl_in1k, a1_in1k, "):
        resolve_models(["resnet50.foo"])
