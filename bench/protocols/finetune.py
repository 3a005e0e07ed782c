"""The fine-tuning protocols, ``course``, ``voc07``, ``modern`` and ``lpft``: recipes of one kind
(``bench.protocol.Protocol``, :data:`bench.protocol.FINETUNE_PROTOCOL_TABLE`), trained by
:mod:`bench.train` and reported with no columns or figures of their own. Torch-free."""

from __future__ import annotations

from typing import Any

from bench.protocols.spec import FINETUNE, ProtocolSpec


class FinetuneSpec(ProtocolSpec):
    """A named fine-tuning recipe; its settings are a row of ``FINETUNE_PROTOCOL_TABLE``."""

    kind = FINETUNE

    def __init__(self, name: str, help: str) -> None:
        self.name = name  # type: ignore[misc]
        self.help = help  # type: ignore[misc]

    def default(self, synthetic: bool) -> Any:
        from bench.protocol import finetune_protocol

        return finetune_protocol(self.name, synthetic)


SPECS = (
    FinetuneSpec("course", "fine-tune every backbone under the course project's protocol (Adam 1e-4, batch 8, "
                           "resize 400 -> FiveCrop 224, crop-max logits, class-wise BCE; a CPU-sized variant on the "
                           "synthetic set)"),
    FinetuneSpec("voc07", "fine-tune under the ASL repository's recipe on VOC2007 trainval -> test at 448 x 448 "
                          "(Adam, OneCycle, asymmetric loss, EMA, RandAugment + erasing)"),
    FinetuneSpec("modern", "fine-tune under one AdamW + warmup/cosine + EMA + RandAugment recipe (a CPU-sized "
                           "variant on the synthetic set)"),
    FinetuneSpec("lpft", "linear probe, then fine-tune (LP-FT): a logistic-regression head fitted on the frozen "
                         "training features, copied in, then the whole network fine-tuned with batch-norm statistics "
                         "frozen, AdamW + warmup/cosine, flip-averaged eval"),
)
