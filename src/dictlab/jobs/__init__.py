"""The jobs behind the ``dictlab`` commands that work on real activations and trained dictionaries: capture a
store, train on it, evaluate in the model, diagnose, and move SAEs to and from SAELens. Each job is a typed request
(its fields are the CLI options) and one function; the CLI only parses and reports."""
