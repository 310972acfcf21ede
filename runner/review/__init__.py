"""Review surfaces: what a change does (``plan``), what happened (``audit``, behind
``rollout history``), where rollouts stand (``status_markdown``). Pure over the model apart
from reading git."""
