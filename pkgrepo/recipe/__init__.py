"""Recipe models and loading."""

from pkgrepo.recipe.load import load_recipe, load_recipes
from pkgrepo.recipe.model import Recipe

__all__ = ["Recipe", "load_recipe", "load_recipes"]
