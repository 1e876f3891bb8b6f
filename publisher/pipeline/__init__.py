"""The pipeline: items, their reviews, the posts built from them and the worker that delivers them."""
