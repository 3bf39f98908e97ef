"""The offline demo problems: real data installed from Debian and PyPI.

Stand-ins for the paper's tasks that need no download at run time (see
shared/reference/offline_data.md): EN-DE and DE-EN from the Ding dictionary,
EN-FR from gettext catalogs, parsing from allennlp's fixture trees,
Fashion-MNIST, espeak-ng speech and openclipart captions, and `mixtures`, the
demo mixtures that train on all of them.
"""
