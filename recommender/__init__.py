"""The recommender library, one stage package per step of the data's life: data -> featurestore
-> models -> training -> batch -> serving, with events, lifecycle and evaluation beside them.
``jobs/`` (the CLI) and ``api/`` (HTTP) are thin shells over it and import nothing of each other.
"""

__version__ = "0.1.0"
