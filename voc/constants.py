"""Constants of the PASCAL VOC classification task, kept in one place."""

from __future__ import annotations

VOC_CLASSES: tuple[str, ...] = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
"""The 20 VOC object classes in the canonical (devkit) order."""

NUM_CLASSES: int = len(VOC_CLASSES)
CLASS_TO_INDEX: dict[str, int] = {name: i for i, name in enumerate(VOC_CLASSES)}

YEARS: tuple[str, ...] = ("2007", "2012")
SPLITS: dict[str, tuple[str, ...]] = {
    "2007": ("train", "val", "trainval", "test"),
    "2012": ("train", "val", "trainval"),
}
"""Image sets with public labels, per VOC year."""

POSITIVE, NEGATIVE, IGNORED = 1, 0, -1
"""Label values: present, absent, left out of the loss and of every metric."""

DIFFICULT_ONLY_LABELS: dict[str, int] = {"negative": NEGATIVE, "ignore": IGNORED, "positive": POSITIVE}
"""The difficult-object policies: policy name -> label of a class whose only objects in an image
are ``difficult`` (look it up, with validation, through ``voc.config.difficult_only_label``)."""

DIFFICULT_POLICIES: tuple[str, ...] = tuple(DIFFICULT_ONLY_LABELS)
"""The policy names, in order: negative, ignore, positive."""

LABEL_SOURCES: tuple[str, ...] = ("annotations", "imagesets")
"""Where labels are read from: the ``Annotations`` XML files, or the per-class ``ImageSets/Main`` lists."""

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

VOC_ARCHIVES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "2012": (
        (
            "https://thor.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
            "VOCtrainval_11-May-2012.tar",
            "6cd6e144f989b92b3379bac3b3de84fd",
        ),
    ),
    "2007": (
        (
            "https://thor.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtrainval_06-Nov-2007.tar",
            "VOCtrainval_06-Nov-2007.tar",
            "c52e279531787c972589f7e41ab4ae64",
        ),
        (
            "https://thor.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtest_06-Nov-2007.tar",
            "VOCtest_06-Nov-2007.tar",
            "b6e924de25625d8de591ea690078ad9f",
        ),
    ),
}
"""Official archives per year: (url, file name, md5), as torchvision's ``VOCDetection`` lists them."""
