"""Glue for the Checkerboard Lab: widgets, cached computations and plotly figures. The arithmetic lives in
aecore.checkerboard, aecore.distill and aecore.artifacts (pure, tested); this package only lays it out.

One module per page section, each with a function the page calls in order:
    arithmetic.calculator()        1. the arithmetic of a transposed convolution
    overlap.overlap_patterns()     2. where the stamps overlap
    distill.random_decoders()      3. random decoders: the pattern before training
    trained.trained_decoders()     4. trained decoders, different upsampling (quick_train: training a set here)
figures holds the figure and table helpers they share.
"""
