"""Models: what a model is (specs), what folders hold, what is installed, downloads."""
