"""PASCAL VOC multi-label classification: data, synthetic VOC, transforms, metrics, Lightning module and datamodule.

Submodules are imported explicitly (``from voc.metrics import evaluate``); importing ``voc`` itself
loads nothing heavy.
"""
