"""Offline evaluation: protocols, the model runner, tuning and the served-hybrid replay."""
