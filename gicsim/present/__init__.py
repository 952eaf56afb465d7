"""Presentation (layer 5, above ``gicsim.sim``): what a user reads — reports in Markdown and
HTML (``report``, ``figures``, ``plots``), the Perfetto export (``perfetto``), ``explain``,
``tables``, the atomic writers every output goes through (``output``) and reading run
directories back (``rundata``)."""
