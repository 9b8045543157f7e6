"""The bench and every paper reproduction, one package each, all of one shape.

* :mod:`~dictlab.reproductions.bench`: ``dictlab bench``, the Linear Representation Bench (Tang et al., arXiv
  2512.05534, Table 1) with its presets, typed records, notes and report.
* One package per ``dictlab reproduce NAME``: ``run.py`` (config, results, the run) and ``report.py`` (claims,
  results.md, figures); :mod:`~dictlab.reproductions.registry` lists them.
* :mod:`~dictlab.reproductions.expected`: every number a reproduction is compared with.
* :mod:`~dictlab.reproductions.claims` and :mod:`~dictlab.reproductions.base`: the claims every report shows and the
  contract every reproduction fulfils.
"""
