"""The dispatcher: carries out action commands, at most once each, with one outcome each."""
