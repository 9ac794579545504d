"""The Feast edge: repository access and materialization, Feast's Redis layout read directly,
the fast list writer, and ``names.py`` with every view/service/entity name. Does I/O."""
