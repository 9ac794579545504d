"""The Feast edge: repository access and materialization, Feast's Redis layout read directly,
the fast list writer, ``names.py`` with every view/service/entity name, ``keys.py`` with the
platform's own (hash-tagged) Redis key names and ``redisclient.py`` making one-node or
cluster clients. Does I/O."""
