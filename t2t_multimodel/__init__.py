"""t2t_multimodel: the MultiModel of "One Model To Learn Them All" in Keras 3.

Kaiser et al., 2017 (arXiv:1706.05137): small per-modality nets around one
shared body of separable convolutions, attention and a sparsely-gated mixture of
experts, trained jointly on text, image and audio problems.
"""

__version__ = "0.1.0"
