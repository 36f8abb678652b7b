"""Glue for the Evaluation Lab: widgets, cached computations and plotly figures. The maths lives in
aecore.divergences and aecore.evaluation (pure, tested); this package only lays it out.

One module per page section, each a Streamlit fragment the page calls in order (a control reruns only its section):
    objectives.objective_fits()     1. what the objective does to the fit
    likelihood.likelihood_curve()   2. log-likelihood is the honest number
    parzen.parzen_table()           3. Parzen windows mislead
    distance.pixel_distance()       4. pixel distance is not perceptual distance
    memorisation.samples_check()    5. memorisation and mode collapse
    ring.gaussian_to_ring()         6. from a Gaussian to anything
common holds the model choice and the caches they share.
"""
