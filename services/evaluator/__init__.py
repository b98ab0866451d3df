"""The evaluator: a Faust shell around the pure engine in :mod:`signalbox.evaluator.engine`."""
