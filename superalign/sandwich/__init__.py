"""Sandwiching (Bowman et al.; Khan et al. 2024): can a weak judge, helped by strong models that see what it
cannot, beat itself alone? Modules: `config` (the `sandwich:` section, light), `debate` (items, quote
verification, the protocols), `experiment` (store stages, summary, human judge), `report` (report sections)."""
