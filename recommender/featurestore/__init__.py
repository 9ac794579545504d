"""The Feast edge: repository access, materialization engine, Redis layout and fast writers;
``names.py`` (Feast names), ``keys.py`` (our hash-tagged keys), ``redisclient.py``. Does I/O."""
