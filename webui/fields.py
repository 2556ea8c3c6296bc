"""Form fields of our own: several choices as check boxes."""
from __future__ import annotations

from wtforms import SelectMultipleField
from wtforms.widgets import CheckboxInput, ListWidget


class CheckboxesField(SelectMultipleField):
    """Several choices as check boxes, each visible and labelled: a list box wanted
    Ctrl-click to pick more than one and cut off what did not fit."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()
