"""The Inside tab: what a unit of the model reads."""
