"""What a model reads: the plot alone, or the title and the plot.

A model's card (``predictor.json`` and the export's model card) records its setting under the key
``"text"`` (missing means ``"plot"``, as every model trained before this setting existed). Training,
the command line and the API all build the model's input with :func:`compose`, so a title is joined to
its plot the same way everywhere.
"""
from __future__ import annotations

TEXT_SETTINGS = ("plot", "title+plot")
DEFAULT = "plot"


def check_setting(setting) -> str:
    """Return ``setting`` if it is one of :data:`TEXT_SETTINGS`, else raise a ValueError that lists them."""
    if setting is None:
        return DEFAULT
    if setting not in TEXT_SETTINGS:
        raise ValueError(f"Unknown text setting {setting!r}: use one of {', '.join(TEXT_SETTINGS)}.")
    return setting


def compose(plot: str, title: str | None = None, setting: str = DEFAULT) -> str:
    """The text a model with ``setting`` reads for one film: ``"Title. Plot"`` or the plot alone."""
    setting = check_setting(setting)
    title = (title or "").strip()
    if setting == "title+plot" and title:
        return f"{title}. {plot}"
    return plot


def for_model(card: dict, plot: str, title: str | None = None) -> tuple[str, str | None]:
    """The input for the model described by ``card``, and a one-line note when the title is ignored."""
    setting = check_setting(card.get("text"))
    note = None
    if title and title.strip() and setting == "plot":
        note = "This model was trained on plots alone: the title is ignored."
    return compose(plot, title, setting), note
