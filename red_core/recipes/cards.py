"""Model cards of the recipes: Markdown templates (Jinja) in `templates/`, YAML front matter from `ModelCardData`.

A card is `templates/card_NAME.md`, rendered by `huggingface_hub.ModelCard.from_template`; its front matter
is `{{ card_data }}`. A part that several cards share is `templates/_PART.md`, rendered on its own by `part`
and passed to the card as text.
"""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData

TEMPLATES = Path(__file__).resolve().parent / "templates"


def part(name: str, **variables) -> str:
    """A shared part, `templates/_NAME.md`, rendered the way `ModelCard.from_template` renders a card."""
    import jinja2  # what ModelCard.from_template renders with

    return jinja2.Template((TEMPLATES / f"_{name}.md").read_text(encoding="utf-8")).render(**variables)


def write_card(folder: str | Path, name: str, card_data: ModelCardData, **variables) -> ModelCard:
    """Render `templates/card_NAME.md` and save it as FOLDER/README.md."""
    card = ModelCard.from_template(card_data, template_path=str(TEMPLATES / f"card_{name}.md"), **variables)
    card.text = card.text.rstrip("\n") + "\n"  # Jinja drops a template's final newline; the file ends with one
    card.save(Path(folder) / "README.md")
    return card
