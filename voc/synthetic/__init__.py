"""A deterministic synthetic PASCAL VOC generator for tests, CI and offline benchmark runs.

:func:`generate_synthetic_voc` writes a real VOC-format tree::

    root/VOCdevkit/VOC<year>/JPEGImages/<id>.jpg
                             Annotations/<id>.xml
                             ImageSets/Main/{train,val,trainval[,test]}.txt
                             ImageSets/Main/<class>_<split>.txt
    root/synthetic.json      (written last: marks the tree complete)

Each image shows 1-4 VOC classes as filled silhouettes at varied scale, rotation, colour and
position over a cluttered background. The class sets follow the VOC2007 trainval statistics
(:data:`CLASS_PRIORS`, :data:`CARDINALITY_PROBS`). Every image is drawn from its own generators
seeded by ``(seed, split, index)``, so an image does not depend on the sizes of the splits, and
the same arguments give byte-identical files.

Modules, in the order an image is made:

- ``stats``: what an image contains (class sets, instances, size), from VOC2007's statistics;
- ``shapes``: one glyph (silhouette mask) per class, and distractor shapes;
- ``paint``: object colours and per-class texture patterns;
- ``background``: background gradient and texture, clutter, noise;
- ``render``: placing and painting the objects, :func:`render_synthetic_image`;
- ``writer``: the files, :func:`generate_synthetic_voc`, :func:`is_complete_synthetic_voc`.
"""

from voc.synthetic.paint import CLASS_PATTERNS, PATTERN_KINDS
from voc.synthetic.render import (
    DIFFICULT_MAX_SIDE,
    SCALE_RANGES,
    SPLIT_CODES,
    Box,
    SyntheticObject,
    image_rngs,
    render_synthetic_image,
)
from voc.synthetic.stats import (
    CARDINALITY_PROBS,
    CLASS_PRIORS,
    DIFFICULT_ONLY_RATES,
    IMAGE_SIZES,
    class_weights,
    plan_instances,
    sample_class_set,
    sample_image_size,
)
from voc.synthetic.writer import (
    DEFAULT_ROOTS,
    DEFAULT_SIZES,
    JPEG_QUALITY,
    MARKER_NAME,
    SYNTHETIC_GENERATOR_VERSION,
    annotation_xml,
    generate_synthetic_voc,
    image_id,
    image_labels,
    is_complete_synthetic_voc,
)

__all__ = [
    "CARDINALITY_PROBS",
    "CLASS_PATTERNS",
    "CLASS_PRIORS",
    "DEFAULT_ROOTS",
    "DEFAULT_SIZES",
    "DIFFICULT_MAX_SIDE",
    "DIFFICULT_ONLY_RATES",
    "IMAGE_SIZES",
    "JPEG_QUALITY",
    "MARKER_NAME",
    "PATTERN_KINDS",
    "SCALE_RANGES",
    "SPLIT_CODES",
    "SYNTHETIC_GENERATOR_VERSION",
    "Box",
    "SyntheticObject",
    "annotation_xml",
    "class_weights",
    "generate_synthetic_voc",
    "image_id",
    "image_labels",
    "image_rngs",
    "is_complete_synthetic_voc",
    "plan_instances",
    "render_synthetic_image",
    "sample_class_set",
    "sample_image_size",
]
