"""What a guarded generation request may ask for, and which model serves it: the bounds `moderation.generation`
enforces and the app's sliders show, importable without torch (generation.py imports it at the top)."""

MODEL_ENV_VAR = "MODERATION_GENERATION_MODEL"
DEFAULT_MODEL = "gpt2"
MAX_NEW_TOKENS_CAP = 200
MAX_TEMPERATURE = 2.0
#: What happens when the prompt itself is flagged: refuse to generate, or generate and say so.
POLICIES = ("refuse", "warn")
