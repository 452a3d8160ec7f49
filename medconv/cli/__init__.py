"""The ``medconv`` command line: thin click commands over the library."""
