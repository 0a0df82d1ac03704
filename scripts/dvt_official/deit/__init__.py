# NOT upstream: makes dvt_official/deit/ a package holding the official DeiT variant of DVT
# (models_deit.py) and the few modules of the repository's bundled timm 0.3.2 it needs, under a
# name that does not clash with pip timm (see ../README.md).
