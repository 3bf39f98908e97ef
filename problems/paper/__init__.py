"""The paper's problems (section 4, Table 1) on the public corpora.

WMT translation, Penn Treebank parsing, ImageNet, LibriSpeech and COCO
captions, read in the formats those corpora ship; `tfds_sources` prepares the
same problems from TensorFlow Datasets instead of raw files.
"""
